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

import dataclasses
import functools
import os
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from smat import checkpoints
from smat.data.batching import device_batches, example_lengths, map_batches
from smat.explainers import Explainer, ExplainerInputs

__all__ = ["TeacherOutput", "encoder_teacher", "build_teacher_cache", "with_classification_head",
           "TeacherTrainConfig", "fit_teacher"]

Array = jax.Array


class TeacherOutput(NamedTuple):
    """Attributes: logits [batch, classes] ([batch, 1] regression); head_scores [batch, layers, heads, seq]
    (None if the teacher has no attention); embeddings [batch, seq, hidden] h0 (None if not differentiable)."""

    logits: Array
    head_scores: Array | None = None
    embeddings: Array | None = None


def encoder_teacher(encoder) -> Callable[..., TeacherOutput]:
    """A teacher function for one of our encoders (text or ViT) whose params carry a classification head.

    The returned function also takes ``key=`` and ``train=`` (dropout), which
    :func:`fit_teacher` uses; the cache and the explainers call it in eval mode.
    """
    is_text = encoder.config.family != "vit"

    def teacher_fn(params, batch, embeddings=None, *, key=None, train=False) -> TeacherOutput:
        k_embed, k_encode = jax.random.split(key) if key is not None else (None, None)
        if embeddings is None:
            embeddings = (encoder.embed(params, batch["input_ids"], batch.get("token_type_ids"), key=k_embed,
                                        train=train) if is_text
                          else encoder.embed(params, batch["pixel_values"], key=k_embed, train=train))
        out = encoder.encode(params, embeddings, batch["attention_mask"] if is_text else None, key=k_encode,
                             train=train)
        if out.logits is None:
            raise ValueError("the teacher's params carry no classification head (see with_classification_head)")
        return TeacherOutput(out.logits, out.head_scores, embeddings)

    return teacher_fn


def with_classification_head(encoder, params, num_labels: int, key: jax.Array):
    """Adds a fresh classification head (the family's Hugging Face head) to encoder-only params.

    Returns:
      ``(encoder, params)``: an encoder built with the head, and ``params`` plus a new
      ``head`` (and BERT's ``pooler`` when the checkpoint has none), as
      ``*ForSequenceClassification.from_pretrained`` would start fine-tuning.
    """
    from smat.models import build
    from smat.models.config import HEADS

    family = encoder.config.family
    head = "vit" if family == "vit" else HEADS[family][0]
    config = dataclasses.replace(encoder.config, head=head, num_labels=num_labels,
                                 pooler=encoder.config.pooler or head == "bert")
    with_head = build(config)
    fresh = with_head.init(key, only=("head", "pooler"))  # the encoder's init would be discarded
    params = dict(params)
    params["head"] = fresh["head"]
    if "pooler" in fresh and "pooler" not in params:
        params["pooler"] = fresh["pooler"]
    return with_head, params


def build_teacher_cache(teacher_fn: Callable[..., TeacherOutput], teacher_params, arrays: Mapping[str, np.ndarray],
                        *, batch_size: int = 32, static_explainers: Mapping[str, Explainer] | None = None,
                        keep_head_scores: bool = True, progress: bool = True) -> dict[str, np.ndarray]:
    """Runs the frozen teacher once over a tokenized split.

    Args:
      teacher_fn, teacher_params: the teacher.
      arrays: ``input_ids``, ``attention_mask`` (, ``token_type_ids``) and ``lengths`` of every
        example, or ``pixel_values`` (and an all-ones ``attention_mask``) for images.
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
    inputs = {k: arrays[k] for k in ("input_ids", "attention_mask", "token_type_ids", "pixel_values") if k in arrays}

    # The params are an argument, not a closure: closed-over arrays would be compiled into the
    # program as constants (slower to compile, and a copy of the teacher in every executable).
    @jax.jit
    def run(params, batch):
        out = teacher_fn(params, batch)
        result = {"outputs": out.logits}
        if keep_head_scores and out.head_scores is not None:
            result["head_scores"] = out.head_scores
        for name, explainer in static_explainers.items():
            expl_inputs = ExplainerInputs(
                mask=batch["attention_mask"], head_scores=out.head_scores, embeddings=out.embeddings,
                output_fn=lambda e: teacher_fn(params, batch, embeddings=e).logits)
            result[f"explanation/{name}"] = explainer.apply(explainer.init(), expl_inputs)[0]
        return result

    return map_batches(functools.partial(run, teacher_params), inputs, example_lengths(arrays), batch_size,
                       seq_keys=("input_ids", "attention_mask", "token_type_ids"), desc="teacher cache",
                       progress=progress)


# ------------------------------------------------------------------------ fine-tuning


@dataclasses.dataclass(frozen=True)
class TeacherTrainConfig:
    """Teacher fine-tuning (defaults: the reference's IMDB teacher).

    Attributes:
      lr: AdamW peak learning rate, reached by linear warmup over ``warmup_steps`` (0 gives
        one step at lr 0 first, as 1 would; kept so that recorded runs replay exactly).
      weight_decay: AdamW's decoupled weight decay.
      clip: global-norm gradient clip.
      batch_size, max_epochs, patience, seed: the loop; the best epoch on validation
        accuracy (negative MSE for regression) is kept.
    """

    lr: float = 5e-5
    warmup_steps: int = 500
    weight_decay: float = 0.01
    clip: float = 1.0
    batch_size: int = 16
    max_epochs: int = 3
    patience: int = 5
    seed: int = 0


def _supervised_loss(logits, targets, valid):
    if logits.shape[-1] == 1:
        per_example = jnp.square(logits[:, 0] - targets.astype(logits.dtype))
    else:
        per_example = optax.softmax_cross_entropy_with_integer_labels(logits, targets.astype(jnp.int32))
    valid = valid.astype(per_example.dtype)
    return (per_example * valid).sum() / jnp.maximum(valid.sum(), 1.0)


def _score(logits: np.ndarray, targets: np.ndarray) -> float:
    if logits.shape[-1] == 1:
        return -float(np.mean((logits[:, 0] - targets) ** 2))
    return float(np.mean(logits.argmax(-1) == targets))


def fit_teacher(teacher_fn: Callable, params: Any, train: Mapping[str, np.ndarray],
                valid: Mapping[str, np.ndarray] | None = None, config: TeacherTrainConfig = TeacherTrainConfig(), *,
                checkpoint: str | os.PathLike | None = None, progress: bool = True) -> tuple[Any, list[dict]]:
    """Fine-tunes a teacher on gold targets: cross-entropy (MSE for one output), AdamW with warmup and clipping.

    Args:
      teacher_fn: ``teacher_fn(params, batch, key=..., train=True) -> TeacherOutput`` (as
        :func:`encoder_teacher`; functions without ``key``/``train`` train without dropout).
      params: the starting params (e.g. from :func:`with_classification_head`).
      train, valid: per-example arrays: the inputs, ``lengths`` (text) and ``targets``
        (class ids, or float scores for regression).
      checkpoint: ``.npz`` written after every epoch (params, AdamW state, best params);
        a killed run resumes from it.

    Returns:
      ``(best params on valid, history)``; without ``valid``, the last params.
    """
    import inspect

    takes_key = "key" in inspect.signature(teacher_fn).parameters
    schedule = optax.linear_schedule(0.0, config.lr, max(config.warmup_steps, 1))
    optimizer = optax.chain(optax.clip_by_global_norm(config.clip),
                            optax.adamw(schedule, weight_decay=config.weight_decay))

    def forward(p, batch, key=None, train_mode=False):
        inputs = {k: v for k, v in batch.items() if k not in ("targets", "valid")}
        if takes_key:
            return teacher_fn(p, inputs, key=key, train=train_mode).logits
        return teacher_fn(p, inputs).logits

    @jax.jit
    def step(p, opt_state, batch, key):
        loss, grads = jax.value_and_grad(
            lambda q: _supervised_loss(forward(q, batch, key, True), batch["targets"], batch["valid"]))(p)
        with jax.numpy_dtype_promotion("standard"):  # optax's step counters are int32
            updates, opt_state = optimizer.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    predict = jax.jit(forward)

    key = jax.random.key(config.seed)
    opt_state = optimizer.init(params)
    best, best_score, history, waited, start = params, -np.inf, [], 0, 0
    if checkpoint is not None and os.path.exists(checkpoint):
        saved, info = checkpoints.load(checkpoint, {"params": params, "opt": opt_state, "best": params, "key": key})
        params, opt_state, best, key = saved["params"], saved["opt"], saved["best"], saved["key"]
        history, waited, best_score, start = info["history"], info["waited"], info["best_score"], len(info["history"])
        if info["done"]:
            return best, history
    n_batches = -(-len(train["targets"]) // config.batch_size)
    for epoch in range(start, config.max_epochs):
        losses = []
        for batch in tqdm(device_batches(train, config.batch_size, seed=config.seed, epoch=epoch), total=n_batches,
                          desc=f"teacher epoch {epoch}", disable=not progress, leave=False):
            key, step_key = jax.random.split(key)
            params, opt_state, loss = step(params, opt_state, batch, step_key)
            losses.append(loss)
        record = {"epoch": epoch, "train_loss": float(np.mean(jax.device_get(losses)))}
        if not np.isfinite(record["train_loss"]):
            raise FloatingPointError(
                f"the teacher's training loss is {record['train_loss']} in epoch {epoch}. The last batch of an "
                "epoch is padded with rows whose attention_mask is all zero (valid = 0): a teacher_fn that "
                "divides by the mask's sum must guard it, e.g. jnp.maximum(mask.sum(1), 1); otherwise lower lr.")
        if valid is not None:
            logits, targets = [], []
            for batch in device_batches(valid, config.batch_size, seed=None):
                keep = np.asarray(batch["valid"]) > 0
                logits.append(np.asarray(predict(params, batch))[keep])
                targets.append(np.asarray(batch["targets"])[keep])
            record["valid_score"] = _score(np.concatenate(logits), np.concatenate(targets))
        history.append(record)
        if progress:
            scores = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch")
            tqdm.write(f"teacher epoch {epoch}: {scores}")
        score = record.get("valid_score", epoch)
        if score > best_score:
            best, best_score, waited = params, score, 0
        else:
            waited += 1
        done = waited > config.patience
        if checkpoint is not None:
            checkpoints.save(checkpoint, {"params": params, "opt": opt_state, "best": best, "key": key},
                             {"history": history, "waited": waited, "best_score": best_score, "done": done})
        if done:
            break
    return best, history
