"""SMaT's losses: simulation of the teacher's output and the explanation loss KL(E_T || E_S).

All losses take ``valid`` [batch] weights (0 for the padding rows of a static-shape
batch) and average over the valid rows only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from smat import simplex

__all__ = ["simulation_loss", "explanation_loss", "teacher_targets", "simulability"]

Array = jax.Array


def _weighted_mean(values: Array, valid: Array | None) -> Array:
    if valid is None:
        return values.mean()
    valid = valid.astype(values.dtype)
    return (values * valid).sum() / jnp.maximum(valid.sum(), 1.0)


def teacher_targets(teacher_outputs: Array) -> Array:
    """What the student simulates: the teacher's argmax (classification) or raw output (regression)."""
    if teacher_outputs.shape[-1] == 1:
        return teacher_outputs[..., 0]
    return jnp.argmax(teacher_outputs, axis=-1)


def simulation_loss(student_outputs: Array, targets: Array, valid: Array | None = None) -> Array:
    """Cross-entropy to the teacher's class, or MSE to its output for regression ([batch, 1] outputs)."""
    if student_outputs.shape[-1] == 1:
        return _weighted_mean(jnp.square(student_outputs[..., 0] - targets.astype(student_outputs.dtype)), valid)
    ce = optax.softmax_cross_entropy_with_integer_labels(student_outputs, targets)
    return _weighted_mean(ce, valid)


def explanation_loss(teacher_expl: Array, student_expl: Array, mask: Array, valid: Array | None = None,
                     *, clip: float = simplex.KL_CLIP) -> Array:
    """KL(E_T || E_S) over the valid tokens, probabilities clipped as in the reference, batch mean."""
    return _weighted_mean(simplex.kl(teacher_expl, student_expl, mask=mask > 0, eps=clip), valid)


def simulability(student_outputs: Array, targets: Array, valid: Array | None = None) -> Array:
    """Accuracy of the student against the teacher's classes (classification only; Pearson for regression
    is computed over a whole split by the evaluation loop)."""
    hits = (jnp.argmax(student_outputs, axis=-1) == targets).astype(jnp.float32)
    return _weighted_mean(hits, valid)
