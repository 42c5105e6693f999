"""Teachers as functions, and the teacher cache.

A teacher is any function ``teacher_fn(params, batch, embeddings=None) -> TeacherOutput``:
our encoders are one implementation (:func:`encoder_teacher`), a hand-written model is
another. ``embeddings`` (the embedding output h0), when given, replaces the model's own
embedding of ``batch``, which is how gradient explainers differentiate with respect to it.

The teacher is frozen, so :func:`build_teacher_cache` runs it once per example (batched,
jitted) and stores its outputs, per-head scores and static explanations; SMaT training
steps then never run the teacher.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from smat.data.batching import iterate_batches
from smat.explainers import Explainer, ExplainerInputs

__all__ = ["TeacherOutput", "encoder_teacher", "build_teacher_cache"]

Array = jax.Array


class TeacherOutput(NamedTuple):
    """Attributes: logits [batch, classes] ([batch, 1] regression); head_scores [batch, layers, heads, seq]
    (None if the teacher has no attention); embeddings [batch, seq, hidden] h0 (None if not differentiable)."""

    logits: Array
    head_scores: Array | None = None
    embeddings: Array | None = None


def encoder_teacher(encoder) -> Callable[..., TeacherOutput]:
    """A teacher function for one of our text encoders whose params carry a classification head."""

    def teacher_fn(params, batch, embeddings=None) -> TeacherOutput:
        if embeddings is None:
            embeddings = encoder.embed(params, batch["input_ids"], batch.get("token_type_ids"))
        out = encoder.encode(params, embeddings, batch["attention_mask"])
        if out.logits is None:
            raise ValueError("the teacher's params carry no classification head")
        return TeacherOutput(out.logits, out.head_scores, embeddings)

    return teacher_fn


def build_teacher_cache(teacher_fn: Callable[..., TeacherOutput], teacher_params, arrays: Mapping[str, np.ndarray],
                        *, batch_size: int = 32, static_explainers: Mapping[str, Explainer] | None = None,
                        keep_head_scores: bool = True, progress: bool = True) -> dict[str, np.ndarray]:
    """Runs the frozen teacher once over a tokenized split.

    Args:
      teacher_fn, teacher_params: the teacher.
      arrays: ``input_ids``, ``attention_mask`` (, ``token_type_ids``) and ``lengths`` of every example.
      batch_size: rows per jitted call (the last batch is padded, its rows dropped).
      static_explainers: name -> frozen explainer whose explanation is cached as
        ``explanation/<name>`` [examples, seq].
      keep_head_scores: store ``head_scores`` [examples, layers, heads, seq] (what the
        learnable attention explainer reads at every step).

    Returns:
      ``outputs`` [examples, classes] and, as requested, ``head_scores`` and the explanations,
      in the order of ``arrays``.
    """
    static_explainers = dict(static_explainers or {})
    inputs = {k: arrays[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in arrays}

    @jax.jit
    def run(batch):
        out = teacher_fn(teacher_params, batch)
        result = {"outputs": out.logits}
        if keep_head_scores and out.head_scores is not None:
            result["head_scores"] = out.head_scores
        for name, explainer in static_explainers.items():
            expl_inputs = ExplainerInputs(
                mask=batch["attention_mask"], head_scores=out.head_scores, embeddings=out.embeddings,
                output_fn=lambda e: teacher_fn(teacher_params, batch, embeddings=e).logits)
            result[f"explanation/{name}"] = explainer.apply(explainer.init(), expl_inputs)[0]
        return result

    cache: dict[str, np.ndarray] = {}
    n = len(arrays["input_ids"])
    batches = iterate_batches(inputs, arrays["lengths"], batch_size, seed=None)
    for batch in tqdm(batches, total=-(-n // batch_size), desc="teacher cache", disable=not progress):
        index, valid = batch.pop("index"), batch.pop("valid") > 0
        result = jax.device_get(run({k: jnp.asarray(v) for k, v in batch.items()}))
        for name, value in result.items():
            if name not in cache:
                cache[name] = np.zeros((n, *value.shape[1:]), value.dtype)
            cache[name][index[valid]] = value[valid]
    return cache
