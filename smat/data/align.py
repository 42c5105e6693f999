"""Word-piece to word alignment: piece scores summed into words, gold rationale word masks.

The SMaT reference sums word-piece explanation scores into words (``scatter_add`` over
a continuation mask) and drops special tokens; gold word labels come from ERASER's
evidence spans, given as whitespace-token offsets.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["pieces_to_words", "rationale_word_mask"]


def pieces_to_words(scores: jax.Array, word_ids: jax.Array, num_words: int, *,
                    sequence_ids: jax.Array | None = None, sequence: int = 0) -> jax.Array:
    """Sums per-piece scores into per-word scores, batched and jittable.

    Args:
      scores: [batch, seq] piece scores.
      word_ids: [batch, seq] word index per piece, -1 for specials / padding.
      num_words: static width of the output.
      sequence_ids: [batch, seq] for pair inputs: only pieces of ``sequence`` count.
      sequence: which text of a pair to align (0 or 1).

    Returns:
      [batch, num_words] word scores (0 beyond each example's last word).
    """
    keep = word_ids >= 0
    if sequence_ids is not None:
        keep = keep & (sequence_ids == sequence)
    # Dropped pieces go to an extra bucket that is cut off.
    segments = jnp.where(keep, word_ids, num_words)

    def one(s, seg):
        return jax.ops.segment_sum(s, seg, num_segments=num_words + 1)[:num_words]

    return jax.vmap(one)(scores, segments)


def rationale_word_mask(spans: Sequence[Sequence[tuple[int, int]]], num_words: int) -> np.ndarray:
    """[examples, num_words] 0/1 gold mask from evidence spans ``(start, end)`` (end exclusive)."""
    mask = np.zeros((len(spans), num_words), np.int8)
    for i, example in enumerate(spans):
        for start, end in example:
            mask[i, max(start, 0):min(end, num_words)] = 1
    return mask
