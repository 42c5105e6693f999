"""The SMaT training loop and the public entry points :func:`train_explainer` and :func:`train_student`.

Python schedules; the jitted ``meta_step`` / ``student_step`` do the work. The teacher
runs once, into the teacher cache (:func:`add_teacher_cache`); after every epoch the
student's simulability on the validation split decides early stopping (patience), and
the best state is kept.

Two protocols:

- :func:`train_explainer` (the paper): the student, its explainer phi_S and the teacher
  explainer phi_T are learned jointly in one run; the reported student is that
  co-trained student.
- :func:`train_student` with ``teacher_expl_params`` = a learned phi_T: a fresh student
  trained with the frozen learned explainer (no meta steps), like the static rows.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from smat import checkpoints, explainers
from smat.data.batching import device_batches
from smat.metalearn import MetaConfig, Trainer, TrainState, make_trainer
from smat.students import Student, make_student
from smat.teacher import TeacherOutput, build_teacher_cache

__all__ = ["SmatConfig", "TrainResult", "Setup", "setup", "train_epoch", "train_explainer", "train_student",
           "add_teacher_cache", "simulability", "student_predictor"]

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values")


@dataclasses.dataclass(frozen=True)
class SmatConfig:
    """One SMaT run.

    Attributes:
      explainer: the teacher explainer's registry name: "attention" is meta-learned (SMaT);
        "attention_all_layers", "attention_last_layer", "gradient_l2", "gradient_x_input",
        "integrated_gradients" are static; "none" trains without explanations (beta = 0).
      normalizer: head-coefficient normalizer of the teacher and student attention explainers.
      beta: explanation-loss weight; None takes the paper's value for the explainer kind
        (5 attention, 0.2 gradient, 0 none).
      student: the checkpoint (hub name, alias such as "minilm", or directory) the student
        starts from when no :class:`~smat.students.Student` is passed: the paper starts it
        from the same public checkpoint the teacher was fine-tuned from.
      meta: optimisation settings (inner SGD, meta Adam, exact / jvp).
      batch_size, max_epochs, patience, seed: the loop; ``seed`` sets the student's head
        init, dropout and batch order.
    """

    explainer: str = "attention"
    normalizer: str = "sparsemax"
    beta: float | None = None
    student: str = "sentence-transformers/all-MiniLM-L6-v2"
    meta: MetaConfig = MetaConfig()
    batch_size: int = 32
    max_epochs: int = 50
    patience: int = 10
    seed: int = 0

    def __post_init__(self):
        if self.explainer not in explainers.available():
            raise ValueError(f"unknown explainer {self.explainer!r}; available: {', '.join(explainers.available())}")


class TrainResult(NamedTuple):
    """Attributes:
      state: the best state on validation simulability (``state.teacher_expl_params`` is phi_T).
      history: per epoch: mean train losses, validation simulability and simulation loss.
      best_epoch: the epoch of ``state``.
      metrics: ``valid_simulability`` (and ``test_simulability`` when ``data`` has a test split)
        of the best state.
      student: the :class:`Student` (for :func:`student_predictor`).
    """

    state: TrainState
    history: list[dict]
    best_epoch: int
    metrics: dict
    student: Student


# ----------------------------------------------------------------------------- data


def _probe(teacher_fn, teacher_params, arrays) -> TeacherOutput:
    return jax.eval_shape(lambda: teacher_fn(teacher_params, {k: jnp.asarray(v[:1]) for k, v in arrays.items()
                                                              if k in INPUT_KEYS}))


def _teacher_explainer(name: str, probe: TeacherOutput, normalizer: str):
    if name.startswith("attention"):
        if probe.head_scores is None:
            raise ValueError(f"explainer {name!r} needs a teacher whose TeacherOutput has head_scores")
        layers, heads = probe.head_scores.shape[1:3]
        return explainers.get(name, num_layers=layers, num_heads=heads, normalizer=normalizer)
    return explainers.get(name)


def add_teacher_cache(teacher_fn: Callable[..., TeacherOutput], teacher_params: Any,
                      data: Mapping[str, Mapping[str, np.ndarray]], explainer_names=("attention",), *,
                      normalizer: str = "sparsemax", batch_size: int = 32,
                      progress: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Runs the frozen teacher once per example and adds what training reads to every split.

    Adds ``teacher_outputs`` [examples, classes]; ``teacher_head_scores`` [examples, layers,
    heads, seq] when an attention explainer is named (the learnable one reads them at every
    step); ``teacher_explanation/<name>`` [examples, seq] for every static explainer; and an
    all-ones ``attention_mask`` for image splits. Splits that already carry a field keep it,
    so one cache serves every row of a table.
    """
    out = {}
    for split_name, arrays in data.items():
        arrays = dict(arrays)
        probe = _probe(teacher_fn, teacher_params, arrays)
        wanted = {n: _teacher_explainer(n, probe, normalizer) for n in explainer_names}
        static = {n: e for n, e in wanted.items()
                  if not e.trainable and not n.startswith("attention") and f"teacher_explanation/{n}" not in arrays}
        need_scores = any(n.startswith("attention") for n in wanted) and "teacher_head_scores" not in arrays
        if static or need_scores or "teacher_outputs" not in arrays:
            if "attention_mask" not in arrays and probe.head_scores is not None:  # images
                n, seq = len(next(iter(arrays.values()))), probe.head_scores.shape[-1]
                arrays["attention_mask"] = np.ones((n, seq), np.int32)
            inputs = {k: v for k, v in arrays.items() if k in (*INPUT_KEYS, "lengths")}
            cache = build_teacher_cache(teacher_fn, teacher_params, inputs, batch_size=batch_size,
                                        static_explainers=static, keep_head_scores=need_scores,
                                        progress=progress)
            arrays.setdefault("teacher_outputs", cache["outputs"])
            if need_scores:
                arrays["teacher_head_scores"] = cache["head_scores"]
            for n in static:
                arrays[f"teacher_explanation/{n}"] = cache[f"explanation/{n}"]
        out[split_name] = arrays
    return out


def _training_split(arrays, teacher_explainer) -> dict[str, np.ndarray]:
    """The fields one run's batches need, with its explainer's cache under ``teacher_explanation``."""
    split = {k: arrays[k] for k in (*INPUT_KEYS, "lengths", "teacher_outputs") if k in arrays}
    if teacher_explainer.name.startswith("attention"):
        split["teacher_head_scores"] = arrays["teacher_head_scores"]
    elif teacher_explainer.kind == "none":
        pass  # computed on the fly from the mask
    else:
        split["teacher_explanation"] = arrays[f"teacher_explanation/{teacher_explainer.name}"]
    return split


# ------------------------------------------------------------------------- evaluation


def student_predictor(student: Student) -> Callable:
    """The jitted evaluation forward of a student (build once, reuse every epoch)."""
    return jax.jit(lambda params, batch: student.apply(params["student"], batch, train=False).outputs)


def simulability(predict: Callable, student_params, arrays, batch_size: int) -> tuple[float, float]:
    """(simulability, simulation loss) of the student on a split: accuracy against the teacher's
    classes (Pearson r for regression), and the mean cross-entropy (MSE) to them.

    Args:
      predict: from :func:`student_predictor`.
      arrays: the split, with ``teacher_outputs``.
    """
    preds, targets = [], []
    for batch in device_batches(arrays, batch_size, seed=None, epoch=0):
        valid = np.asarray(batch["valid"]) > 0
        preds.append(np.asarray(predict(student_params, batch), np.float64)[valid])
        targets.append(np.asarray(batch["teacher_outputs"], np.float64)[valid])
    preds, targets = np.concatenate(preds), np.concatenate(targets)
    if preds.shape[-1] == 1:
        return float(np.corrcoef(preds[:, 0], targets[:, 0])[0, 1]), float(np.mean((preds - targets) ** 2))
    log_probs = preds - np.logaddexp.reduce(preds, axis=-1, keepdims=True)
    classes = targets.argmax(-1)
    loss = float(-np.mean(log_probs[np.arange(len(classes)), classes]))
    return float(np.mean(preds.argmax(-1) == classes)), loss


# ----------------------------------------------------------------------------- loop


class Setup(NamedTuple):
    """One run's pieces before its loop: the jitted steps, the training splits and the initial state."""

    trainer: Trainer
    student: Student
    teacher_explainer: explainers.Explainer
    splits: dict
    state: TrainState
    key: jax.Array


def _default_head_activation(family: str) -> str | None:
    return {"vit": None, "roberta": "tanh", "xlm-roberta": "tanh"}.get(family, "gelu")


def setup(teacher_fn, teacher_params, data, config: SmatConfig, student=None, student_encoder_params=None,
          teacher_expl_params=None, progress: bool = True) -> Setup:
    """What :func:`train_explainer` / :func:`train_student` build before their loop (arguments as
    there): the :class:`~smat.metalearn.Trainer` of ``config``, the splits as the steps read them
    (teacher cache, the teacher explanation of a static explainer) and the initial state and PRNG key.
    For driving the steps by hand, e.g. to inspect meta-gradients (``experiments.smat.diagnose``).
    """
    if "train" not in data or "valid" not in data:
        raise ValueError(f"data needs 'train' and 'valid' splits, got {sorted(data)}")
    data = add_teacher_cache(teacher_fn, teacher_params, data, (config.explainer,), normalizer=config.normalizer,
                             batch_size=config.batch_size, progress=progress)
    num_outputs = data["train"]["teacher_outputs"].shape[-1]
    if student is None:
        from smat.models import load_pretrained

        pretrained = load_pretrained(config.student)
        student = make_student(pretrained.encoder, num_outputs,
                               head_activation=_default_head_activation(pretrained.config.family))
        if student_encoder_params is None:
            student_encoder_params = pretrained.params
    probe = _probe(teacher_fn, teacher_params, data["train"])
    teacher_explainer = _teacher_explainer(config.explainer, probe, config.normalizer)
    # The student explainer reads the student's own heads: all of them, or only the last
    # layer when the teacher explainer is the static last-layer one (paper, Section 5).
    student_layers = (student.num_layers - 1,) if config.explainer == "attention_last_layer" else None
    student_explainer = explainers.attention_explainer(student.num_layers, student.num_heads,
                                                       normalizer=config.normalizer, layers=student_layers)
    beta = explainers.DEFAULT_BETA[teacher_explainer.kind] if config.beta is None else config.beta
    if teacher_explainer.kind == "none":
        beta = 0.0
    trainer = make_trainer(student, student_explainer, teacher_explainer, dataclasses.replace(config.meta, beta=beta))
    splits = {name: _training_split(arrays, teacher_explainer) for name, arrays in data.items()}

    key = jax.random.key(config.seed)
    key, init_key = jax.random.split(key)
    student_params = None
    if student_encoder_params is not None:
        student_params = {"student": student.init(init_key, student_encoder_params),
                          "explainer": student_explainer.init(init_key)}
    state = trainer.init(init_key, teacher_expl_params=teacher_expl_params, student_params=student_params)
    return Setup(trainer, student, teacher_explainer, splits, state, key)


def meta_valid_batch_size(config: SmatConfig) -> int:
    """Validation examples in one meta-gradient's outer loss (``config.meta.valid_batches`` batches)."""
    return config.batch_size * config.meta.valid_batches


def train_epoch(trainer: Trainer, state: TrainState, splits: Mapping[str, Mapping[str, np.ndarray]],
                config: SmatConfig, epoch: int, key: jax.Array, *, meta: bool) -> tuple[TrainState, jax.Array, list]:
    """One epoch over ``splits["train"]`` (shuffled by ``config.seed`` and ``epoch``): meta steps, each
    with the next batch of a cycling shuffled ``splits["valid"]``, or plain student steps.

    Returns the new state, the advanced PRNG key and the steps' metrics (on the host).
    """
    valid_stream = itertools.cycle(list(device_batches(
        splits["valid"], meta_valid_batch_size(config), seed=config.seed + 1, epoch=epoch))) if meta else None
    metrics = []
    for batch in device_batches(splits["train"], config.batch_size, seed=config.seed, epoch=epoch):
        key, step_key = jax.random.split(key)
        if meta:
            state, step_metrics = trainer.meta_step(state, batch, next(valid_stream), step_key)
        else:
            state, step_metrics = trainer.student_step(state, batch, step_key)
        metrics.append(step_metrics)
    return state, key, jax.device_get(metrics)


def _fit(run: Setup, config: SmatConfig, *, meta: bool, progress: bool, checkpoint=None) -> TrainResult:
    trainer, splits, state, key = run.trainer, run.splits, run.state, run.key
    predict = student_predictor(run.student)
    best_state, best_score, best_epoch, history, waited, start, done = state, -np.inf, -1, [], 0, 0, False
    if checkpoint is not None and os.path.exists(checkpoint):
        saved, info = checkpoints.load(checkpoint, {"state": state, "best": state, "key": key})
        state, best_state, key = saved["state"], saved["best"], saved["key"]
        history, waited, done = info["history"], info["waited"], info["done"]
        best_score, best_epoch, start = info["best_score"], info["best_epoch"], len(info["history"])
    best_state = jax.device_get(best_state)
    epochs = tqdm(range(start, config.max_epochs), desc=f"{config.explainer}{' (meta)' if meta else ''}",
                  disable=not progress or done, initial=start, total=config.max_epochs)
    for epoch in epochs:
        if done:
            break
        state, key, metrics = train_epoch(trainer, state, splits, config, epoch, key, meta=meta)
        score, valid_loss = simulability(predict, state.student_params, splits["valid"], config.batch_size)
        record = {"epoch": epoch, "valid_simulability": score, "valid_sim_loss": valid_loss,
                  **{k: float(np.mean([m[k] for m in metrics])) for k in metrics[0]}}
        history.append(record)
        epochs.set_postfix(sim=f"{score:.3f}", loss=f"{record['sim_loss']:.3f}")
        if score > best_score:
            best_state, best_score, best_epoch, waited = jax.device_get(state), score, epoch, 0
        else:
            waited += 1
        done = waited > config.patience
        if checkpoint is not None:
            checkpoints.save(checkpoint, {"state": state, "best": best_state, "key": key},
                             {"history": history, "waited": waited, "done": done, "best_score": best_score,
                              "best_epoch": best_epoch})
    state = jax.tree.map(jnp.asarray, best_state)
    result = {"valid_simulability": best_score, "valid_sim_loss": history[best_epoch]["valid_sim_loss"]}
    if "test" in splits:
        result["test_simulability"], result["test_sim_loss"] = simulability(
            predict, state.student_params, splits["test"], config.batch_size)
    return TrainResult(state, history, best_epoch, result, run.student)


def train_explainer(teacher_fn: Callable[..., TeacherOutput], teacher_params: Any,
                    data: Mapping[str, Mapping[str, np.ndarray]], config: SmatConfig = SmatConfig(), *,
                    student: Student | None = None, student_encoder_params: Any = None,
                    checkpoint: str | os.PathLike | None = None, progress: bool = True) -> TrainResult:
    """Trains a student to simulate a teacher with the teacher explainer ``config.explainer``;
    for ``"attention"`` the explainer is meta-learned jointly (SMaT).

    Args:
      teacher_fn: any ``teacher_fn(params, batch, embeddings=None) -> TeacherOutput``;
        ``batch`` holds ``input_ids`` + ``attention_mask`` (+ ``token_type_ids``) or
        ``pixel_values``. ``embeddings`` (the embedding output) is needed only by the
        gradient explainers.
      teacher_params: its (frozen) params.
      data: ``{"train", "valid"[, "test"]}``, each a dict of per-example arrays: the inputs
        above and, for text, ``lengths``. Teacher-cache fields already present (from
        :func:`add_teacher_cache`) are reused.
      config: :class:`SmatConfig`.
      student: from :func:`smat.students.make_student`; default: ``config.student`` loaded
        from its pretrained checkpoint with a fresh head.
      student_encoder_params: start a given ``student``'s encoder from these; default random
        (for ``student=None``, the pretrained checkpoint's).
      checkpoint: a ``.npz`` path written after every epoch (states with optimizer states,
        PRNG key, history); a run given an existing one resumes where it stopped, and a
        finished one returns at once. A resumed run equals an uninterrupted one.

    Returns:
      :class:`TrainResult` with the best state and its validation (and test) simulability.
    """
    run = setup(teacher_fn, teacher_params, data, config, student, student_encoder_params, None, progress)
    return _fit(run, config, meta=run.teacher_explainer.trainable, progress=progress, checkpoint=checkpoint)


def train_student(teacher_fn: Callable[..., TeacherOutput], teacher_params: Any,
                  data: Mapping[str, Mapping[str, np.ndarray]], config: SmatConfig = SmatConfig(), *,
                  teacher_expl_params: Any = None, student: Student | None = None,
                  student_encoder_params: Any = None, checkpoint: str | os.PathLike | None = None,
                  progress: bool = True) -> TrainResult:
    """Trains a fresh student with a frozen teacher explainer (no meta steps).

    With ``config.explainer="attention"`` and ``teacher_expl_params`` = the phi_T of a
    :func:`train_explainer` run, this is the frozen-learned-explainer protocol; with a
    static explainer it is the same as :func:`train_explainer`. Arguments as there.
    """
    run = setup(teacher_fn, teacher_params, data, config, student, student_encoder_params, teacher_expl_params,
                progress)
    return _fit(run, config, meta=False, progress=progress, checkpoint=checkpoint)
