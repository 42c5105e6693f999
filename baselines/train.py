"""Training the J&W / W&P attention classifiers, any number of seeds at once.

The reference setup (baselines_anchor.md, Section 1.2): Adam with AMSGrad at lr 1e-3 and
*coupled* L2 1e-5 (added to the gradient before the moments, as PyTorch's Adam
``weight_decay``) on everything but the attention; binary cross-entropy weighted by
``N_neg / N_pos`` on positives and summed over the batch; batches of 32 cut from a
noisy length sort with shuffled chunk order (:func:`smat.data.batching.batch_indices`);
8 epochs; the epoch with the best ROC-AUC is kept. J&W select on dev; W&P selected on the
test set (``select_on="test"`` reproduces their Table 2 protocol).

Seeds are a leading axis: parameters, optimiser states and data order of S seeds are
stacked and one ``jax.vmap``-ed, jitted step trains them all (W&P's 8-seed variance
experiment, Section 3.3). One seed is the same code with S = 1.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from baselines.models import Model
from smat import checkpoints
from smat.data.batching import bucket_lengths, iterate_batches
from smat.data.vocab import Vocabulary
from smat.plausibility import roc_auc

__all__ = ["TrainConfig", "TrainState", "TrainResult", "encode_split", "encode_pairs", "optimizer",
           "classification_loss", "default_loss", "train", "predict", "binary_metrics", "step_functions",
           "stack_batches"]

# Per-token fields cut to each batch's width; any other per-example field travels whole.
SEQ_KEYS = ("input_ids", "attention_mask", "segment_ids", "special_mask", "guide", "target_attention")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The reference's training loop.

    Attributes:
      lr: Adam (AMSGrad) learning rate.
      weight_decay: coupled L2 on every parameter but the attention's.
      batch_size: examples per step.
      epochs: passes over the train split (8 in both papers).
      select_on: "dev" (J&W, the default here) or "test" (W&P's protocol: model selection on
        the test set, which is what their Table 2 numbers used), or "train".
      select_metric: "auc" (highest ROC-AUC against the labels; binary models), "accuracy"
        (highest; any number of classes) or "loss" (lowest mean
        training loss on ``select_on``: the W&P adversary, whose target is a model, not labels).
      skip_first_epoch: J&W never kept epoch 0's model.
      bucket_step: sequence widths are multiples of this (one compilation per width).
    """

    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 32
    epochs: int = 8
    select_on: str = "dev"
    select_metric: str = "auc"
    skip_first_epoch: bool = False
    bucket_step: int = 16

    def __post_init__(self):
        if self.select_on not in ("dev", "test", "train"):
            raise ValueError(f"select_on must be 'dev', 'test' or 'train', got {self.select_on!r}")
        if self.select_metric not in ("auc", "accuracy", "loss"):
            raise ValueError(f"select_metric must be 'auc', 'accuracy' or 'loss', got {self.select_metric!r}")


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    params: Any
    opt_state: Any


class TrainResult(NamedTuple):
    """Per-seed results; every array has the seeds first.

    Attributes:
      params: the selected epoch's parameters, stacked over seeds.
      history: per epoch, ``{"epoch", "loss": [S], "<split>/<metric>": [S]}``.
      best_epoch: [S] the selected epoch of each seed.
      metrics: ``{split: {"auc", "f1", "accuracy"}: [S]}`` at the selected epoch (multi-class: "accuracy").
      seeds: the seeds, in order.
    """

    params: Any
    history: list[dict]
    best_epoch: np.ndarray
    metrics: dict[str, dict[str, np.ndarray]]
    seeds: tuple[int, ...]


def encode_split(vocab: Vocabulary, texts: Sequence[str], labels: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
    """``[SOS] tokens [EOS]`` ids right-padded to the split's longest document, with masks and labels."""
    ids = vocab.encode_batch(texts)
    lengths = np.asarray([len(i) for i in ids], np.int32)
    width = int(lengths.max())
    input_ids = np.zeros((len(ids), width), np.int32)
    for row, seq in enumerate(ids):
        input_ids[row, :len(seq)] = seq
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int32)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": np.asarray(labels, np.int32),
            "lengths": lengths}


def encode_pairs(vocab: Vocabulary, premises: Sequence[str], hypotheses: Sequence[str],
                 labels: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
    """Pairs as one flat row each, ``[SOS] premise [EOS] [SOS] hypothesis [EOS]``, with
    ``segment_ids`` (0 premise, 1 hypothesis), masks and labels (:func:`baselines.models.flat_pair`)."""
    first, second = vocab.encode_batch(premises), vocab.encode_batch(hypotheses)
    lengths = np.asarray([len(a) + len(b) for a, b in zip(first, second, strict=True)], np.int32)
    width = int(lengths.max())
    input_ids = np.zeros((len(lengths), width), np.int32)
    segment_ids = np.zeros((len(lengths), width), np.int32)
    for row, (a, b) in enumerate(zip(first, second)):
        input_ids[row, :len(a) + len(b)] = list(a) + list(b)
        segment_ids[row, len(a):len(a) + len(b)] = 1
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int32)
    return {"input_ids": input_ids, "attention_mask": mask, "segment_ids": segment_ids,
            "labels": np.asarray(labels, np.int32), "lengths": lengths}


def _decay_mask(params):
    # The reference gives the attention its own optimiser without weight decay.
    return {k: jax.tree.map(lambda _: k != "attention", v) for k, v in params.items()}


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Coupled L2 (PyTorch Adam ``weight_decay``) then AMSGrad; no decay on ``params["attention"]``."""
    return optax.chain(optax.add_decayed_weights(config.weight_decay, mask=_decay_mask), optax.amsgrad(config.lr))


def classification_loss(logits: jax.Array, labels: jax.Array, valid: jax.Array, pos_weight: float) -> jax.Array:
    """The reference's loss: binary (one logit): BCE with positives weighted by ``pos_weight``, summed
    over the batch; multi-class (J&W's pair models): cross-entropy averaged over the batch."""
    valid = valid.astype(logits.dtype)
    if logits.shape[-1] == 1:
        y = labels.astype(logits.dtype)
        per_example = optax.sigmoid_binary_cross_entropy(logits[:, 0], y)
        weights = y * jnp.asarray(pos_weight, logits.dtype) + (1 - y)
        return jnp.sum(per_example * weights * valid)
    per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(per_example * valid) / jnp.maximum(jnp.sum(valid), 1)


def default_loss(model: Model, params, batch, pos_weight: float) -> jax.Array:
    """The reference's supervised loss of ``model`` on a batch (see :func:`classification_loss`)."""
    logits, _ = model.apply(params, batch)
    return classification_loss(logits, batch["labels"], batch["valid"], pos_weight)


def binary_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """ROC-AUC, positive-class F1 at p > 0.5 and accuracy, per seed.

    Args:
      probs: [seeds, examples] positive-class probabilities.
      labels: [examples] 0/1.
    """
    probs = np.asarray(probs)
    labels = np.asarray(labels).astype(bool)
    auc, _ = roc_auc(jnp.asarray(probs), jnp.asarray(np.broadcast_to(labels, probs.shape)))
    pred = probs > 0.5
    tp = (pred & labels).sum(-1)
    precision = tp / np.maximum(pred.sum(-1), 1)
    recall = tp / max(labels.sum(), 1)
    f1 = np.where(tp > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    return {"auc": np.asarray(auc, np.float64), "f1": f1, "accuracy": (pred == labels).mean(-1)}


def stack_batches(batches: Sequence[dict[str, np.ndarray]]) -> dict[str, jax.Array]:
    """Stacks one batch per seed, padding sequence fields to the widest."""
    width = max(b["input_ids"].shape[1] for b in batches)
    out = {}
    for name in batches[0]:
        rows = [b[name] for b in batches]
        if name in SEQ_KEYS:
            rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]))) for r in rows]
        out[name] = jnp.asarray(np.stack(rows))
    return out


def _buckets(arrays, step: int) -> tuple[int, ...]:
    return bucket_lengths(arrays["input_ids"].shape[1], step=step, minimum=step)


@functools.lru_cache(maxsize=16)
def _predictor(model: Model):
    """Jitted outputs and attention of every seed's model on one batch (compiled once per model and shape)."""

    @jax.jit
    def run(params, batch):
        def one(p):
            logits, aux = model.apply(p, batch)
            probs = jax.nn.sigmoid(logits) if logits.shape[-1] == 1 else jax.nn.softmax(logits, -1)
            return probs, aux["attention"]

        return jax.vmap(one)(params)

    return run


def predict(model: Model, params, arrays: Mapping[str, np.ndarray], *, batch_size: int = 64,
            bucket_step: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Outputs and attention of every seed's model on a split.

    Returns:
      ``(outputs, attention)``: [seeds, examples, classes] (probabilities: sigmoid for one
      logit, softmax otherwise) and [seeds, examples, seq] at the split's full width.
    """
    fields = {k: v for k, v in arrays.items() if k in SEQ_KEYS}
    run = _predictor(model)

    n, width = arrays["input_ids"].shape
    seeds = jax.tree.leaves(params)[0].shape[0]
    outputs = np.zeros((seeds, n, model.config.num_classes), np.float32)
    attention = np.zeros((seeds, n, width), np.float32)
    for batch in iterate_batches(fields, arrays["lengths"], batch_size, seed=None,
                                 buckets=_buckets(arrays, bucket_step), seq_keys=SEQ_KEYS):
        index, valid = batch.pop("index"), batch.pop("valid") > 0
        probs, attn = jax.device_get(run(params, {k: jnp.asarray(v) for k, v in batch.items()}))
        outputs[:, index[valid]] = probs[:, valid]
        attention[:, index[valid], :attn.shape[-1]] = attn[:, valid]
    return outputs, attention


def _split_loss(loss_fn, params, arrays, config) -> np.ndarray:
    """[seeds] the mean per-example loss over a split (batches in length order)."""
    fields = {k: v for k, v in arrays.items() if k != "lengths"}
    total = 0.0
    for batch in iterate_batches(fields, arrays["lengths"], config.batch_size, seed=None,
                                 buckets=_buckets(arrays, config.bucket_step), seq_keys=SEQ_KEYS):
        batch.pop("index")
        total = total + loss_fn(params, {k: jnp.asarray(v) for k, v in batch.items()})
    return np.asarray(total) / len(arrays["lengths"])


def _evaluate(model, params, data, splits, config, loss_fn=None) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for split in splits:
        probs, _ = predict(model, params, data[split], batch_size=2 * config.batch_size,
                           bucket_step=config.bucket_step)
        labels = data[split]["labels"]
        out[split] = (binary_metrics(probs[..., -1], labels) if probs.shape[-1] == 1 else
                      {"accuracy": (probs.argmax(-1) == labels).mean(-1)})
        if loss_fn is not None:
            out[split]["loss"] = _split_loss(loss_fn, params, data[split], config)
    return out


@functools.lru_cache(maxsize=16)
def step_functions(model: Model, config: TrainConfig, loss: Callable, pos_weight: float):
    """The jitted training step and split-loss function, vmapped over a leading seed axis.

    Returns:
      ``(train_step, batch_loss)``: ``train_step(state, batch) -> (state, loss [seeds])`` with
      ``state`` donated and every field of ``batch`` stacked over seeds; ``batch_loss(params,
      batch) -> [seeds]`` on one shared batch. Cached per (model, config, loss, pos_weight),
      so repeated runs (and benchmarks) compile once per shape.
    """
    opt = optimizer(config)

    def batch_loss(params, batch):
        return loss(model, params, batch, pos_weight)

    def step(state: TrainState, batch) -> tuple[TrainState, jax.Array]:
        value, grads = jax.value_and_grad(batch_loss)(state.params, batch)
        with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
            updates, opt_state = opt.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state), value

    return jax.jit(jax.vmap(step), donate_argnums=0), jax.jit(jax.vmap(batch_loss, in_axes=(0, None)))


def train(model: Model, data: Mapping[str, Mapping[str, np.ndarray]], config: TrainConfig = TrainConfig(), *,
          seeds: Sequence[int] = (10,), embeddings: np.ndarray | None = None, loss: Callable | None = None,
          init_params: Any = None, checkpoint: str | os.PathLike | None = None, progress: bool = True) -> TrainResult:
    """Trains one model per seed, all seeds in one vmapped step.

    Args:
      model: a :func:`baselines.models.bilstm_classifier` (single-sequence, binary).
      data: ``train``, ``dev`` and ``test`` splits from :func:`encode_split`.
      config: the loop.
      seeds: each seed draws its own initialisation (``jax.random.key(seed)``) and data order.
      embeddings: [vocab, dim] pretrained table every seed starts from.
      loss: ``loss(model, params, batch, pos_weight) -> scalar`` (default :func:`default_loss`);
        batches carry every per-example field of ``data["train"]`` (e.g. a base model's
        outputs for the W&P adversary, a guide attention for the guided MLP) plus ``valid``.
      init_params: parameters stacked over seeds to start from instead of ``model.init``.
      checkpoint: an ``.npz`` path written after every epoch; an interrupted run resumes from it.
      progress: show a progress bar.

    Returns:
      :class:`TrainResult`.
    """
    seeds = tuple(int(s) for s in seeds)
    labels = data["train"]["labels"]
    pos_weight = float((labels == 0).sum() / max((labels == 1).sum(), 1))
    opt = optimizer(config)
    loss = loss or default_loss
    if init_params is None:
        init_params = jax.vmap(lambda k: model.init(k, embeddings))(jnp.stack([jax.random.key(s) for s in seeds]))
    state = TrainState(init_params, jax.vmap(opt.init)(init_params))

    train_step, split_loss = step_functions(model, config, loss, pos_weight)
    split_loss = split_loss if config.select_metric == "loss" else None
    select = config.select_on
    best_params, best_score = jax.tree.map(jnp.copy, state.params), np.full(len(seeds), -np.inf)
    best_epoch, history, start = np.full(len(seeds), -1), [], 0
    if checkpoint is not None and os.path.exists(checkpoint):
        saved, info = checkpoints.load(checkpoint, {"state": state, "best": best_params})
        state, best_params = saved["state"], saved["best"]
        history, start = info["history"], len(info["history"])
        best_score, best_epoch = np.asarray(info["best_score"]), np.asarray(info["best_epoch"])
    fields = {k: v for k, v in data["train"].items() if k != "lengths"}
    buckets = _buckets(data["train"], config.bucket_step)
    steps = -(-len(labels) // config.batch_size)
    for epoch in tqdm(range(start, config.epochs), desc=f"train x{len(seeds)} seeds", disable=not progress,
                      initial=start, total=config.epochs):
        streams = [iterate_batches(fields, data["train"]["lengths"], config.batch_size, seed=s, epoch=epoch,
                                   buckets=buckets, seq_keys=SEQ_KEYS) for s in seeds]
        losses = []
        for batches in zip(*streams):
            for b in batches:
                b.pop("index")
            state, batch_value = train_step(state, stack_batches(batches))
            losses.append(batch_value)
        assert len(losses) == steps
        scores = _evaluate(model, state.params, data, ("dev", "test") if select != "train" else ("train", "test"),
                           config, split_loss)
        record = {"epoch": epoch, "loss": np.sum(jax.device_get(losses), axis=0) / len(labels)}
        record |= {f"{split}/{k}": v for split, m in scores.items() for k, v in m.items()}
        history.append(jax.tree.map(lambda x: np.asarray(x).tolist(), record))
        score = -scores[select]["loss"] if config.select_metric == "loss" else scores[select][config.select_metric]
        improved = score > best_score
        if config.skip_first_epoch and epoch == 0:
            improved[:] = False
        best_score = np.where(improved, score, best_score)
        best_epoch = np.where(improved, epoch, best_epoch)
        chosen = jnp.asarray(improved)
        best_params = jax.tree.map(
            lambda new, old: jnp.where(chosen.reshape(-1, *[1] * (new.ndim - 1)), new, old), state.params, best_params)
        if checkpoint is not None:
            checkpoints.save(checkpoint, {"state": state, "best": best_params},
                             {"history": history, "best_score": best_score.tolist(),
                              "best_epoch": best_epoch.tolist()})
    metrics = _evaluate(model, best_params, data, ("train", "dev", "test"), config)
    return TrainResult(best_params, history, best_epoch, metrics, seeds)
