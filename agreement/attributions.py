"""Feature attributions of Neely et al. (2022) as batched, jittable functions of any model's embeddings.

Every method has one signature::

    method(forward, embeddings, mask, target=None, *, key=None, **settings) -> scores [batch, seq]

- ``forward(embeddings [batch, seq, hidden]) -> logits [batch, classes]`` is a closure over
  the model's params and batch, so the same code explains the BiLSTM
  (``lambda e: model.apply(params, batch, embeddings=e)[0]``) and the transformers
  (``lambda e: teacher_fn(params, batch, embeddings=e).logits``). It must treat the
  examples of a batch independently (no batch statistics).
- ``mask`` [batch, seq]: 1 on the tokens that are features (explained), 0 elsewhere.
  Positions with mask 0 are held at their input embedding in every perturbation, path
  point and reference, and score exactly 0. Pass the attention mask to rank every real
  token, special tokens included (the reference), or a content mask to leave them out.
- ``target`` [batch] int: the class explained; ``None`` explains the predicted class
  (argmax; ``logit > 0`` for a single logit). The explained scalar is chosen by
  ``output``: "probability" (default, the reference: softmax probability of the target;
  for a single logit ``sigmoid(z)`` for target 1 and ``sigmoid(-z)`` for target 0),
  "logit" (the target's logit; ``+-z`` for a single logit) or "log_probability".
- Per-dimension attributions are reduced to tokens by ``reduce``: "sum" over the
  embedding dimension (default, signed; the reference then takes ``abs``), "l2" (the
  norm), or "none" (keep [batch, seq, hidden]; LIME and leave-one-out are per token and
  ignore it).
- Pair inputs with two embedding tensors (the pair BiLSTM): concatenate them along seq
  and split them again inside ``forward``; the scores then rank both sequences in one
  vector, as the reference did, and every token is its own LIME feature (unlike the
  reference's shared premise/hypothesis feature ids).
- Baselines are arrays broadcastable to the embeddings ([hidden] for one pad-token row,
  [batch, seq, hidden] for a transformer's pad embedding with positions); ``None`` is
  zero. The reference used the embedding of the pad token.

Methods (registry: :func:`get`, :func:`available`): :func:`integrated_gradients`,
:func:`gradient_x_input`, :func:`leave_one_out`, :func:`deeplift`, :func:`deep_shap`,
:func:`gradient_shap`, :func:`lime`. None is jitted here because ``forward`` is a
closure; :func:`jit_method` builds the jitted ``(params, batch, embeddings, mask, target,
key) -> scores`` for a model function.

DeepLIFT is model-agnostic: :func:`deeplift` traces ``forward`` to a jaxpr and evaluates
it on the input and the reference side by side, giving every nonlinear primitive a
DeepLIFT rule through a custom VJP (see the section comment and :func:`deeplift`). No
model has to be rewritten with swappable nonlinearities.

References:
  Neely, Schouten, Bleeker, Lucic. "A Song of (Dis)agreement", HHAI 2022 (and "Order in
  the Court", 2021): the settings follow Captum 0.3.1 as court-of-xai called it.
  Sundararajan et al. 2017 (IG); Shrikumar et al. 2017 (DeepLIFT rescale rule);
  Lundberg & Lee 2017 (Deep-SHAP, Grad-SHAP); Ribeiro et al. 2016 (LIME).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np

from smat.explainers import _input_gradient, _path_quadrature

__all__ = [
    "OUTPUTS", "REDUCTIONS", "target_output", "predicted_class", "reduce_tokens", "integrated_gradients",
    "gradient_x_input", "leave_one_out", "deeplift", "deeplift_multipliers", "deep_shap", "gradient_shap", "lime",
    "weighted_ridge", "cosine_kernel_weights", "get", "available", "jit_method",
]

Array = jax.Array
Forward = Callable[[Array], Array]

OUTPUTS = ("probability", "logit", "log_probability")
REDUCTIONS = ("sum", "l2", "none")


# ------------------------------------------------------------------------ plumbing


def predicted_class(logits: Array) -> Array:
    """[batch] int32: argmax of [batch, classes] logits; ``logit > 0`` for a single logit."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(jnp.int32)
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def target_output(logits: Array, target: Array, output: str = "probability") -> Array:
    """The scalar explained per example.

    Args:
      logits: [batch, classes]; a single column is a binary sigmoid output.
      target: [batch] int class.
      output: "probability", "logit" or "log_probability" (see the module docstring).

    Returns:
      [batch] in the logits' dtype.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    target = jnp.asarray(target).astype(jnp.int32)
    if logits.shape[-1] == 1:
        z = jnp.where(target == 1, logits[..., 0], -logits[..., 0])
        if output == "logit":
            return z
        return jax.nn.sigmoid(z) if output == "probability" else jax.nn.log_sigmoid(z)
    if output == "logit":
        values = logits
    else:
        values = jax.nn.log_softmax(logits, axis=-1)
        if output == "probability":
            values = jnp.exp(values)
    return jnp.take_along_axis(values, target[:, None], axis=-1)[:, 0]


def _target(forward: Forward, embeddings: Array, target) -> Array:
    if target is None:
        return jax.lax.stop_gradient(predicted_class(forward(embeddings)))
    return jnp.asarray(target).astype(jnp.int32)


def _explained(forward: Forward, target: Array, output: str) -> Callable[[Array], Array]:
    return lambda e: target_output(forward(e), target, output)


def _feature_mask(mask: Array | None, embeddings: Array) -> Array:
    """[batch, seq, 1] bool: the feature tokens (all when ``mask`` is None)."""
    if mask is None:
        return jnp.ones(embeddings.shape[:-1] + (1,), bool)
    return jnp.asarray(mask).astype(bool)[..., None]


def _reference(baseline, embeddings: Array, mask: Array) -> Array:
    """The baseline broadcast to the embeddings, equal to the input where ``mask`` is 0 (no gradient)."""
    base = jnp.zeros_like(embeddings) if baseline is None else jnp.broadcast_to(
        jnp.asarray(baseline).astype(embeddings.dtype), embeddings.shape)
    return jax.lax.stop_gradient(jnp.where(_feature_mask(mask, embeddings), base, embeddings))


def _baseline_stack(baselines, embeddings: Array) -> Array:
    """[draws, batch, seq, hidden] from a [draws, ...] stack broadcastable to the embeddings."""
    if baselines is None:
        return jnp.zeros((1,) + embeddings.shape, embeddings.dtype)
    baselines = jnp.asarray(baselines).astype(embeddings.dtype)
    draws, rest = baselines.shape[0], baselines.shape[1:]
    aligned = baselines.reshape((draws,) + (1,) * (embeddings.ndim - len(rest)) + rest)
    return jnp.broadcast_to(aligned, (draws,) + embeddings.shape)


def reduce_tokens(attributions: Array, mask: Array | None, reduce: str = "sum") -> Array:
    """Per-dimension attributions [batch, seq, hidden] to token scores, zero where ``mask`` is 0.

    Args:
      attributions: [batch, seq, hidden].
      mask: [batch, seq] or None (all tokens).
      reduce: "sum" (signed sum over hidden), "l2" (norm over hidden) or "none".

    Returns:
      [batch, seq] ([batch, seq, hidden] for "none").
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    keep = _feature_mask(mask, attributions)
    attributions = jnp.where(keep, attributions, jnp.zeros((), attributions.dtype))
    if reduce == "none":
        return attributions
    if reduce == "l2":
        return jnp.sqrt(jnp.sum(jnp.square(attributions), axis=-1))
    return jnp.sum(attributions, axis=-1)


def _example_keys(key, batch: int, name: str) -> Array:
    """[batch] typed keys: ``key`` split per example, or ``key`` itself if it is already [batch].

    Per-example keys make a stochastic method's result for an example independent of the
    rest of its batch (pass ``jax.random.split(key, n)`` sliced like the data) with the
    default threefry keys; "rbg" keys draw differently under ``vmap``.
    """
    if key is None:
        raise ValueError(f"{name} is stochastic: pass key=jax.random.key(...)")
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        raise TypeError(f"{name}: use a typed key (jax.random.key), got dtype {key.dtype}")
    if key.shape == ():
        return jax.random.split(key, batch)
    if key.shape != (batch,):
        raise ValueError(f"{name}: key must be one key or one per example ({batch}), got shape {key.shape}")
    return key


# ------------------------------------------------------------------- gradient methods


def integrated_gradients(forward: Forward, embeddings: Array, mask: Array, target: Array | None = None, *,
                         key=None, baseline=None, steps: int = 50, method: str = "gausslegendre",
                         steps_per_batch: int | None = None, output: str = "probability",
                         reduce: str = "sum") -> Array:
    """Integrated gradients along the straight line from the baseline (Captum's defaults).

    ``attr = (x - b) * sum_i w_i grad f(b + alpha_i (x - b))``, which sums over tokens and
    dimensions to ``f(x) - f(b)`` up to the quadrature error (completeness).

    Args:
      forward, embeddings, mask, target: see the module docstring.
      key: unused (deterministic).
      baseline: broadcastable to the embeddings; None is zero.
      steps: path points (50 in the reference).
      method: "gausslegendre" (Captum's default), "trapezoid" or "riemann_middle".
      steps_per_batch: evaluate this many path points at once (memory); default all.
      output: the explained scalar.
      reduce: "sum", "l2" or "none".

    Returns:
      [batch, seq] token scores.
    """
    del key
    target = _target(forward, embeddings, target)
    base = _reference(baseline, embeddings, mask)
    delta = embeddings - base
    alphas, weights = _path_quadrature(steps, method)

    def grad_at(point):
        alpha, weight = point
        return weight * _input_gradient(forward, base + alpha * delta, lambda out: target_output(out, target, output))

    points = (jnp.asarray(alphas, embeddings.dtype), jnp.asarray(weights, embeddings.dtype))
    grads = jax.lax.map(grad_at, points, batch_size=steps_per_batch or steps).sum(0)
    return reduce_tokens(grads * delta, mask, reduce)


def gradient_x_input(forward: Forward, embeddings: Array, mask: Array, target: Array | None = None, *,
                     key=None, baseline=None, output: str = "probability", reduce: str = "sum") -> Array:
    """Gradient times input, ``x * grad f(x)``; with a baseline ``(x - b) * grad f(x)``.

    With a baseline this is what Captum's ``DeepLift`` computed on court-of-xai's models,
    where no nonlinearity was a hookable ``nn`` module (see :func:`deeplift`).

    Args:
      baseline: None for plain gradient x input.
      (others as :func:`integrated_gradients`.)

    Returns:
      [batch, seq] token scores.
    """
    del key
    target = _target(forward, embeddings, target)
    grad = _input_gradient(forward, embeddings, lambda out: target_output(out, target, output))
    delta = embeddings if baseline is None else embeddings - _reference(baseline, embeddings, mask)
    return reduce_tokens(grad * delta, mask, reduce)


def gradient_shap(forward: Forward, embeddings: Array, mask: Array, target: Array | None = None, *,
                  key=None, baselines=None, n_samples: int = 5, stdev: float = 0.0,
                  samples_per_batch: int | None = None, output: str = "probability",
                  reduce: str = "sum") -> Array:
    """Grad-SHAP / expected gradients as Captum's ``GradientShap``.

    For each of ``n_samples`` draws, per example: a baseline ``b`` drawn uniformly from
    ``baselines``, ``alpha ~ U(0, 1)``, Gaussian noise ``eps ~ N(0, stdev^2)`` on the
    input's feature tokens; the sample is ``(x + eps - b) * grad f(b + alpha (x + eps - b))``.
    The result is the mean over draws. The reference: 5 samples, stdev 0, two identical
    pad baselines, i.e. a 5-point Monte-Carlo integrated gradients.

    Args:
      key: a typed ``jax.random.key`` (required), or [batch] keys, one per example.
      baselines: [draws, ...] each broadcastable to the embeddings; None is one zero baseline.
      n_samples: draws per example (5).
      stdev: noise standard deviation on the inputs (0.0); static (a Python number).
      samples_per_batch: draws evaluated at once (memory); default all.
      (others as :func:`integrated_gradients`.)

    Returns:
      [batch, seq] token scores.
    """
    batch, _, _ = embeddings.shape
    keys = _example_keys(key, batch, "gradient_shap")
    target = _target(forward, embeddings, target)
    stack = _baseline_stack(baselines, embeddings)
    keep = _feature_mask(mask, embeddings)
    dtype = embeddings.dtype

    def draws(k):
        k_uniform, k_noise = jax.random.split(k)
        uniform = jax.random.uniform(k_uniform, (2, n_samples), dtype)
        noise = (jax.random.normal(k_noise, (n_samples,) + embeddings.shape[1:], dtype) if stdev
                 else jnp.zeros((n_samples, 1, 1), dtype))  # stdev is static: no draws for the reference's 0
        return uniform, noise

    uniform, noise = jax.vmap(draws)(keys)  # [batch, 2, n_samples], [batch, n_samples, seq | 1, hidden | 1]
    draws_k = stack.shape[0]
    choice = jnp.minimum(jnp.floor(uniform[:, 0] * draws_k).astype(jnp.int32), draws_k - 1).T
    alphas = uniform[:, 1].T
    noise = jnp.swapaxes(noise, 0, 1)
    rows = jnp.arange(batch)

    def sample(args):
        index, alpha, eps = args
        noisy = embeddings + jnp.where(keep, stdev * eps, jnp.zeros((), dtype))
        base = _reference(stack[index, rows], embeddings, mask)
        delta = noisy - base
        point = base + alpha[:, None, None] * delta
        grad = _input_gradient(forward, point, lambda out: target_output(out, target, output))
        return grad * delta

    attributions = jax.lax.map(sample, (choice, alphas, noise), batch_size=samples_per_batch or n_samples)
    return reduce_tokens(attributions.mean(0), mask, reduce)


# ----------------------------------------------------------------- perturbation methods


def leave_one_out(forward: Forward, embeddings: Array, mask: Array, target: Array | None = None, *,
                  key=None, baseline=None, positions_per_batch: int | None = None,
                  output: str = "probability", reduce: str = "sum") -> Array:
    """Occlusion of one token at a time: ``f(x) - f(x with token t replaced by the baseline)``.

    All positions are evaluated as one batch (vmapped), or ``positions_per_batch`` at a
    time. Positive scores support the target.

    Args:
      key, reduce: unused (a token-level method).
      baseline: the replacement embedding; None is zero.
      positions_per_batch: positions evaluated at once (memory: batch x this x seq x hidden).
      (others as :func:`integrated_gradients`.)

    Returns:
      [batch, seq] token scores, zero where ``mask`` is 0.
    """
    del key, reduce
    target = _target(forward, embeddings, target)
    fn = _explained(forward, target, output)
    base = _reference(baseline, embeddings, mask)
    full = fn(embeddings)
    seq = embeddings.shape[1]

    def drop(position):
        at = (jnp.arange(seq) == position)[None, :, None]
        return full - fn(jnp.where(at, base, embeddings))

    scores = jax.lax.map(drop, jnp.arange(seq), batch_size=positions_per_batch or seq).T
    return jnp.where(_feature_mask(mask, embeddings)[..., 0], scores, jnp.zeros((), scores.dtype))


def weighted_ridge(features: Array, targets: Array, weights: Array, alpha: float = 1.0) -> tuple[Array, Array]:
    """Weighted ridge regression with an intercept, in closed form (``sklearn.linear_model.Ridge``).

    Minimises ``sum_n w_n (y_n - c - x_n . beta)^2 + alpha ||beta||^2``: the data are
    centred by their weighted means (the intercept is not penalised), then
    ``beta = (Xc^T W Xc + alpha I)^-1 Xc^T W yc``.

    Args:
      features: [..., samples, features].
      targets: [..., samples].
      weights: [..., samples] non-negative sample weights.
      alpha: the L2 penalty (sklearn's default 1.0).

    Returns:
      ``(coef [..., features], intercept [...])``.
    """
    dtype = features.dtype
    weights = weights.astype(dtype)
    total = jnp.sum(weights, axis=-1, keepdims=True)
    x_mean = jnp.einsum("...n,...nf->...f", weights, features) / total
    y_mean = jnp.sum(weights * targets, axis=-1, keepdims=True) / total
    xc = features - x_mean[..., None, :]
    yc = targets - y_mean
    gram = jnp.einsum("...nf,...n,...ng->...fg", xc, weights, xc)
    gram = gram + jnp.asarray(alpha, dtype) * jnp.eye(features.shape[-1], dtype=dtype)
    rhs = jnp.einsum("...nf,...n->...f", xc, weights * yc)
    coef = jnp.linalg.solve(gram, rhs[..., None])[..., 0]
    intercept = y_mean[..., 0] - jnp.sum(x_mean * coef, axis=-1)
    return coef, intercept


def cosine_kernel_weights(embeddings: Array, reference: Array, keep: Array, feature: Array,
                          kernel_width: float = 1.0) -> Array:
    """Captum's exponential cosine kernel between an input and its token-masked perturbations.

    ``w = exp(-d^2 / (2 width^2))`` with ``d = 1 - cos(vec x, vec x')``, the vectors
    flattened over the feature tokens, and ``x'_t = x_t`` if kept else the reference row.
    Computed from per-token dot products, without building the perturbed inputs.

    Args:
      embeddings, reference: [batch, seq, hidden].
      keep: [samples, batch, seq] bool, which tokens each perturbation keeps.
      feature: [batch, seq] bool, the tokens that are features (others are left out).
      kernel_width: the kernel width (1.0).

    Returns:
      [samples, batch] weights.
    """
    dtype = embeddings.dtype
    feature = feature.astype(dtype)
    xx = jnp.sum(embeddings * embeddings, -1) * feature
    xb = jnp.sum(embeddings * reference, -1) * feature
    bb = jnp.sum(reference * reference, -1) * feature
    keep = keep.astype(dtype)
    dot = jnp.einsum("sbt,bt->sb", keep, xx) + jnp.einsum("sbt,bt->sb", 1 - keep, xb)
    norm2 = jnp.einsum("sbt,bt->sb", keep, xx) + jnp.einsum("sbt,bt->sb", 1 - keep, bb)
    eps = jnp.asarray(1e-8, dtype)  # torch.nn.CosineSimilarity's eps
    x_norm = jnp.sqrt(jnp.sum(xx, -1))
    cos = dot / (jnp.maximum(x_norm, eps) * jnp.maximum(jnp.sqrt(norm2), eps))
    return jnp.exp(-jnp.square(1 - cos) / (2 * jnp.asarray(kernel_width, dtype) ** 2))


def lime(forward: Forward, embeddings: Array, mask: Array, target: Array | None = None, *, key=None,
         baseline=None, n_samples: int = 1000, kernel_width: float = 1.0, alpha: float = 1.0,
         samples_per_batch: int | None = 100, output: str = "probability", reduce: str = "sum") -> Array:
    """LIME for text with Captum's defaults as the reference ran it.

    ``n_samples`` masks ``z ~ Bernoulli(0.5)`` over the feature tokens; a masked token's
    embedding is replaced by the baseline's at that position (the sequence length and
    attention mask are unchanged: the token is replaced, not removed). Each perturbation
    is weighted by :func:`cosine_kernel_weights` (width 1), and a weighted ridge
    (alpha 1, intercept) of the explained output on ``z`` is fitted per example in closed
    form; the scores are its coefficients. All perturbed forward passes run batched
    (``samples_per_batch`` perturbations x batch at a time).

    Args:
      key: a typed ``jax.random.key`` (required), or [batch] keys, one per example.
      baseline: the replacement embedding; None is zero (the reference: the pad embedding).
      n_samples: perturbations per example (1000).
      kernel_width: the cosine kernel's width (1.0).
      alpha: the ridge penalty (1.0, sklearn ``Ridge()``).
      samples_per_batch: perturbations per forward batch (memory); None: all at once.
      reduce: unused (a token-level method).
      (others as :func:`integrated_gradients`.)

    Returns:
      [batch, seq] ridge coefficients, zero where ``mask`` is 0.
    """
    del reduce
    keys = _example_keys(key, embeddings.shape[0], "lime")
    target = _target(forward, embeddings, target)
    fn = _explained(forward, target, output)
    base = _reference(baseline, embeddings, mask)
    feature = _feature_mask(mask, embeddings)[..., 0]
    draws = jnp.swapaxes(jax.vmap(lambda k: jax.random.bernoulli(k, 0.5, (n_samples, feature.shape[1])))(keys), 0, 1)
    keep = draws | ~feature[None]  # non-features are always kept: constant columns get coefficient 0

    def perturbed(keep_one):
        return fn(jnp.where(keep_one[..., None], embeddings, base))

    outputs = jax.lax.map(perturbed, keep, batch_size=min(samples_per_batch or n_samples, n_samples))
    weights = cosine_kernel_weights(embeddings, base, keep, feature, kernel_width)
    coef, _ = weighted_ridge(jnp.moveaxis(keep.astype(embeddings.dtype), 0, 1), outputs.T, weights.T, alpha)
    return jnp.where(feature, coef, jnp.zeros((), coef.dtype))


# --------------------------------------------------------------------------- DeepLIFT
#
# ``forward`` (with the output transform) is traced to a jaxpr and evaluated twice in
# lockstep, on the input x and on the reference x0. Each value is a pair (input run,
# reference run) or, when it does not depend on x, one shared value. Linear primitives run
# on both sides and keep their ordinary gradient (exact for linear maps). Nonlinear
# primitives get a custom VJP whose multipliers m satisfy sum m * dx = dy for the op
# (summation-to-delta), so by the chain rule sum_i attr_i = f(x) - f(x0) for the model:
#
# - elementwise with one varying operand (tanh, sigmoid, exp, log, rsqrt, erf, relu =
#   max(x, 0), division by a varying x, powers, ...): the rescale rule m = dy / dx,
#   the derivative at x where |dx| < 1e-10;
# - products with both operands varying (``mul``, ``dot_general``: LSTM gates, attention
#   q.k and attention-times-values, LayerNorm's x * rsqrt(var), GELU's x * erfc(.)):
#   the exact bilinear split d(ab) = ((a + a0) / 2) db + da ((b + b0) / 2), i.e. the
#   Shapley value of the two factors ("midpoint"); ``product_rule="gradient"`` instead
#   backpropagates the plain gradient through products, as Captum does (not exact);
# - other elementwise ops with two varying operands (``div``, ``max``, ``pow``): the
#   two-player Shapley split of dy;
# - ``reduce_max``/``reduce_min`` and ``select_n`` (``jnp.where``) with a varying
#   condition: dy is spread over the entries chosen in either run, in proportion to
#   their own deltas (the plain gradient when those cancel);
# - ``stop_gradient`` values are shared by both runs (the input run's value): exact for
#   the max-shift that stabilises softmax / logsumexp, the only use in our models;
# - any other primitive: the gradient at x rescaled per output to match dy.
# ``jit``, custom_jvp/custom_vjp calls and remat are inlined (their primal definition is
# used, not their custom derivative); ``scan`` is rebuilt around the paired body (the
# LSTM); ``cond``/``while`` with varying operands raise NotImplementedError.

_EPS = 1e-10  # Captum's threshold on |dx| below which the rescale rule uses the gradient

_LINEAR = frozenset({
    "add", "sub", "neg", "add_any", "reduce_sum", "broadcast_in_dim", "reshape", "squeeze", "expand_dims",
    "transpose", "concatenate", "pad", "slice", "dynamic_slice", "dynamic_update_slice", "gather",
    "scatter-add", "scatter_add", "select_n", "copy", "copy_p", "convert_element_type", "rev", "cumsum",
    "reduce_precision", "real", "imag", "conj", "complex", "split", "sharding_constraint", "mesh_cast",
    "dot_general", "mul", "conv_general_dilated", "div", "optimization_barrier",
})
_BILINEAR = frozenset({"mul", "dot_general", "conv_general_dilated"})
_ELEMENTWISE = frozenset({
    "exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "asinh", "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "erf", "erfc", "erf_inv", "lgamma",
    "digamma", "abs", "sign", "floor", "ceil", "round", "integer_pow", "square", "max", "min", "pow", "div",
    "atan2", "rem", "nextafter", "clamp", "mul", "logistic",
})
_BINARY = frozenset({"div", "max", "min", "pow", "atan2", "rem", "nextafter"})
_CALLS = frozenset({"jit", "pjit", "closed_call", "core_call", "remat", "checkpoint", "custom_jvp_call",
                    "custom_vjp_call", "custom_vjp_call_jaxpr", "custom_lin"})


class _Val(NamedTuple):
    x: Any  # input run
    r: Any  # reference run (x itself when shared)
    dep: bool  # depends on the explained input


def _shared(value) -> _Val:
    return _Val(value, value, False)


def _is_float(value) -> bool:
    return jnp.issubdtype(jnp.result_type(value), jnp.inexact)


def _bind(eqn, args):
    out = eqn.primitive.bind(*args, **eqn.primitive.get_bind_params(eqn.params))
    return list(out) if eqn.primitive.multiple_results else [out]


def _op(eqn, index: int, args) -> Callable[[Array], Array]:
    """The (single-output) primitive as a function of operand ``index``, the others fixed."""

    def fn(value):
        full = list(args)
        full[index] = value
        return _bind(eqn, full)[0]

    return fn


def _safe_ratio(num: Array, den: Array, fallback: Array) -> Array:
    ok = (jnp.abs(den) > _EPS) & jnp.isfinite(den) & jnp.isfinite(num)
    return jnp.where(ok, num / jnp.where(ok, den, jnp.ones((), den.dtype)), fallback)


def _sum_to_shape(x: Array, shape) -> Array:
    if x.shape == tuple(shape):
        return x
    lead = x.ndim - len(shape)
    x = x.sum(axis=tuple(range(lead))) if lead else x
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    return x.sum(axis=axes, keepdims=True) if axes else x


@jax.custom_vjp
def _with_multiplier(x, y, multiplier):
    """``y`` (computed from ``x`` elsewhere) whose gradient with respect to ``x`` is ``ct * multiplier``."""
    del x, multiplier
    return y


def _with_multiplier_fwd(x, y, multiplier):
    return y, (x, y, multiplier)


def _with_multiplier_bwd(res, ct):
    x, y, multiplier = res
    return _sum_to_shape(ct * multiplier, x.shape).astype(x.dtype), jnp.zeros_like(y), jnp.zeros_like(multiplier)


_with_multiplier.defvjp(_with_multiplier_fwd, _with_multiplier_bwd)


def _with_vjp(args: list, y: Array, residuals, cotangent_fn: Callable[[Any, Array], list]) -> Array:
    """``y`` whose gradient with respect to ``args`` is ``cotangent_fn(residuals, ct)`` (linear in ``ct``).

    Everything traced that the backward pass needs travels in ``residuals``:
    ``cotangent_fn`` must close over static values only (a closure over traced values
    would leak out of ``scan`` bodies).
    """
    dtypes = [a.dtype for a in args]

    @jax.custom_vjp
    def wrapped(operands, value, res):
        del operands, res
        return value

    def fwd(operands, value, res):
        del operands
        return value, res

    def bwd(res, ct):
        cts = cotangent_fn(res, ct)
        return [c.astype(d) for c, d in zip(cts, dtypes)], None, None

    wrapped.defvjp(fwd, bwd)
    return wrapped(list(args), y, residuals)


def _float_dep(ins: list[_Val]) -> list[int]:
    return [i for i, v in enumerate(ins) if v.dep and _is_float(v.x)]


def _rule_rescale(eqn, ins, i):
    sg = jax.lax.stop_gradient
    fn_x = _op(eqn, i, [sg(v.x) for v in ins])
    x = sg(ins[i].x)
    y_x = fn_x(x)
    y_r = sg(_op(eqn, i, [v.r for v in ins])(ins[i].r))
    slope = jax.jvp(fn_x, (x,), (jnp.ones_like(x),))[1]
    m = sg(_safe_ratio(y_x - y_r, x - ins[i].r, slope))
    return [_Val(_with_multiplier(ins[i].x, y_x, m), y_r, True)]


def _rule_bilinear(eqn, ins, i, j):
    sg = jax.lax.stop_gradient
    y_x = sg(_bind(eqn, [v.x for v in ins])[0])
    y_r = sg(_bind(eqn, [v.r for v in ins])[0])
    mids = [sg((v.x + v.r) / 2) if v.dep else v.x for v in ins]

    def cotangents(res, ct):
        mids, a_x, b_x = res
        ct_a = jax.vjp(_op(eqn, i, mids), a_x)[1](ct)[0]
        ct_b = jax.vjp(_op(eqn, j, mids), b_x)[1](ct)[0]
        return [ct_a, ct_b]

    residuals = (mids, sg(ins[i].x), sg(ins[j].x))
    return [_Val(_with_vjp([ins[i].x, ins[j].x], y_x, residuals, cotangents), y_r, True)]


def _rule_binary(eqn, ins, i, j):
    """Two-player Shapley split of dy for an elementwise op of two varying operands."""
    sg = jax.lax.stop_gradient
    a, a0 = sg(ins[i].x), ins[i].r
    b, b0 = sg(ins[j].x), ins[j].r
    others = [sg(w.x) for w in ins]

    def f(u, v):
        full = list(others)
        full[i], full[j] = u, v
        return _bind(eqn, full)[0]

    y_x, y_r = f(a, b), f(a0, b0)
    f_ab0, f_a0b = f(a, b0), f(a0, b)
    phi_a = ((f_ab0 - y_r) + (y_x - f_a0b)) / 2
    phi_b = ((f_a0b - y_r) + (y_x - f_ab0)) / 2
    grad_a = jax.jvp(lambda u: f(u, b), (a,), (jnp.ones_like(a),))[1]
    grad_b = jax.jvp(lambda v: f(a, v), (b,), (jnp.ones_like(b),))[1]
    m_a = sg(_safe_ratio(phi_a, jnp.broadcast_to(a - a0, y_x.shape), jnp.broadcast_to(grad_a, y_x.shape)))
    m_b = sg(_safe_ratio(phi_b, jnp.broadcast_to(b - b0, y_x.shape), jnp.broadcast_to(grad_b, y_x.shape)))
    shape_a, shape_b = a.shape, b.shape

    def cotangents(res, ct):
        m_a, m_b = res
        return [_sum_to_shape(ct * m_a, shape_a), _sum_to_shape(ct * m_b, shape_b)]

    return [_Val(_with_vjp([ins[i].x, ins[j].x], y_x, (m_a, m_b), cotangents), sg(y_r), True)]


def _rule_reduce_extreme(eqn, ins):
    """reduce_max / reduce_min: dy over the extremal entries of either run, by their deltas."""
    sg = jax.lax.stop_gradient
    x, r = sg(ins[0].x), ins[0].r
    axes = tuple(eqn.params["axes"])
    y_x, y_r = _bind(eqn, [x])[0], sg(_bind(eqn, [r])[0])
    at_x = x == jnp.expand_dims(y_x, axes)
    at_r = r == jnp.expand_dims(y_r, axes)
    chosen = (at_x | at_r).astype(x.dtype)
    spread = jnp.sum(chosen * (x - r), axis=axes)
    ratio = jnp.expand_dims(_safe_ratio(y_x - y_r, spread, jnp.full_like(spread, jnp.nan)), axes)
    gradient = at_x.astype(x.dtype) / jnp.sum(at_x.astype(x.dtype), axis=axes, keepdims=True)
    multiplier = sg(jnp.where(jnp.isnan(ratio), gradient, chosen * ratio))

    def cotangents(res, ct):
        return [jnp.expand_dims(ct, axes) * res]

    return [_Val(_with_vjp([ins[0].x], y_x, multiplier, cotangents), y_r, True)]


def _rule_select(eqn, ins):
    """select_n with a varying condition: dy over the cases chosen in either run, by their deltas."""
    sg = jax.lax.stop_gradient
    which_x, which_r = ins[0].x.astype(jnp.int32), ins[0].r.astype(jnp.int32)
    cases_x = [sg(v.x) for v in ins[1:]]
    cases_r = [v.r for v in ins[1:]]
    y_x = _bind(eqn, [ins[0].x] + cases_x)[0]
    y_r = sg(_bind(eqn, [ins[0].r] + cases_r)[0])
    varying = [k for k, v in enumerate(ins[1:]) if v.dep and _is_float(v.x)]
    if not varying:  # a step function of the input: its jump has no operand to go to
        return [_Val(y_x, y_r, True)]
    dtype = y_x.dtype
    chosen = [((which_x == k) | (which_r == k)).astype(dtype) for k in range(len(cases_x))]
    spread = sum(c * jnp.broadcast_to(cx - cr, y_x.shape) for c, cx, cr in zip(chosen, cases_x, cases_r))
    ratio = _safe_ratio(y_x - y_r, spread, jnp.full_like(spread, jnp.nan))
    multipliers = [sg(jnp.where(jnp.isnan(ratio), (which_x == k).astype(dtype), chosen[k] * ratio))
                   for k in varying]
    shapes = [cases_x[k].shape for k in varying]

    def cotangents(res, ct):
        return [_sum_to_shape(ct * m, shape) for m, shape in zip(res, shapes)]

    return [_Val(_with_vjp([ins[1 + k].x for k in varying], y_x, multipliers, cotangents), y_r, True)]


def _rule_generic(eqn, ins):
    """Any primitive: the gradient at the input run, rescaled per output so that it sums to dy."""
    sg = jax.lax.stop_gradient
    varying = _float_dep(ins)
    xs = [sg(v.x) for v in ins]
    outs_x = _bind(eqn, xs)
    outs_r = [sg(o) for o in _bind(eqn, [v.r for v in ins])]
    if not varying:  # only integer operands vary (e.g. gather indices): nothing to differentiate
        return [_Val(ox, orr, True) for ox, orr in zip(outs_x, outs_r)]

    def fn_of(operands):
        def fn(*values):
            full = list(operands)
            for k, value in zip(varying, values):
                full[k] = value
            return tuple(_bind(eqn, full))
        return fn

    primals = tuple(xs[k] for k in varying)
    tangents = tuple(sg(ins[k].x - ins[k].r) for k in varying)
    _, linear = jax.jvp(fn_of(xs), primals, tangents)
    is_float = [_is_float(o) for o in outs_x]
    out_avals = [(o.shape, o.dtype) for o in outs_x]

    results = []
    for index, (ox, orr, lin) in enumerate(zip(outs_x, outs_r, linear)):
        if not is_float[index]:
            results.append(_Val(ox, orr, True))
            continue
        ratio = sg(_safe_ratio(ox - orr, lin, jnp.ones_like(lin)))

        def cotangents(res, ct, index=index):
            operands, ratio = res
            cts = [jnp.zeros(shape, dtype) if fl else np.zeros(shape, jax.dtypes.float0)
                   for (shape, dtype), fl in zip(out_avals, is_float)]
            cts[index] = ct * ratio
            _, vjp = jax.vjp(fn_of(operands), *[operands[k] for k in varying])
            return list(vjp(tuple(cts)))

        results.append(_Val(_with_vjp([ins[k].x for k in varying], ox, (xs, ratio), cotangents), orr, True))
    return results


def _dependence(jaxpr, in_deps: list[bool]) -> list[bool]:
    """Conservative: an equation's outputs depend on the input if any of its operands does."""
    deps = {v: d for v, d in zip(jaxpr.invars, in_deps)}

    def dep(v):
        return False if isinstance(v, jex.core.Literal) else deps.get(v, False)

    for eqn in jaxpr.eqns:
        d = any(dep(v) for v in eqn.invars)
        for v in eqn.outvars:
            deps[v] = d
    return [dep(v) for v in jaxpr.outvars]


def _flatten(vals: list[_Val], deps: list[bool]) -> list:
    flat = []
    for v, d in zip(vals, deps):
        flat.extend([v.x, v.r] if d else [v.x])
    return flat


def _unflatten(flat: list, deps: list[bool]) -> list[_Val]:
    vals, i = [], 0
    for d in deps:
        if d:
            vals.append(_Val(flat[i], flat[i + 1], True))
            i += 2
        else:
            vals.append(_shared(flat[i]))
            i += 1
    return vals


def _promote(v: _Val, dep: bool) -> _Val:
    if v.dep and not dep:
        raise AssertionError("a shared scan carry became input-dependent")
    return _Val(v.x, v.r, dep)


def _rule_scan(eqn, ins, product_rule):
    params = eqn.params
    body = params["jaxpr"]
    n_consts, n_carry = params["num_consts"], params["num_carry"]
    consts, init, xs = ins[:n_consts], ins[n_consts:n_consts + n_carry], ins[n_consts + n_carry:]
    const_deps, xs_deps = [v.dep for v in consts], [v.dep for v in xs]
    carry_deps = [v.dep for v in init]
    while True:
        out = _dependence(body.jaxpr, const_deps + carry_deps + xs_deps)
        new = [c or o for c, o in zip(carry_deps, out[:n_carry])]
        if new == carry_deps:
            break
        carry_deps = new
    ys_deps = out[n_carry:]

    def step(carry_flat, xs_flat):
        carry = _unflatten(carry_flat, carry_deps)
        x_vals = _unflatten(xs_flat, xs_deps)
        outs = _eval_paired(body.jaxpr, body.consts, list(consts) + carry + x_vals, product_rule)
        new_carry = [_promote(v, d) for v, d in zip(outs[:n_carry], carry_deps)]
        ys = [_promote(v, d) for v, d in zip(outs[n_carry:], ys_deps)]
        return _flatten(new_carry, carry_deps), _flatten(ys, ys_deps)

    init_vals = [_promote(v, d) for v, d in zip(init, carry_deps)]
    final, ys = jax.lax.scan(step, _flatten(init_vals, carry_deps), _flatten(xs, xs_deps),
                             length=params["length"], reverse=params["reverse"], unroll=params["unroll"])
    return _unflatten(final, carry_deps) + _unflatten(ys, ys_deps)


def _apply_eqn(eqn, ins: list[_Val], product_rule: str) -> list[_Val]:
    name = eqn.primitive.name
    if not any(v.dep for v in ins):
        return [_shared(o) for o in _bind(eqn, [v.x for v in ins])]
    if name in _CALLS:
        closed = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr", eqn.params.get("fun_jaxpr")))
        if isinstance(closed, jex.core.ClosedJaxpr):
            return _eval_paired(closed.jaxpr, closed.consts, ins, product_rule)
        return _eval_paired(closed, [], ins, product_rule)
    if name == "scan":
        return _rule_scan(eqn, ins, product_rule)
    if name == "stop_gradient":
        return [_shared(jax.lax.stop_gradient(ins[0].x))]
    if name in ("cond", "while"):
        raise NotImplementedError(f"deeplift: {name!r} with an input-dependent operand is not supported")

    outs_x = _bind(eqn, [v.x for v in ins])
    if not any(_is_float(o) for o in outs_x):  # comparisons, argmax, ...: no gradient, run both sides
        return [_Val(ox, orr, True) for ox, orr in zip(outs_x, _bind(eqn, [v.r for v in ins]))]
    varying = _float_dep(ins)
    varying_other = [i for i, v in enumerate(ins) if v.dep and not _is_float(v.x)]

    def both_runs():
        outs_r = _bind(eqn, [v.r for v in ins])
        return [_Val(ox, jax.lax.stop_gradient(orr), True) for ox, orr in zip(outs_x, outs_r)]

    if name == "select_n":
        return both_runs() if not ins[0].dep else _rule_select(eqn, ins)
    if name in ("reduce_max", "reduce_min") and len(ins) == 1:
        return _rule_reduce_extreme(eqn, ins)
    if name in _LINEAR and not varying_other:
        if name in _BILINEAR:
            if len(varying) == 2 and product_rule == "midpoint":
                return _rule_bilinear(eqn, ins, *varying)
            return both_runs()  # one varying factor: linear (or Captum's gradient rule on products)
        if name != "div" or varying == [0]:  # division by a constant is linear
            return both_runs()
    if name in _ELEMENTWISE and not varying_other and not eqn.primitive.multiple_results:
        if len(varying) == 1 and tuple(outs_x[0].shape) == tuple(ins[varying[0]].x.shape):
            return _rule_rescale(eqn, ins, varying[0])
        if len(varying) == 2 and name in _BINARY:
            return _rule_binary(eqn, ins, *varying)
    return _rule_generic(eqn, ins)


def _eval_paired(jaxpr, consts, args: list[_Val], product_rule: str) -> list[_Val]:
    env: dict = {}

    def read(v):
        return _shared(v.val) if isinstance(v, jex.core.Literal) else env[v]

    def write(v, value):
        if not isinstance(v, jex.core.DropVar):
            env[v] = value

    for v, c in zip(jaxpr.constvars, consts):
        write(v, _shared(c))
    for v, a in zip(jaxpr.invars, args):
        write(v, a)
    for eqn in jaxpr.eqns:
        for v, out in zip(eqn.outvars, _apply_eqn(eqn, [read(v) for v in eqn.invars], product_rule)):
            write(v, out)
    return [read(v) for v in jaxpr.outvars]


def deeplift_multipliers(fn: Callable[[Array], Array], x: Array, reference: Array, *,
                         product_rule: str = "midpoint") -> tuple[Array, Array, Array]:
    """DeepLIFT multipliers of a scalar-per-example function between ``reference`` and ``x``.

    Args:
      fn: [batch, ...] -> [batch] (examples independent).
      x, reference: inputs of the same shape.
      product_rule: "midpoint" (exact) or "gradient" (Captum's treatment of products).

    Returns:
      ``(multipliers, f(x), f(reference))``; ``sum(multipliers * (x - reference))`` per
      example equals ``f(x) - f(reference)`` up to float error under "midpoint".
    """
    if product_rule not in ("midpoint", "gradient"):
        raise ValueError(f"product_rule must be 'midpoint' or 'gradient', got {product_rule!r}")
    closed = jax.make_jaxpr(fn)(x)
    reference = jax.lax.stop_gradient(reference)

    def paired(value):
        (out,) = _eval_paired(closed.jaxpr, closed.consts, [_Val(value, reference, True)], product_rule)
        return out.x.sum(), (out.x, out.r)

    multipliers, (f_x, f_r) = jax.grad(paired, has_aux=True)(x)
    return multipliers, f_x, f_r


def deeplift(forward: Forward, embeddings: Array, mask: Array, target: Array | None = None, *, key=None,
             baseline=None, product_rule: str = "midpoint", output: str = "probability",
             reduce: str = "sum") -> Array:
    """DeepLIFT with the rescale rule, for any JAX model (no rewriting with swappable nonlinearities).

    The model is traced and each nonlinear primitive gets a DeepLIFT rule (the section
    comment above lists them). On our models:

    - LSTM (``baselines.models``): the gate nonlinearities ``sigmoid``/``tanh`` use the
      rescale rule; the gate products ``sigmoid(f) * c`` and ``sigmoid(i) * tanh(g)``,
      ``sigmoid(o) * tanh(c)`` use the midpoint split, so each product's change is shared
      exactly between its two factors; the recurrence is differentiated through
      ``lax.scan`` as usual.
    - Attention softmax (the BiLSTM's masked ``simplex.softmax``, the transformers'
      ``jax.nn.softmax``): the stabilising max is under ``stop_gradient`` and shared by
      both runs, ``exp`` uses the rescale rule, the normalising division (both operands
      input-dependent) the two-player Shapley split; masking with ``where`` is linear
      because the mask agrees in both runs. The transformer's ``q . k`` and ``alpha . v``
      are midpoint-split products, LayerNorm is products + ``rsqrt`` (rescale), GELU is
      ``x * erfc(.)`` (product + rescale).

    Summation-to-delta therefore holds for the whole model: per example, the
    attributions sum to ``f(x) - f(baseline)`` up to float error (tested on an MLP, the
    BiLSTM and a BERT encoder). Cost: the model runs on input and reference, plus one
    backward pass with a few extra elementwise ops per nonlinearity.

    Captum's DeepLift applies the rescale rule only at registered ``nn`` nonlinearity
    modules and backpropagates plain gradients through everything else; on court-of-xai's
    models no module fired, so their "DeepLIFT" was ``(x - b) * grad f(x)``, i.e.
    :func:`gradient_x_input` with ``baseline=b``. ``product_rule="gradient"`` keeps our
    rules on nonlinearities but treats products by the gradient, as Captum does for the
    multiplications it cannot hook (not exact).

    Args:
      baseline: the reference input; None is zero (the reference: the pad embedding).
      product_rule: "midpoint" (default, exact) or "gradient".
      (others as :func:`integrated_gradients`.)

    Returns:
      [batch, seq] token scores.

    Raises:
      NotImplementedError: if the model has ``lax.cond``/``while_loop`` on input-dependent values.
    """
    del key
    target = _target(forward, embeddings, target)
    reference = _reference(baseline, embeddings, mask)
    multipliers, _, _ = deeplift_multipliers(_explained(forward, target, output), embeddings, reference,
                                             product_rule=product_rule)
    return reduce_tokens(multipliers * (embeddings - reference), mask, reduce)


def deep_shap(forward: Forward, embeddings: Array, mask: Array, target: Array | None = None, *, key=None,
              baselines=None, product_rule: str = "midpoint", output: str = "probability",
              reduce: str = "sum") -> Array:
    """Deep-SHAP: :func:`deeplift` averaged over a distribution of baselines (Captum ``DeepLiftShap``).

    With K identical baselines (the reference: two copies of the pad embedding) this is
    exactly :func:`deeplift` with that baseline.

    Args:
      baselines: [draws, ...] each broadcastable to the embeddings; None is one zero baseline.
      (others as :func:`deeplift`.)

    Returns:
      [batch, seq] token scores.
    """
    del key
    target = _target(forward, embeddings, target)
    fn = _explained(forward, target, output)

    def one(baseline):
        reference = _reference(baseline, embeddings, mask)
        multipliers, _, _ = deeplift_multipliers(fn, embeddings, reference, product_rule=product_rule)
        return multipliers * (embeddings - reference)

    attributions = jax.lax.map(one, _baseline_stack(baselines, embeddings))
    return reduce_tokens(attributions.mean(0), mask, reduce)


# --------------------------------------------------------------------------- registry


_REGISTRY: dict[str, Callable[..., Array]] = {
    "lime": lime,
    "integrated_gradients": integrated_gradients,
    "deeplift": deeplift,
    "gradient_shap": gradient_shap,
    "deep_shap": deep_shap,
    "gradient_x_input": gradient_x_input,
    "leave_one_out": leave_one_out,
}


def available() -> tuple[str, ...]:
    """Names accepted by :func:`get`."""
    return tuple(_REGISTRY)


def get(name: str, /, **settings) -> Callable[..., Array]:
    """A registered method with its settings bound (``functools.partial``).

    Example:
      >>> ig = get("integrated_gradients", steps=16)
      >>> f = lambda e: e.sum(-1)[:, :1] * jnp.ones((1, 2))
      >>> ig(f, jnp.ones((1, 3, 2)), jnp.ones((1, 3)), jnp.zeros((1,), jnp.int32), output="logit").shape
      (1, 3)
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown attribution method {name!r}; available: {', '.join(available())}")
    return functools.partial(_REGISTRY[name], **settings) if settings else _REGISTRY[name]


def jit_method(method: Callable[..., Array] | str, model_fn: Callable[[Any, Any, Array], Array],
               **settings) -> Callable[..., Array]:
    """A jitted ``(params, batch, embeddings, mask, target=None, key=None) -> scores`` for a model.

    Args:
      method: a method of this module or its registry name.
      model_fn: ``(params, batch, embeddings) -> logits [batch, classes]``, e.g.
        ``lambda p, b, e: model.apply(p, b, embeddings=e)[0]`` (BiLSTM) or
        ``lambda p, b, e: teacher_fn(p, b, embeddings=e).logits`` (transformers).
      settings: the method's settings (static).

    Returns:
      The jitted function (baselines in ``settings`` are closed-over constants).
    """
    fn = get(method) if isinstance(method, str) else method

    def run(params, batch, embeddings, mask, target=None, key=None):
        return fn(lambda e: model_fn(params, batch, e), embeddings, mask, target, key=key, **settings)

    return jax.jit(run)
