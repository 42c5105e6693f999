"""Plausibility: agreement of explanations with human word-level rationales, as ROC-AUC.

The SMaT paper (Fernandes, Treviso et al. 2022, Tables 2 and 6) scores an explainer by the
ROC-AUC of its word scores against binary human labels (ERASER evidence words; MLQE-PE
post-editing BAD tags), computed per example and averaged over the examples whose gold has
both labels. Word-piece scores are summed into words first (:func:`word_scores`). The
"best layer / best head" rows sweep every layer and head of an attention explainer; here
the whole sweep is one batched computation (:func:`sweep_coefficients` +
:func:`candidate_explanations`) instead of the reference's loop over 144 heads.

Everything here is jittable and works on a leading batch dimension.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from smat import explainers
from smat.data.align import pieces_to_words

__all__ = ["roc_auc", "mean_auc", "word_scores", "sweep_coefficients", "candidate_explanations"]

Array = jax.Array


def roc_auc(scores: Array, labels: Array, mask: Array | None = None) -> tuple[Array, Array]:
    """ROC-AUC of each row's scores against its binary labels (ties count one half).

    Computed from average ranks (the Mann-Whitney U statistic), so it equals
    ``sklearn.metrics.roc_auc_score`` on each row's valid entries, in O(n log n).

    Args:
      scores: [..., n] real scores (higher = more likely positive).
      labels: [..., n] 0/1 gold labels.
      mask: [..., n] 1 where an entry exists (padding, missing words: 0); default all.

    Returns:
      ``(auc, defined)``: [...] the AUC (NaN where undefined) and whether the row has at
      least one positive and one negative valid entry.

    Example:
      >>> auc, ok = roc_auc(jnp.array([0.1, 0.9, 0.4]), jnp.array([0, 1, 1]))
      >>> float(auc), bool(ok)
      (1.0, True)
    """
    scores = jnp.asarray(scores)
    dtype = scores.dtype if jnp.issubdtype(scores.dtype, jnp.floating) else jnp.float32
    scores = scores.astype(dtype)
    valid = jnp.ones(scores.shape, bool) if mask is None else jnp.asarray(mask).astype(bool)
    positive = jnp.asarray(labels).astype(bool) & valid
    negative = valid & ~positive
    # Invalid entries sort last, so they never count as "less than" a valid score.
    keyed = jnp.where(valid, scores, jnp.inf).reshape(-1, scores.shape[-1])
    ordered = jnp.sort(keyed, axis=-1)
    below = jax.vmap(lambda s, x: jnp.searchsorted(s, x, side="left"))(ordered, keyed)
    upto = jax.vmap(lambda s, x: jnp.searchsorted(s, x, side="right"))(ordered, keyed)
    rank = ((below + upto + 1) / 2).reshape(scores.shape).astype(dtype)  # 1-based average rank
    n_pos = positive.sum(-1).astype(dtype)
    n_neg = negative.sum(-1).astype(dtype)
    u = jnp.sum(jnp.where(positive, rank, 0), axis=-1) - n_pos * (n_pos + 1) / 2
    defined = (n_pos > 0) & (n_neg > 0)
    auc = jnp.where(defined, u / jnp.where(defined, n_pos * n_neg, 1), jnp.nan)
    return auc, defined


def mean_auc(auc: np.ndarray, defined: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean AUC over the examples where it is defined (NaN if none), and how many those are (numpy)."""
    auc, defined = np.asarray(auc), np.asarray(defined, bool)
    count = np.broadcast_to(defined, auc.shape).sum(axis)
    total = np.where(defined, auc, 0.0).sum(axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan), count


def word_scores(piece_scores: Array, word_ids: Array, num_words: int, *, sequence_ids: Array | None = None,
                sequence: int = 0) -> tuple[Array, Array]:
    """Sums word-piece scores into whitespace words (as the reference does) and marks present words.

    Args:
      piece_scores: [batch, seq] (or [batch, rows, seq]: several explanations of each example).
      word_ids: [batch, seq] word index per piece, -1 for special tokens and padding.
      num_words: static width of the output.
      sequence_ids, sequence: for pair inputs, keep only the pieces of text ``sequence``.

    Returns:
      ``(scores, present)``: [batch, (rows,) num_words] word scores, and [batch, num_words]
      whether the word has at least one piece (words cut by truncation are absent).
    """
    present = pieces_to_words(jnp.ones(word_ids.shape, jnp.float32), word_ids, num_words,
                              sequence_ids=sequence_ids, sequence=sequence) > 0
    if piece_scores.ndim == word_ids.ndim:
        return pieces_to_words(piece_scores, word_ids, num_words, sequence_ids=sequence_ids,
                               sequence=sequence), present
    rows = piece_scores.shape[1]

    def repeat(x):
        return None if x is None else jnp.repeat(x, rows, axis=0)

    flat = pieces_to_words(piece_scores.reshape(-1, piece_scores.shape[-1]), repeat(word_ids), num_words,
                           sequence_ids=repeat(sequence_ids), sequence=sequence)
    return flat.reshape(*piece_scores.shape[:2], num_words), present


def sweep_coefficients(num_layers: int, num_heads: int) -> tuple[list[str], np.ndarray]:
    """Head-coefficient vectors of every single layer and every single head.

    Returns:
      ``(names, coeffs)``: names "layer <l>" (0-based) then "head <l>.<h>", and
      [layers + layers * heads, layers * heads] coefficients: uniform over one layer's heads
      (the static explainer restricted to that layer), or one-hot on one head.
    """
    size = num_layers * num_heads
    per_layer = np.zeros((num_layers, size), np.float32)
    for layer in range(num_layers):
        per_layer[layer, layer * num_heads:(layer + 1) * num_heads] = 1.0 / num_heads
    names = [f"layer {l}" for l in range(num_layers)]
    names += [f"head {l}.{h}" for l in range(num_layers) for h in range(num_heads)]
    return names, np.concatenate([per_layer, np.eye(size, dtype=np.float32)])


def candidate_explanations(head_scores: Array, mask: Array, coeffs: Array) -> Array:
    """The attention explainer under many fixed head-coefficient vectors at once.

    Args:
      head_scores: [batch, layers, heads, seq] the teacher's per-head logits.
      mask: [batch, seq] valid tokens.
      coeffs: [candidates, layers * heads] head coefficients, used as given (no normalizer).

    Returns:
      [batch, candidates, seq] explanations on the simplex over each example's tokens.
    """
    layers, heads = head_scores.shape[1:3]
    explainer = explainers.attention_explainer(layers, heads, normalizer="none", trainable=False)
    inputs = explainers.ExplainerInputs(mask=mask, head_scores=head_scores)

    def one(c):
        return explainer.apply({"head_coeffs": c}, inputs)[0]

    return jnp.moveaxis(jax.vmap(one)(jnp.asarray(coeffs)), 0, 1)
