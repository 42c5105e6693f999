"""Static-shape batching: length buckets, padding with masks, nothing dropped, seeded order.

Every batch has ``batch_size`` rows and a sequence length taken from a small fixed set
of buckets, so a jitted step compiles once per bucket and never again. The last
partial batch is padded with empty rows whose ``valid`` flag is 0 (metrics and losses
weight by it) instead of being dropped. Order comes from an explicit seed and epoch.
"""

from __future__ import annotations

import functools
from typing import Callable, Iterator, Mapping, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

__all__ = ["bucket_lengths", "batch_indices", "iterate_batches", "example_lengths", "device_batches", "map_batches",
           "normalize_images", "resize_images"]


def bucket_lengths(max_length: int, *, step: int = 32, minimum: int = 16) -> tuple[int, ...]:
    """Bucket widths ``minimum, step, 2*step, ..., max_length`` (always ending at max_length)."""
    widths = {min(max(w, minimum), max_length) for w in range(step, max_length + step, step)}
    return tuple(sorted(widths | {min(minimum, max_length)}))


def batch_indices(lengths: np.ndarray, batch_size: int, *, seed: int | None, epoch: int = 0,
                  sort_noise: float = 0.1) -> list[np.ndarray]:
    """Example indices per batch, every example exactly once.

    With a seed: J&W's bucketing: sort by length plus uniform noise of ``sort_noise`` x
    length, cut consecutive chunks, shuffle the chunks; all from
    ``np.random.default_rng((seed, epoch))``. ``seed=None`` (evaluation): sorted by
    length, deterministic.
    """
    lengths = np.asarray(lengths)
    if seed is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng((seed, epoch))
    noisy = lengths + rng.uniform(-sort_noise, sort_noise, len(lengths)) * lengths
    order = np.argsort(noisy, kind="stable")
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [chunks[i] for i in rng.permutation(len(chunks))]


def iterate_batches(arrays: Mapping[str, np.ndarray], lengths: np.ndarray, batch_size: int, *,
                    seed: int | None, epoch: int = 0, buckets: Sequence[int] | None = None,
                    seq_keys: Sequence[str] = ("input_ids", "attention_mask", "token_type_ids", "word_ids",
                                               "sequence_ids")) -> Iterator[dict[str, np.ndarray]]:
    """Yields padded batches of a columnar data set.

    Args:
      arrays: name -> array with examples first; arrays named in ``seq_keys`` are
        [examples, seq] and are cut to the batch's bucket width.
      lengths: [examples] real length of each example.
      batch_size: rows per batch (the last batch is padded to it).
      seed, epoch: order (see :func:`batch_indices`); ``seed=None`` for evaluation.
      buckets: allowed widths; default: one width, the arrays' full width.

    Yields:
      dicts with the sliced arrays plus ``valid`` [batch] (1 real, 0 padding row) and
      ``index`` [batch] (example index, -1 for padding rows).
    """
    width = max((arrays[k].shape[1] for k in seq_keys if k in arrays), default=0)
    buckets = tuple(sorted(buckets or (width,)))
    if width and buckets[-1] < int(np.max(lengths)):
        raise ValueError(f"the longest example ({int(np.max(lengths))}) exceeds the largest bucket {buckets[-1]}")
    for idx in batch_indices(lengths, batch_size, seed=seed, epoch=epoch):
        bucket = next((b for b in buckets if b >= int(lengths[idx].max())), buckets[-1])
        pad = batch_size - len(idx)
        batch = {}
        for name, array in arrays.items():
            rows = array[idx]
            if name in seq_keys:
                rows = rows[:, :bucket]
            if pad:
                fill = -1 if name in ("word_ids", "sequence_ids") else 0
                rows = np.concatenate([rows, np.full((pad, *rows.shape[1:]), fill, rows.dtype)])
            batch[name] = rows
        batch["valid"] = np.concatenate([np.ones(len(idx), np.float32), np.zeros(pad, np.float32)])
        batch["index"] = np.concatenate([idx, np.full(pad, -1, idx.dtype)]).astype(np.int64)
        yield batch


def example_lengths(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """``arrays["lengths"]``, or all ones for data without a length (images: one fixed width)."""
    if "lengths" in arrays:
        return np.asarray(arrays["lengths"])
    return np.ones(len(next(iter(arrays.values()))), np.int32)


def device_batches(arrays: Mapping[str, np.ndarray], batch_size: int, *, seed: int | None,
                   epoch: int = 0) -> Iterator[dict[str, jax.Array]]:
    """Full-width batches of every field but ``lengths`` as device arrays, with ``valid`` (no ``index``).

    The training loops' batches: one shape per data set, so each jitted step compiles once.
    """
    fields = {k: v for k, v in arrays.items() if k != "lengths"}
    for batch in iterate_batches(fields, example_lengths(arrays), batch_size, seed=seed, epoch=epoch, seq_keys=()):
        batch.pop("index")
        yield {k: jax.numpy.asarray(v) for k, v in batch.items()}


def map_batches(fn: Callable[[dict], Mapping[str, jax.Array]], arrays: Mapping[str, np.ndarray], lengths: np.ndarray,
                batch_size: int, *, seq_keys: Sequence[str] = (), desc: str | None = None,
                progress: bool = False) -> dict[str, np.ndarray]:
    """Runs ``fn`` over evaluation batches (length order, padded rows dropped) and gathers its outputs.

    Args:
      fn: device batch -> ``{name: [batch, ...]}`` (typically jitted).
      arrays, lengths, batch_size, seq_keys: as :func:`iterate_batches` (one full width).
      desc, progress: the progress bar.

    Returns:
      ``{name: [examples, ...]}`` in the order of ``arrays``.
    """
    n = len(lengths)
    out: dict[str, np.ndarray] = {}
    batches = iterate_batches(arrays, lengths, batch_size, seed=None, seq_keys=seq_keys)
    for batch in tqdm(batches, total=-(-n // batch_size), desc=desc, disable=not progress):
        index, valid = batch.pop("index"), batch.pop("valid") > 0
        result = jax.device_get(fn({k: jax.numpy.asarray(v) for k, v in batch.items()}))
        for name, value in result.items():
            if name not in out:
                out[name] = np.zeros((n, *value.shape[1:]), value.dtype)
            out[name][index[valid]] = value[valid]
    return out


def normalize_images(images: np.ndarray, mean: float | Sequence[float] = 0.5,
                     std: float | Sequence[float] = 0.5) -> np.ndarray:
    """uint8 NHWC images -> float32 ``(x / 255 - mean) / std`` (ViT's default mean = std = 0.5)."""
    x = np.asarray(images, np.float32) / 255.0
    if x.ndim == 3:  # grayscale [n, h, w]
        x = x[..., None]
    return (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


@functools.partial(jax.jit, static_argnames=("size", "method"))
def resize_images(images: jax.Array, size: int, method: str = "bilinear") -> jax.Array:
    """Resizes NHWC float images to ``size`` x ``size`` (e.g. 32 -> 224 for ViT-B/16), batched on device."""
    batch, _, _, channels = images.shape
    return jax.image.resize(images, (batch, size, size, channels), method=method, antialias=False)
