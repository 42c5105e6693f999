"""Maps onto the probability simplex, and divergences between distributions on it.

Normalizers map scores to a distribution over the last axis (or ``axis``):
``softmax``, ``sparsemax`` (Martins & Astudillo, 2016), ``entmax15`` (1.5-entmax,
Peters, Niculae & Martins, 2019) and ``identity`` (the raw scores, the "none" row
of SMaT's Table 7). SMaT normalizes the teacher explainer's head coefficients phi_T
with one of them (sparsemax in the paper, Eq. 12) and the token logits with softmax,
so the meta-gradient passes through them twice: sparsemax and entmax15 carry a
``jax.custom_jvp`` whose rule is itself written in differentiable ``jnp`` code, which
makes second-order derivatives (reverse-over-reverse, forward-over-reverse) exact.

Every function works over one axis of an array of any leading shape and takes an
optional ``mask`` broadcastable to the input, true (or nonzero) on valid entries.
Masked-out entries, and entries equal to ``-inf``, get exactly zero probability and
do not influence the others; a row with no valid entry maps to all zeros (no NaN).

Divergences (``kl``, ``jsd``, ``tvd``) reduce over the last axis (or ``axis``) and
return one value per row, ignoring masked-out entries; they use the natural log.

References:
  Martins & Astudillo, "From Softmax to Sparsemax", ICML 2016, Alg. 1 and Prop. 2.
  Peters, Niculae & Martins, "Sparse Sequence-to-Sequence Models", ACL 2019, Alg. 2.
  Fernandes, Treviso et al., "Learning to Scaffold", NeurIPS 2022, Eq. 12 and Table 7.
  Jain & Wallace, "Attention is not Explanation", NAACL 2019, Sec. 4 (JSD, TVD).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
Normalizer = Callable[..., Array]

KL_CLIP = 1e-7  # the SMaT reference clips to [1e-7, 1 - 1e-7] before the log


# --------------------------------------------------------------------------- helpers


def _compute_dtype(dtype) -> jnp.dtype:
    """Sorting thresholds in bf16/f16 loses the support; work in float32 at least."""
    if jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits >= 32:
        return jnp.dtype(dtype)
    return jnp.dtype(jnp.float32)


def _prepare(x, mask) -> tuple[Array, Array]:
    """Float input in its compute dtype, and the boolean mask of valid entries."""
    x = jnp.asarray(x)
    x = x.astype(_compute_dtype(x.dtype))
    valid = x != -jnp.inf  # -inf is "masked" by convention; NaN stays valid and shows up
    if mask is not None:
        valid = valid & jnp.broadcast_to(jnp.asarray(mask).astype(bool), x.shape)
    return x, valid


def _out_dtype(x) -> jnp.dtype:
    dtype = jnp.asarray(x).dtype
    return dtype if jnp.issubdtype(dtype, jnp.floating) else _compute_dtype(dtype)


def _on_last_axis(fn: Callable[[Array, Array], Array], x, axis: int, mask) -> Array:
    """Runs ``fn(x, valid)`` with the normalized axis moved last, then moves it back."""
    out_dtype = _out_dtype(x)
    x, valid = _prepare(x, mask)
    x = jnp.moveaxis(x, axis, -1)
    valid = jnp.moveaxis(valid, axis, -1)
    # Filling masked entries with a finite value keeps -inf out of every derivative.
    filled = jnp.where(valid, x, jnp.zeros((), x.dtype))
    return jnp.moveaxis(fn(filled, valid), -1, axis).astype(out_dtype)


def _sorted_valid(z: Array, valid: Array) -> tuple[Array, Array, Array, Array]:
    """Valid entries sorted descending and shifted so the largest is 0.

    Returns:
      (sorted [..., n] with zeros after the valid ones, ranks 1..n as floats,
      in_range [..., n]: rank <= number of valid entries, max [..., 1]).
    """
    n = z.shape[-1]
    keyed = jnp.where(valid, z, -jnp.inf)
    srt = -jnp.sort(-keyed, axis=-1)  # descending; invalid (-inf) entries go last
    count = jnp.sum(valid, axis=-1, keepdims=True).astype(z.dtype)
    rank = jnp.arange(1, n + 1, dtype=z.dtype)
    in_range = rank <= count
    top = jnp.where(count > 0, srt[..., :1], jnp.zeros((), z.dtype))
    # Shift invariance: subtracting the max keeps float32 thresholds accurate.
    srt = jnp.where(in_range, srt - top, jnp.zeros((), z.dtype))
    return srt, rank, in_range, top


def _take_at_support(values: Array, support: Array) -> Array:
    """values[..., support - 1], with support clamped to >= 1 for empty rows."""
    index = jnp.maximum(support - 1, 0)[..., None]
    return jnp.take_along_axis(values, index, axis=-1)


def _simplex_jvp(weights: Array, dz: Array) -> Array:
    """J dz for J = diag(w) - w w^T / sum(w): the Jacobian of sparsemax and entmax15."""
    total = jnp.sum(weights, axis=-1, keepdims=True)
    # An empty row has no support: its output is constant, so its tangent is zero.
    total = jnp.where(total > 0, total, jnp.ones((), total.dtype))
    weighted = weights * dz
    return weighted - weights * (jnp.sum(weighted, axis=-1, keepdims=True) / total)


# ------------------------------------------------------------------------ normalizers


def softmax(x: Array, axis: int = -1, mask: Array | None = None) -> Array:
    """Masked softmax.

    Args:
      x: scores of any shape (``-inf`` entries count as masked).
      axis: the axis to normalize over.
      mask: optional validity mask broadcastable to ``x`` (bool or 0/1).

    Returns:
      An array shaped like ``x``, on the simplex over the valid entries of each row;
      masked entries and rows with no valid entry are exactly zero.

    Example:
      >>> import jax.numpy as jnp
      >>> print(softmax(jnp.array([0.0, 0.0, 5.0]), mask=jnp.array([1, 1, 0])))
      [0.5 0.5 0. ]
    """
    out_dtype = _out_dtype(x)
    x, valid = _prepare(x, mask)
    top = jnp.max(jnp.where(valid, x, -jnp.inf), axis=axis, keepdims=True)
    # The shift cancels in the ratio, so it needs no gradient; empty rows have top=-inf.
    top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, jnp.zeros((), x.dtype)))
    # Double where: exp never sees a masked entry, so no inf/NaN leaks into gradients.
    shifted = jnp.where(valid, x - top, jnp.zeros((), x.dtype))
    unnormalized = jnp.where(valid, jnp.exp(shifted), jnp.zeros((), x.dtype))
    total = jnp.sum(unnormalized, axis=axis, keepdims=True)
    total = jnp.where(total > 0, total, jnp.ones((), x.dtype))
    return (unnormalized / total).astype(out_dtype)


@jax.custom_jvp
def _sparsemax(z: Array, valid: Array) -> Array:
    srt, rank, in_range, top = _sorted_valid(z, valid)
    cumsum = jnp.cumsum(srt, axis=-1)
    # Support size: the largest k with 1 + k z_(k) > sum_{j<=k} z_(j) (Alg. 1).
    support = jnp.sum((1 + rank * srt > cumsum) & in_range, axis=-1)
    k = jnp.maximum(support, 1).astype(z.dtype)[..., None]
    tau = (_take_at_support(cumsum, support) - 1) / k
    p = jnp.maximum(z - top - tau, jnp.zeros((), z.dtype))
    return jnp.where(valid, p, jnp.zeros((), z.dtype))


@_sparsemax.defjvp
def _sparsemax_jvp(primals, tangents):
    z, valid = primals
    dz, _ = tangents
    p = _sparsemax(z, valid)  # the custom rule again, so this rule differentiates too
    support = (p > 0).astype(p.dtype)  # piecewise constant: no gradient, by design
    return p, _simplex_jvp(support, dz)


def sparsemax(x: Array, axis: int = -1, mask: Array | None = None) -> Array:
    """Sparsemax: the Euclidean projection of ``x`` onto the simplex.

    Computed exactly by sorting (Martins & Astudillo, 2016, Alg. 1): with z sorted
    descending, the support size is k = max{k : 1 + k z_(k) > sum_{j<=k} z_(j)}, the
    threshold tau = (sum_{j<=k} z_(j) - 1) / k and p = max(z - tau, 0). Its Jacobian
    is diag(s) - s s^T / |S| with s the support indicator (a custom JVP); it is
    written with differentiable ops, so second-order derivatives work (they are zero
    away from the points where the support changes).

    Args:
      x: scores of any shape (``-inf`` entries count as masked).
      axis: the axis to normalize over.
      mask: optional validity mask broadcastable to ``x`` (bool or 0/1).

    Returns:
      An array shaped like ``x``, on the simplex over the valid entries of each row,
      typically sparse; masked entries and rows with no valid entry are exactly zero.

    Example:
      >>> import jax.numpy as jnp
      >>> print(sparsemax(jnp.array([1.0, 0.5, -1.0])))
      [0.75 0.25 0.  ]
      >>> print(sparsemax(jnp.array([[2.0, 2.0, 2.0]])))  # constant -> uniform
      [[0.33333334 0.33333334 0.33333334]]
    """
    return _on_last_axis(_sparsemax, x, axis, mask)


@jax.custom_jvp
def _entmax15(z: Array, valid: Array) -> Array:
    # 1.5-entmax(z) = [z/2 - tau]_+^2 with tau such that the result sums to one.
    srt, rank, in_range, top = _sorted_valid(z / 2, valid)
    mean = jnp.cumsum(srt, axis=-1) / rank
    mean_sq = jnp.cumsum(jnp.square(srt), axis=-1) / rank
    # For each candidate support size k, tau_k solves sum_{j<=k} (z_j - tau)^2 = 1.
    sum_sq_dev = rank * (mean_sq - jnp.square(mean))
    delta = jnp.maximum((1 - sum_sq_dev) / rank, jnp.zeros((), z.dtype))
    tau = mean - jnp.sqrt(delta)
    support = jnp.sum((tau <= srt) & in_range, axis=-1)
    tau_star = _take_at_support(tau, support)
    p = jnp.square(jnp.maximum(z / 2 - top - tau_star, jnp.zeros((), z.dtype)))
    p = jnp.where(valid, p, jnp.zeros((), z.dtype))
    # Renormalize away the rounding of the closed form (a no-op in exact arithmetic).
    total = jnp.sum(p, axis=-1, keepdims=True)
    return p / jnp.where(total > 0, total, jnp.ones((), z.dtype))


@_entmax15.defjvp
def _entmax15_jvp(primals, tangents):
    z, valid = primals
    dz, _ = tangents
    p = _entmax15(z, valid)
    # s = sqrt(p), with a double where so that d sqrt / dp never meets p = 0
    # (it would be inf there and turn second-order derivatives into NaN).
    positive = p > 0
    s = jnp.where(positive, jnp.sqrt(jnp.where(positive, p, jnp.ones((), p.dtype))),
                  jnp.zeros((), p.dtype))
    return p, _simplex_jvp(s, dz)


def entmax15(x: Array, axis: int = -1, mask: Array | None = None) -> Array:
    """1.5-entmax: p = [x/2 - tau]_+^2, sparse like sparsemax, smooth like softmax.

    Computed exactly by sorting (Peters, Niculae & Martins, 2019, Alg. 2), not by
    bisection: for each candidate support size k the threshold has a closed form
    from the running mean and variance of the k largest halved scores. Its Jacobian
    is diag(s) - s s^T / sum(s) with s = sqrt(p) (a custom JVP, written with
    differentiable ops so that second-order derivatives work).

    Args:
      x: scores of any shape (``-inf`` entries count as masked).
      axis: the axis to normalize over.
      mask: optional validity mask broadcastable to ``x`` (bool or 0/1).

    Returns:
      An array shaped like ``x``, on the simplex over the valid entries of each row;
      masked entries and rows with no valid entry are exactly zero.

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> print(np.asarray(entmax15(jnp.array([2.0, 1.0, -2.0]))).round(4))
      [0.8307 0.1693 0.    ]
    """
    return _on_last_axis(_entmax15, x, axis, mask)


def identity(x: Array, axis: int = -1, mask: Array | None = None) -> Array:
    """No normalization: the raw scores (the "none" normalizer), masked entries zeroed.

    Args:
      x: scores of any shape.
      axis: unused; kept so every normalizer has the same signature.
      mask: optional validity mask broadcastable to ``x``; masked entries become 0.

    Returns:
      ``x`` (as a float array) with masked entries set to zero.

    Example:
      >>> import jax.numpy as jnp
      >>> print(identity(jnp.array([0.5, -1.0, 2.0]), mask=jnp.array([1, 1, 0])))
      [ 0.5 -1.   0. ]
    """
    del axis  # elementwise
    out_dtype = _out_dtype(x)
    x = jnp.asarray(x).astype(out_dtype)
    if mask is None:
        return x
    keep = jnp.broadcast_to(jnp.asarray(mask).astype(bool), x.shape)
    return jnp.where(keep, x, jnp.zeros((), x.dtype))


_NORMALIZERS: dict[str, Normalizer] = {
    "softmax": softmax,
    "sparsemax": sparsemax,
    "entmax15": entmax15,
    "none": identity,
    "identity": identity,
}


def available() -> tuple[str, ...]:
    """Names accepted by :func:`get`.

    Returns:
      The sorted normalizer names.

    Example:
      >>> available()
      ('entmax15', 'identity', 'none', 'softmax', 'sparsemax')
    """
    return tuple(sorted(_NORMALIZERS))


def get(name: str) -> Normalizer:
    """Looks up a normalizer ``f(x, axis=-1, mask=None)`` by name.

    Args:
      name: one of :func:`available` ("none" and "identity" are the same map).

    Returns:
      The normalizer function.

    Raises:
      KeyError: for an unknown name; the message lists the known ones.

    Example:
      >>> import jax.numpy as jnp
      >>> print(get("sparsemax")(jnp.array([0.0, 0.0])))
      [0.5 0.5]
    """
    try:
        return _NORMALIZERS[name]
    except KeyError:
        raise KeyError(f"unknown normalizer {name!r}; available: {', '.join(available())}") from None


# ------------------------------------------------------------------------ divergences


def _float_pair(p, q) -> tuple[Array, Array]:
    """p and q cast to one float dtype (explicitly: strict promotion) and broadcast."""
    p, q = jnp.asarray(p), jnp.asarray(q)
    dtype_p, dtype_q = _out_dtype(p), _out_dtype(q)
    # The wider float wins (bf16 with f16 -> f32); jnp.promote_types refuses under strict.
    if dtype_p == dtype_q:
        dtype = dtype_p
    elif jnp.finfo(dtype_p).bits == jnp.finfo(dtype_q).bits:
        dtype = jnp.dtype(jnp.float32)
    else:
        dtype = max(dtype_p, dtype_q, key=lambda d: jnp.finfo(d).bits)
    p, q = jnp.broadcast_arrays(p.astype(dtype), q.astype(dtype))
    return p, q


def _prepare_pair(p, q, mask, axis: int) -> tuple[Array, Array, Array]:
    """p, q in one float dtype with the valid mask, the distribution axis moved last."""
    p, q = _float_pair(p, q)
    valid = jnp.ones(p.shape, bool) if mask is None else jnp.broadcast_to(
        jnp.asarray(mask).astype(bool), p.shape)
    return jnp.moveaxis(p, axis, -1), jnp.moveaxis(q, axis, -1), jnp.moveaxis(valid, axis, -1)


def _xlog_ratio(a: Array, b: Array, active: Array, log_a: Array | None = None) -> Array:
    """a (log a - log b) where active, else 0 (0 log 0 = 0).

    ``log_a`` replaces a inside the log (the clipped value, for KL). The double where
    keeps inactive entries (a = 0, masked, or b = 0) from putting inf/NaN in gradients.
    """
    one = jnp.ones((), a.dtype)
    inner = a if log_a is None else log_a
    log_ratio = jnp.log(jnp.where(active, inner, one)) - jnp.log(jnp.where(active, b, one))
    return jnp.where(active, a * log_ratio, jnp.zeros((), a.dtype))


def kl(p: Array, q: Array, mask: Array | None = None, eps: float = KL_CLIP, *,
       axis: int = -1) -> Array:
    """KL(p || q) = sum_j p_j (log p_j - log q_j), natural log, as in the SMaT reference.

    Both distributions are clipped to [eps, 1 - eps] inside the logs (the reference's
    ``softmax_loss``, which SMaT uses as the explanation loss KL(E_T || E_S)); the
    weight p_j is not clipped, so entries with p_j = 0 contribute 0 (0 log 0 = 0).
    The clip bounds the loss and its gradient when q puts (near) zero mass where p
    does not; ``eps=0`` gives the exact KL (inf in that case).

    Args:
      p: the reference distribution (the teacher's explanation), [..., n].
      q: the approximating distribution (the student's explanation), [..., n].
      mask: optional validity mask broadcastable to p and q; masked entries are ignored.
      eps: clipping constant for the logs (1e-7 in the reference).
      axis: the axis holding the distribution.

    Returns:
      KL per row, shaped like the broadcast inputs without ``axis``.

    Example:
      >>> import jax.numpy as jnp
      >>> p, q = jnp.array([0.5, 0.5, 0.0]), jnp.array([0.25, 0.5, 0.25])
      >>> print(f"{kl(p, q):.4f}")  # 0.5 ln 2
      0.3466
    """
    p, q, valid = _prepare_pair(p, q, mask, axis)
    active = valid & (p > 0)
    terms = _xlog_ratio(p, jnp.clip(q, eps, 1 - eps), active, log_a=jnp.clip(p, eps, 1 - eps))
    return jnp.sum(terms, axis=-1)


def jsd(p: Array, q: Array, mask: Array | None = None, *, axis: int = -1) -> Array:
    """Jensen-Shannon divergence, natural log: 0 <= JSD <= ln 2.

    JSD(p, q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, without clipping
    (0 log 0 = 0). It is the square of scipy's ``jensenshannon`` distance at base e,
    and the quantity the attention-as-explanation papers report (Jain & Wallace, 2019;
    their 1e-10 inside the logs changes it by less than that).

    Args:
      p, q: distributions [..., n] (broadcastable to each other).
      mask: optional validity mask broadcastable to p and q; masked entries are ignored.
      axis: the axis holding the distribution.

    Returns:
      JSD per row, shaped like the broadcast inputs without ``axis``; rounding
      below zero is clamped to 0.

    Example:
      >>> import jax.numpy as jnp
      >>> print(f"{jsd(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])):.4f}")  # ln 2
      0.6931
    """
    p, q, valid = _prepare_pair(p, q, mask, axis)
    m = (p + q) / 2
    divergence = (_xlog_ratio(p, m, valid & (p > 0)) + _xlog_ratio(q, m, valid & (q > 0))) / 2
    return jnp.maximum(jnp.sum(divergence, axis=-1), jnp.zeros((), p.dtype))


def tvd(p: Array, q: Array, mask: Array | None = None, *, legacy_binary: bool = False,
        axis: int = -1) -> Array:
    """Total variation distance: half the L1 distance between two distributions.

    TVD(p, q) = 1/2 sum_j |p_j - q_j| over the full class distribution, in [0, 1].
    For a binary classifier with p = (1 - p1, p1) this equals |p1 - q1|.

    The attention-as-explanation code (Jain & Wallace, 2019; Wiegreffe & Pinter,
    2019) applied ``0.5 * |p1 - q1|`` to the single sigmoid output p(y=1), i.e.
    half the true binary TVD. ``legacy_binary=True`` reproduces that quantity, which
    is what their Tables 4-5 TVD values and adversary weight lambda refer to.

    Args:
      p, q: distributions [..., classes]; with ``legacy_binary`` instead the
        positive-class probabilities p(y=1), of any shape.
      mask: optional validity mask over classes, broadcastable to p and q; masked
        entries are ignored. Not accepted with ``legacy_binary``.
      legacy_binary: compute the baselines papers' ``0.5 * |p - q|`` elementwise.
      axis: the axis holding the distribution (ignored with ``legacy_binary``).

    Returns:
      TVD per row (shaped like the inputs without ``axis``); with ``legacy_binary``,
      ``0.5 * |p - q|`` shaped like the broadcast inputs.

    Raises:
      ValueError: if ``mask`` is given with ``legacy_binary=True``.

    Example:
      >>> import jax.numpy as jnp
      >>> print(f"{tvd(jnp.array([0.2, 0.8]), jnp.array([0.6, 0.4])):.4f}")
      0.4000
      >>> print(f"{tvd(jnp.array(0.8), jnp.array(0.4), legacy_binary=True):.4f}")  # half
      0.2000
    """
    if legacy_binary:
        if mask is not None:
            raise ValueError("legacy_binary TVD takes positive-class probabilities; a class mask "
                             "has no meaning there")
        p, q = _float_pair(p, q)
        return jnp.abs(p - q) / 2
    p, q, valid = _prepare_pair(p, q, mask, axis)
    diff = jnp.where(valid, p - q, jnp.zeros((), p.dtype))  # before abs: NaN-safe gradients
    return jnp.sum(jnp.abs(diff), axis=-1) / 2


__all__ = [
    "softmax", "sparsemax", "entmax15", "identity", "get", "available",
    "kl", "jsd", "tvd", "KL_CLIP", "Normalizer",
]
