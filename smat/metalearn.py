"""The bi-level SMaT update: an inner student step, a pilot step, and the meta-gradient on phi_T.

Fernandes et al. 2022, Eqs. 6-9 and ``smat_anchor.md`` section 2:

1. inner step: (theta, phi_S) <- optax update of L_student = L_sim + beta * KL(E_T || E_S),
   with E_T from the current teacher-explainer params phi_T (a constant here);
2. pilot step: from the *updated* student, one more inner update on the same train
   batch, now as a function of phi_T; it is never stored, so the real student is not
   updated twice;
3. outer step: the simulation loss of the pilot student on one validation batch,
   differentiated with respect to phi_T, fed to Adam.

Two ways to get the meta-gradient, giving the same number:

- ``mode="exact"``: ``jax.grad`` through the inner optax update (reverse over reverse),
  as the paper and the reference;
- ``mode="jvp"``: phi_T enters the inner loss only through E_T, which does not depend on
  theta. With v = grad_theta L_val(theta_pilot) and c the inner clip factor,
  d L_val / d phi_T = -lr * c * d/dtheta [grad_phi_T L_student](theta) . v, one
  forward-mode JVP of a cheap gradient instead of a second reverse pass through the
  network. It drops only the derivative of the clip factor c (zero whenever the
  inner gradient norm is below the clip threshold).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from smat import losses
from smat.explainers import Explainer, ExplainerInputs
from smat.students import Student

__all__ = ["MetaConfig", "TrainState", "Trainer", "make_trainer", "inner_optimizer", "meta_optimizer"]


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Optimisation settings of SMaT (defaults: the reference's IMDB plan).

    Attributes:
      inner_lr: student SGD learning rate (5e-3 in every paper run).
      inner_clip: global-norm clip of the student gradient (5.0).
      inner_weight_decay: coupled L2 added to the gradient, g + wd * theta (0.01).
      meta_lr: Adam learning rate of phi_T (5e-4 IMDB / CIFAR, 2e-4 MLQE).
      meta_clip: global-norm clip of the meta-gradient (5.0).
      beta: explanation-loss weight (5 attention, 0.2 gradient, 0 no explainer).
      mode: "exact" (reverse over reverse) or "jvp" (forward over reverse).
      warmup_steps: meta lr rises linearly over this many meta steps (0 = the paper's constant
        lr). Early meta-gradients can be batch noise (``experiments.smat.diagnose``), and
        Adam's first steps move every coefficient by about the full lr whatever the gradient's size.
      valid_batches: validation batches per meta-gradient: the outer loss is the simulation
        loss on ``valid_batches * batch_size`` validation examples (1 = the paper); the
        training loop (:func:`smat.train.train_epoch`) reads it.
    """

    inner_lr: float = 5e-3
    inner_clip: float = 5.0
    inner_weight_decay: float = 0.01
    meta_lr: float = 5e-4
    meta_clip: float = 5.0
    beta: float = 5.0
    mode: str = "exact"
    # Added after runs were recorded: left out of their fingerprints at the default (see
    # experiments.smat.run.run_fingerprint).
    warmup_steps: int = dataclasses.field(default=0, metadata={"fingerprint": "omit_default"})
    valid_batches: int = dataclasses.field(default=1, metadata={"fingerprint": "omit_default"})

    def __post_init__(self):
        if self.mode not in ("exact", "jvp"):
            raise ValueError(f"mode must be 'exact' or 'jvp', got {self.mode!r}")
        if self.warmup_steps < 0 or self.valid_batches < 1:
            raise ValueError(f"need warmup_steps >= 0 and valid_batches >= 1, got {self.warmup_steps}, "
                             f"{self.valid_batches}")


def inner_optimizer(config: MetaConfig) -> optax.GradientTransformation:
    """clip -> coupled weight decay -> -lr, the reference's student chain (swappable)."""
    return optax.chain(optax.clip_by_global_norm(config.inner_clip),
                       optax.add_decayed_weights(config.inner_weight_decay),
                       optax.scale(-config.inner_lr))


def meta_optimizer(config: MetaConfig) -> optax.GradientTransformation:
    """clip -> Adam (eps_root 1e-8, as the reference) -> -meta_lr (warmed up over ``warmup_steps``)."""
    if config.warmup_steps:
        lr = config.meta_lr
        warmup = config.warmup_steps
        scale = optax.scale_by_schedule(
            lambda count: -lr * jnp.minimum(1.0, (count.astype(jnp.float32) + 1.0) / warmup))
    else:
        scale = optax.scale(-config.meta_lr)  # the paper; no step counter in the state
    return optax.chain(optax.clip_by_global_norm(config.meta_clip),
                       optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=1e-8), scale)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    """Carried state. ``student_params`` = {"student": theta, "explainer": phi_S}."""

    student_params: Any
    opt_state: Any
    teacher_expl_params: Any
    meta_opt_state: Any
    step: jax.Array


class Trainer(NamedTuple):
    """Pure functions of one SMaT setting; ``student_step`` / ``meta_step`` are jitted and donate the state."""

    init: Callable[..., TrainState]
    student_loss: Callable[..., tuple[jax.Array, dict]]
    valid_loss: Callable[..., jax.Array]
    inner_update: Callable[..., tuple[Any, Any, dict]]
    meta_gradient: Callable[..., Any]
    student_step: Callable[..., tuple[TrainState, dict]]
    meta_step: Callable[..., tuple[TrainState, dict]]


def make_trainer(student: Student, student_explainer: Explainer, teacher_explainer: Explainer,
                 config: MetaConfig = MetaConfig()) -> Trainer:
    """Builds the SMaT training functions.

    Batches are dicts with the student's inputs (``input_ids``, ``attention_mask`` or
    ``pixel_values``), ``valid`` [batch], and the teacher cache for these examples:
    ``teacher_outputs`` [batch, classes] and either ``teacher_head_scores``
    [batch, layers, heads, seq] (attention teacher explainers) or
    ``teacher_explanation`` [batch, seq] (static explainers, precomputed).
    """
    inner_opt = inner_optimizer(config)
    meta_opt = meta_optimizer(config)

    def init(key, teacher_expl_params=None, student_params=None) -> TrainState:
        k_student, k_expl, k_teacher = jax.random.split(key, 3)
        if student_params is None:
            student_params = {"student": student.init(k_student), "explainer": student_explainer.init(k_expl)}
        if teacher_expl_params is None:
            teacher_expl_params = teacher_explainer.init(k_teacher)
        return TrainState(student_params, inner_opt.init(student_params), teacher_expl_params,
                          meta_opt.init(teacher_expl_params), jnp.zeros((), jnp.int32))

    def teacher_explanation(teacher_expl_params, batch):
        if "teacher_explanation" in batch:
            return batch["teacher_explanation"]
        expl, _ = teacher_explainer.apply(
            teacher_expl_params, ExplainerInputs(mask=batch["attention_mask"], head_scores=batch.get("teacher_head_scores")))
        return expl

    def student_loss(student_params, teacher_expl_params, batch, key, train=True):
        out = student.apply(student_params["student"], batch, key=key, train=train)
        student_expl, _ = student_explainer.apply(student_params["explainer"],
                                                  ExplainerInputs(mask=out.mask, head_scores=out.head_scores))
        teacher_expl = teacher_explanation(teacher_expl_params, batch)
        valid = batch.get("valid")
        sim = losses.simulation_loss(out.outputs, losses.teacher_targets(batch["teacher_outputs"]), valid)
        expl = losses.explanation_loss(teacher_expl, student_expl, out.mask, valid)
        return sim + config.beta * expl, {"sim_loss": sim, "expl_loss": expl}

    def valid_loss(student_params, batch):
        out = student.apply(student_params["student"], batch, train=False)
        return losses.simulation_loss(out.outputs, losses.teacher_targets(batch["teacher_outputs"]), batch.get("valid"))

    def inner_update(student_params, opt_state, teacher_expl_params, batch, key):
        (_, aux), grads = jax.value_and_grad(student_loss, has_aux=True)(student_params, teacher_expl_params, batch, key)
        updates, opt_state = inner_opt.update(grads, opt_state, student_params)
        aux["grad_norm"] = optax.tree.norm(grads)
        return optax.apply_updates(student_params, updates), opt_state, aux

    def meta_gradient(student_params, opt_state, teacher_expl_params, train_batch, valid_batch, key):
        """d L_val(pilot student) / d phi_T; the pilot student is discarded."""
        if config.mode == "exact":
            def outer(phi):
                pilot, _, _ = inner_update(student_params, opt_state, phi, train_batch, key)
                return valid_loss(pilot, valid_batch)

            return jax.grad(outer)(teacher_expl_params)

        pilot, _, aux = inner_update(student_params, opt_state, teacher_expl_params, train_batch, key)
        direction = jax.grad(valid_loss)(pilot, valid_batch)
        clip_factor = jnp.minimum(1.0, config.inner_clip / jnp.maximum(aux["grad_norm"], 1e-30))

        def phi_gradient(params):
            return jax.grad(lambda phi: student_loss(params, phi, train_batch, key)[0])(teacher_expl_params)

        _, mixed = jax.jvp(phi_gradient, (student_params,), (direction,))
        scale = -config.inner_lr * clip_factor
        return jax.tree.map(lambda d: (scale * d).astype(d.dtype), mixed)

    @functools.partial(jax.jit, donate_argnums=0)
    def student_step(state: TrainState, batch, key):
        """A plain student update (static teacher explainers, or the frozen-explainer protocol)."""
        params, opt_state, aux = inner_update(state.student_params, state.opt_state, state.teacher_expl_params,
                                              batch, key)
        return dataclasses.replace(state, student_params=params, opt_state=opt_state, step=state.step + 1), aux

    @functools.partial(jax.jit, donate_argnums=0)
    def meta_step(state: TrainState, train_batch, valid_batch, key):
        """Inner student step, then the pilot step and the Adam update of phi_T."""
        k_inner, k_pilot = jax.random.split(key)
        params, opt_state, aux = inner_update(state.student_params, state.opt_state, state.teacher_expl_params,
                                              train_batch, k_inner)
        meta_grads = meta_gradient(params, opt_state, state.teacher_expl_params, train_batch, valid_batch, k_pilot)
        with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
            updates, meta_opt_state = meta_opt.update(meta_grads, state.meta_opt_state, state.teacher_expl_params)
        teacher_expl_params = optax.apply_updates(state.teacher_expl_params, updates)
        aux["meta_grad_norm"] = optax.tree.norm(meta_grads)
        new_state = TrainState(params, opt_state, teacher_expl_params, meta_opt_state, state.step + 1)
        return new_state, aux

    return Trainer(init, student_loss, valid_loss, inner_update, meta_gradient, student_step, meta_step)
