"""Agreement between explanations: rank correlations and top-k agreement, batched over rows.

Every function compares two explanations of the same examples, ``a`` and ``b``
[batch, seq] (any leading dims), over the entries where ``mask`` [batch, seq] is nonzero
(padding: 0), and returns one value per row. Everything is jittable; the pairwise
functions are O(seq^2) per row, fine for seq <= 512.

- Rank correlations return a :class:`Correlation` ``(value, defined, undefined)``:
  ``value`` is NaN where the statistic is undefined (fewer than 2 entries, a constant
  row in ``a`` or ``b``, or a NaN score among the valid entries, as scipy returns NaN),
  and ``undefined`` counts those rows so
  callers report them instead of silently dropping them (the reference's pandas mean
  skipped them).
- The reference (Neely et al. 2022) computed scipy's Kendall tau-b per instance on the
  *absolute* token scores: pass ``jnp.abs(scores)``; signs matter only to the sign
  agreements below.
- Top-k agreement follows Krishna et al. 2022 ("The Disagreement Problem in Explainable
  Machine Learning"): features are ranked by magnitude ``|a|`` (ties broken by position,
  the lower index first), ``k`` is capped at the number of valid entries, and each value
  is a fraction of that capped ``k``.

References:
  Neely et al. 2022, Section 3.3 (mean Kendall tau over instances; the code also
  computes Spearman and Pearson, on absolute scores).
  Krishna et al. 2022 (feature, rank, sign and signed-rank agreement, rank correlation,
  pairwise rank agreement).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "Correlation", "kendall_tau", "spearman", "pearson", "average_ranks", "top_k_indices",
    "feature_agreement", "rank_agreement", "sign_agreement", "signed_rank_agreement",
    "pairwise_rank_agreement", "summarize",
]

Array = jax.Array


class Correlation(NamedTuple):
    """A per-row statistic and where it is defined.

    Attributes:
      value: [...] the statistic, NaN where undefined.
      defined: [...] bool.
      undefined: int32 scalar, the number of undefined rows (report it).
    """

    value: Array
    defined: Array
    undefined: Array


def _float(x: Array) -> Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _valid(a: Array, mask: Array | None) -> Array:
    return jnp.ones(a.shape, bool) if mask is None else jnp.broadcast_to(jnp.asarray(mask).astype(bool), a.shape)


def _no_nan(a: Array, b: Array, valid: Array) -> Array:
    """Rows whose valid entries are all numbers in ``a`` and ``b`` (scipy propagates a NaN)."""
    return ~jnp.any(valid & (jnp.isnan(a) | jnp.isnan(b)), axis=-1)


def _correlation(value: Array, defined: Array) -> Correlation:
    value = jnp.where(defined, value, jnp.nan)
    return Correlation(value, defined, jnp.sum(~defined).astype(jnp.int32))


def _pair_counts(a: Array, b: Array, valid: Array, unroll: int) -> tuple[Array, Array, Array]:
    """Per row of [rows, n]: sum over unordered valid pairs of ``s^a s^b``, ``|s^a|``, ``|s^b|``.

    Every unordered pair {i, j} is visited once as (i, i + d mod n) for d = 1 .. n // 2 (for
    even n, d = n / 2 only from i < n / 2): n / 2 steps of elementwise work on [rows, n]
    with no [n, n] intermediate, which keeps a block of rows in cache.
    """
    n = a.shape[-1]
    circular = [jnp.concatenate([x, x], axis=-1) for x in (a, b, valid)]
    counts = jnp.int32

    def visit(d, totals, keep=None):
        shifted_a, shifted_b, shifted_valid = (lax.dynamic_slice_in_dim(x, d, n, axis=1) for x in circular)
        pair = valid & shifted_valid if keep is None else valid & shifted_valid & keep
        sa = jnp.where(pair, jnp.sign(a - shifted_a), 0).astype(counts)
        sb = jnp.sign(b - shifted_b).astype(counts)
        concordance, untied_a, untied_b = totals
        return concordance + sa * sb, untied_a + jnp.abs(sa), untied_b + jnp.where(pair, jnp.abs(sb), 0)

    zeros = jnp.zeros(a.shape, counts)
    totals = lax.fori_loop(1, (n + 1) // 2, visit, (zeros, zeros, zeros), unroll=unroll)
    if n % 2 == 0 and n > 0:
        totals = visit(n // 2, totals, keep=jnp.arange(n) < n // 2)
    return tuple(jnp.sum(t, axis=-1) for t in totals)


def kendall_tau(a: Array, b: Array, mask: Array | None = None, *, block: int | None = 256) -> Correlation:
    """Kendall's tau-b per row, equal to ``scipy.stats.kendalltau(a_row, b_row)`` on the valid entries.

    ``tau_b = sum_{i<j} s^a_ij s^b_ij / sqrt(n_a n_b)`` with ``s_ij = sign(x_i - x_j)``,
    ``n_a`` the pairs not tied in ``a`` and ``n_b`` those not tied in ``b``; i.e.
    ``(P - Q) / sqrt((P + Q + T_a) (P + Q + T_b))`` with the tie counts of scipy. Ties are
    exact comparisons of the given values (cast scores to a common precision first); the
    pair counts are exact integers.

    O(n^2) work per row but O(n) memory: pairs are visited by circular shifts (n / 2
    elementwise steps), ``block`` rows at a time under ``lax.map`` so each block stays in
    cache (on a 2-core CPU, 500 x 15 rows of 128 entries take ~28 ms, ~50x a loop over
    scipy: ``make bench-agreement``). ``block=None`` does all rows in one step (for
    accelerators, where one wide step beats a sequential map).

    Args:
      a, b: [..., n] scores.
      mask: [..., n] 1 on valid entries; default all.
      block: rows per step of the sequential map; None for all at once.

    Returns:
      A :class:`Correlation`; undefined for rows with < 2 valid entries, no untied pair
      in ``a`` or in ``b`` (a constant row), or a NaN among the valid entries.

    Example:
      >>> tau = kendall_tau(jnp.array([[1., 2., 3., 9.]]), jnp.array([[1., 3., 2., 0.]]),
      ...                   mask=jnp.array([[1, 1, 1, 0]]))
      >>> round(float(tau.value[0]), 4), int(tau.undefined)
      (0.3333, 0)
    """
    a, b = _float(a), _float(b)
    dtype = jnp.result_type(a.dtype, b.dtype)
    shape = jnp.broadcast_shapes(a.shape, b.shape)
    n = shape[-1]
    if n == 0 or math.prod(shape) == 0:  # no entries, or no rows: nothing is defined
        return _correlation(jnp.zeros(shape[:-1], dtype), jnp.zeros(shape[:-1], bool))
    valid = jnp.ones(shape, bool) if mask is None else jnp.asarray(mask).astype(bool)
    rows = [jnp.broadcast_to(x, shape).reshape(-1, n) for x in (a.astype(dtype), b.astype(dtype), valid)]
    total = rows[0].shape[0]
    size = total if block is None else min(block, total)
    pad = -total % size
    blocks = [jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, size, n) for x in rows]
    counts = lax.map(lambda x: jnp.stack(_pair_counts(*x, unroll=8)), tuple(blocks))  # [blocks, 3, size]
    concordance, untied_a, untied_b = (c.reshape(-1)[:total].reshape(shape[:-1]) for c in jnp.moveaxis(counts, 1, 0))
    defined = (untied_a > 0) & (untied_b > 0) & _no_nan(*(jnp.broadcast_to(x, shape) for x in (a, b, valid)))
    denom = jnp.sqrt(untied_a.astype(dtype)) * jnp.sqrt(untied_b.astype(dtype))
    tau = concordance.astype(dtype) / jnp.where(defined, denom, jnp.ones((), dtype))
    return _correlation(jnp.clip(tau, -1, 1), defined)


def average_ranks(x: Array, mask: Array | None = None) -> Array:
    """1-based ranks among each row's valid entries, ties averaged (``scipy.stats.rankdata``); 0 on invalid."""
    x = _float(x)
    valid = _valid(x, mask)
    other = valid[..., None, :]
    below = jnp.sum((x[..., None, :] < x[..., :, None]) & other, axis=-1)
    tied = jnp.sum((x[..., None, :] == x[..., :, None]) & other, axis=-1)
    ranks = below.astype(x.dtype) + (tied.astype(x.dtype) + 1) / 2
    return jnp.where(valid, ranks, jnp.zeros((), x.dtype))


def _constant(x: Array, valid: Array) -> Array:
    high = jnp.max(jnp.where(valid, x, -jnp.inf), axis=-1)
    low = jnp.min(jnp.where(valid, x, jnp.inf), axis=-1)
    return high <= low


def pearson(a: Array, b: Array, mask: Array | None = None) -> Correlation:
    """Pearson's r per row over the valid entries (``scipy.stats.pearsonr``); undefined for constant
    rows and rows with a NaN among the valid entries.

    Args:
      a, b: [..., n] scores.
      mask: [..., n] 1 on valid entries; default all.

    Returns:
      A :class:`Correlation`.
    """
    a, b = _float(a), _float(b)
    dtype = jnp.result_type(a.dtype, b.dtype)
    a, b = a.astype(dtype), b.astype(dtype)
    valid = _valid(a, mask)
    w = valid.astype(dtype)
    count = jnp.sum(w, axis=-1, keepdims=True)
    safe_count = jnp.maximum(count, jnp.ones((), dtype))
    da = (a - jnp.sum(a * w, axis=-1, keepdims=True) / safe_count) * w
    db = (b - jnp.sum(b * w, axis=-1, keepdims=True) / safe_count) * w
    # Scale each row by its max deviation (no underflow in the squares).
    da = da / jnp.maximum(jnp.max(jnp.abs(da), axis=-1, keepdims=True), jnp.finfo(dtype).tiny)
    db = db / jnp.maximum(jnp.max(jnp.abs(db), axis=-1, keepdims=True), jnp.finfo(dtype).tiny)
    saa, sbb = jnp.sum(da * da, axis=-1), jnp.sum(db * db, axis=-1)
    # Constant rows are undefined as in scipy (their rounded mean need not equal the values).
    defined = ((count[..., 0] >= 2) & ~_constant(a, valid) & ~_constant(b, valid) & (saa > 0) & (sbb > 0)
               & _no_nan(a, b, valid))
    r = jnp.sum(da * db, axis=-1) / jnp.where(defined, jnp.sqrt(saa) * jnp.sqrt(sbb), jnp.ones((), dtype))
    return _correlation(jnp.clip(r, -1, 1), defined)


def spearman(a: Array, b: Array, mask: Array | None = None) -> Correlation:
    """Spearman's rho per row: Pearson's r of the average ranks (``scipy.stats.spearmanr``).

    This is also Krishna et al.'s rank correlation (RC) over the features in ``mask``
    when given magnitudes ``|a|``, ``|b|``.
    """
    a, b = _float(a), _float(b)
    valid = _valid(a, mask)
    numbers = _no_nan(a, b, valid)[..., None]  # ranks would hide a NaN: keep it for pearson
    ranks = [jnp.where(numbers, average_ranks(x, valid), jnp.nan) for x in (a, b)]
    return pearson(*ranks, valid)


def top_k_indices(scores: Array, k: int, mask: Array | None = None) -> tuple[Array, Array]:
    """Positions of the k largest ``|scores|`` per row (ties: lower position first).

    Returns:
      ``(indices [..., k] int32, real [..., k] bool)``: ``real`` is False on the slots past
      the row's number of valid entries (those indices are meaningless).
    """
    scores = _float(scores)
    valid = _valid(scores, mask)
    magnitude = jnp.where(valid, jnp.abs(scores), -jnp.inf)
    _, indices = jax.lax.top_k(magnitude, k)
    real = jnp.arange(k) < jnp.sum(valid, axis=-1, keepdims=True)
    return indices.astype(jnp.int32), real


def _top_k_pair(a, b, k, mask):
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    k = min(k, a.shape[-1])
    ia, real = top_k_indices(a, k, mask)
    ib, _ = top_k_indices(b, k, mask)
    size = jnp.sum(real, axis=-1)
    return ia, ib, real, size


def _fraction(hits: Array, size: Array) -> Array:
    dtype = jnp.float32
    return jnp.where(size > 0, jnp.sum(hits, axis=-1).astype(dtype) / jnp.maximum(size, 1).astype(dtype), jnp.nan)


def _signs_agree(a, b, index):
    sa = jnp.sign(jnp.take_along_axis(_float(a), index, axis=-1))
    sb = jnp.sign(jnp.take_along_axis(_float(b), index, axis=-1))
    return sa == sb


def feature_agreement(a: Array, b: Array, k: int, mask: Array | None = None) -> Array:
    """Feature agreement FA@k: ``|top_k(a) & top_k(b)| / k`` (Krishna et al. 2022).

    Args:
      a, b: [..., n] signed attributions (ranked by magnitude).
      k: the number of top features (static); capped at the row's valid entries.
      mask: [..., n] 1 on valid entries.

    Returns:
      [...] in [0, 1]; NaN for rows without valid entries.
    """
    ia, ib, real, size = _top_k_pair(a, b, k, mask)
    shared = jnp.any((ia[..., :, None] == ib[..., None, :]) & real[..., None, :], axis=-1) & real
    return _fraction(shared, size)


def rank_agreement(a: Array, b: Array, k: int, mask: Array | None = None) -> Array:
    """Rank agreement RA@k: the fraction of ranks 1..k holding the same feature in both."""
    ia, ib, real, size = _top_k_pair(a, b, k, mask)
    return _fraction((ia == ib) & real, size)


def sign_agreement(a: Array, b: Array, k: int, mask: Array | None = None) -> Array:
    """Sign agreement SA@k: features in both top-k sets with the same sign in both, over k.

    Signs are ``jnp.sign`` (zero is its own sign).
    """
    ia, ib, real, size = _top_k_pair(a, b, k, mask)
    shared = jnp.any((ia[..., :, None] == ib[..., None, :]) & real[..., None, :], axis=-1) & real
    return _fraction(shared & _signs_agree(a, b, ia), size)


def signed_rank_agreement(a: Array, b: Array, k: int, mask: Array | None = None) -> Array:
    """Signed rank agreement SRA@k: ranks 1..k with the same feature and the same sign in both."""
    ia, ib, real, size = _top_k_pair(a, b, k, mask)
    return _fraction((ia == ib) & real & _signs_agree(a, b, ia), size)


def pairwise_rank_agreement(a: Array, b: Array, mask: Array | None = None) -> Array:
    """Pairwise rank agreement PRA: the fraction of feature pairs ordered alike by magnitude.

    A pair (i, j) of valid features agrees when ``sign(|a_i| - |a_j|) == sign(|b_i| - |b_j|)``
    (a tie agrees only with a tie). Krishna et al. compare a chosen feature set F: pass it
    as ``mask``.

    Returns:
      [...] in [0, 1]; NaN for rows with fewer than 2 valid entries.
    """
    a, b = jnp.abs(_float(a)), jnp.abs(_float(b))
    valid = _valid(a, mask)
    n = valid.shape[-1]
    upper = jnp.triu(jnp.ones((n, n), bool), 1)
    pair = valid[..., :, None] & valid[..., None, :] & upper
    sa = jnp.sign(a[..., :, None] - a[..., None, :])
    sb = jnp.sign(b[..., :, None] - b[..., None, :])
    pairs = jnp.sum(pair, axis=(-2, -1))
    agree = jnp.sum((sa == sb) & pair, axis=(-2, -1))
    return jnp.where(pairs > 0, agree.astype(jnp.float32) / jnp.maximum(pairs, 1).astype(jnp.float32), jnp.nan)


def summarize(values, axis: int | None = None) -> dict:
    """Mean, sample std (ddof 1), count and NaN count of per-instance values (numpy, outside jit).

    Args:
      values: per-instance statistics (NaN where undefined).
      axis: reduce along this axis (default: everything).

    Returns:
      ``{"mean", "std", "count", "undefined"}`` (NaN mean/std when nothing is defined).
    """
    values = np.asarray(values, np.float64)
    defined = ~np.isnan(values)
    count = defined.sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(values, axis) / np.where(count > 0, count, np.nan)
        centred = np.where(defined, values - (mean if axis is None else np.expand_dims(mean, axis)), 0.0)
        std = np.sqrt(np.sum(centred ** 2, axis) / np.where(count > 1, count - 1, np.nan))
    return {"mean": mean, "std": std, "count": count, "undefined": (~defined).sum(axis)}
