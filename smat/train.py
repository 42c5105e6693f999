"""The SMaT training loop and the public entry point :func:`train_explainer`.

Python schedules; the jitted ``meta_step`` / ``student_step`` do the work. The teacher
runs once, into the teacher cache; after every epoch the student's simulability on the
validation split decides early stopping (patience), and the best state is kept.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from smat import explainers
from smat.data.batching import iterate_batches
from smat.metalearn import MetaConfig, TrainState, make_trainer
from smat.students import Student
from smat.teacher import TeacherOutput, build_teacher_cache

__all__ = ["SmatConfig", "TrainResult", "train_explainer", "simulability"]

_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclasses.dataclass(frozen=True)
class SmatConfig:
    """One SMaT run.

    Attributes:
      explainer: the teacher explainer's registry name ("attention" is meta-learned).
      normalizer: head-coefficient normalizer of the teacher and student explainers.
      beta: explanation-loss weight; None takes the paper's value for the explainer kind.
      meta: optimisation settings (inner SGD, meta Adam, exact / jvp).
      batch_size, max_epochs, patience, seed: the loop.
    """

    explainer: str = "attention"
    normalizer: str = "sparsemax"
    beta: float | None = None
    meta: MetaConfig = MetaConfig()
    batch_size: int = 32
    max_epochs: int = 50
    patience: int = 10
    seed: int = 0


class TrainResult(NamedTuple):
    state: TrainState  # the best state on validation simulability
    history: list[dict]  # per epoch: train losses, validation simulability
    best_epoch: int


def _batches(arrays, batch_size, *, seed, epoch):
    lengths = arrays["lengths"]
    fields = {k: v for k, v in arrays.items() if k != "lengths"}
    for batch in iterate_batches(fields, lengths, batch_size, seed=seed, epoch=epoch, buckets=None,
                                 seq_keys=()):
        batch.pop("index")
        yield {k: jnp.asarray(v) for k, v in batch.items()}


def student_predictor(student: Student) -> Callable:
    """The jitted evaluation forward of a student (build once, reuse every epoch)."""
    return jax.jit(lambda params, batch: student.apply(params["student"], batch, train=False).outputs)


def simulability(predict: Callable, student_params, arrays, batch_size: int) -> tuple[float, float]:
    """(simulability, simulation loss) of the student on a split: accuracy against the teacher's
    classes (Pearson r for regression), and the mean cross-entropy (MSE) to them.

    Args:
      predict: from :func:`student_predictor`.
    """
    preds, targets = [], []
    for batch in _batches(arrays, batch_size, seed=None, epoch=0):
        valid = np.asarray(batch["valid"]) > 0
        preds.append(np.asarray(predict(student_params, batch))[valid])
        targets.append(np.asarray(batch["teacher_outputs"])[valid])
    preds, targets = np.concatenate(preds), np.concatenate(targets)
    if preds.shape[-1] == 1:
        return float(np.corrcoef(preds[:, 0], targets[:, 0])[0, 1]), float(np.mean((preds - targets) ** 2))
    log_probs = preds - np.logaddexp.reduce(preds, axis=-1, keepdims=True)
    classes = targets.argmax(-1)
    loss = float(-np.mean(log_probs[np.arange(len(classes)), classes]))
    return float(np.mean(preds.argmax(-1) == classes)), loss


def train_explainer(teacher_fn: Callable[..., TeacherOutput], teacher_params: Any,
                    data: Mapping[str, Mapping[str, np.ndarray]], student: Student,
                    config: SmatConfig = SmatConfig(), *, student_encoder_params: Any = None,
                    progress: bool = True) -> TrainResult:
    """Trains a student to simulate a teacher, meta-learning the teacher's explainer (SMaT).

    Args:
      teacher_fn: any ``teacher_fn(params, batch, embeddings=None) -> TeacherOutput``.
      teacher_params: its (frozen) params.
      data: ``{"train": arrays, "valid": arrays}``, each with ``input_ids``,
        ``attention_mask`` (, ``token_type_ids``) and ``lengths`` per example.
      student: from :func:`smat.students.make_student`.
      config: :class:`SmatConfig`.
      student_encoder_params: start the student's encoder from these (e.g. the public
        checkpoint the teacher was fine-tuned from); default a random init.

    Returns:
      :class:`TrainResult` with the best state (``state.teacher_expl_params`` is the
      learned explainer phi_T) and the per-epoch history.
    """
    layers, heads = student.num_layers, student.num_heads
    probe = teacher_fn(teacher_params, {k: jnp.asarray(v[:1]) for k, v in data["train"].items() if k in _INPUT_KEYS})
    t_layers, t_heads = (probe.head_scores.shape[1:3] if probe.head_scores is not None else (1, 1))
    teacher_explainer = explainers.get(config.explainer, num_layers=t_layers, num_heads=t_heads,
                                       normalizer=config.normalizer) if config.explainer.startswith("attention") \
        else explainers.get(config.explainer)
    student_explainer = explainers.get("attention", num_layers=layers, num_heads=heads, normalizer=config.normalizer)
    beta = explainers.DEFAULT_BETA[teacher_explainer.kind] if config.beta is None else config.beta
    trainer = make_trainer(student, student_explainer, teacher_explainer, dataclasses.replace(config.meta, beta=beta))

    static = {} if teacher_explainer.trainable else {"teacher": teacher_explainer}
    splits = {}
    for name in ("train", "valid"):
        arrays = data[name]
        cache = build_teacher_cache(teacher_fn, teacher_params, arrays, batch_size=config.batch_size,
                                    static_explainers=static, keep_head_scores=teacher_explainer.trainable,
                                    progress=progress)
        split = {k: arrays[k] for k in (*_INPUT_KEYS, "lengths") if k in arrays}
        split["teacher_outputs"] = cache["outputs"]
        if teacher_explainer.trainable:
            split["teacher_head_scores"] = cache["head_scores"]
        else:
            split["teacher_explanation"] = cache["explanation/teacher"]
        splits[name] = split

    key = jax.random.key(config.seed)
    key, init_key = jax.random.split(key)
    student_params = None
    if student_encoder_params is not None:
        student_params = {"student": student.init(init_key, student_encoder_params),
                          "explainer": student_explainer.init(init_key)}
    state = trainer.init(init_key, student_params=student_params)
    predict = student_predictor(student)
    best = (-np.inf, jax.device_get(state), -1)
    history, waited = [], 0
    for epoch in range(config.max_epochs):
        valid_stream = itertools.cycle(list(_batches(splits["valid"], config.batch_size, seed=config.seed + 1,
                                                     epoch=epoch)))
        losses = []
        train_batches = _batches(splits["train"], config.batch_size, seed=config.seed, epoch=epoch)
        for batch in tqdm(train_batches, desc=f"epoch {epoch}", disable=not progress, leave=False):
            key, step_key = jax.random.split(key)
            if teacher_explainer.trainable:
                state, metrics = trainer.meta_step(state, batch, next(valid_stream), step_key)
            else:
                state, metrics = trainer.student_step(state, batch, step_key)
            losses.append({k: float(v) for k, v in metrics.items()})
        score, valid_loss = simulability(predict, state.student_params, splits["valid"], config.batch_size)
        record = {"epoch": epoch, "valid_simulability": score, "valid_sim_loss": valid_loss,
                  **{k: float(np.mean([m[k] for m in losses])) for k in losses[0]}}
        history.append(record)
        if score > best[0]:
            best, waited = (score, jax.device_get(state), epoch), 0
        else:
            waited += 1
            if waited > config.patience:
                break
    return TrainResult(jax.tree.map(jnp.asarray, best[1]), history, best[2])
