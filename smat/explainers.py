"""Explainers: pure functions from a model's internals to a distribution over tokens.

Every explainer is built by a factory and is an :class:`Explainer` NamedTuple of
``init(key) -> params`` and ``apply(params, inputs) -> (explanation, aux)``, where the
explanation is [batch, seq] on the simplex over the valid tokens (special tokens
included, padding at exactly zero), as in Fernandes et al. 2022, Section 3 and App. A.

- ``attention``: the parameterized explainer of SMaT. Per-head row-mean logits s^h
  (``EncoderOutput.head_scores``) are mixed with coefficients lambda = NORMALIZE(phi),
  phi in R^(layers*heads) initialised uniform, then a softmax over tokens.
- ``attention_all_layers`` / ``attention_last_layer``: the same explainer frozen at its
  uniform init (softmax of the mean of the logits, not the mean of attention maps).
- ``gradient_l2``, ``gradient_x_input``, ``integrated_gradients``: gradients of the
  predicted class (the raw output for regression) with respect to the embedding output,
  reduced per token and projected to the simplex with a tempered softmax.

Registry: :func:`get` and :func:`available`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from smat import simplex

__all__ = [
    "Explainer", "ExplainerInputs", "attention_explainer", "gradient_l2", "gradient_x_input",
    "integrated_gradients", "no_explainer", "get", "available", "explained_output", "PAD_BIAS",
]

PAD_BIAS = -1e10  # the reference's bias on padded tokens before the token softmax
Array = jax.Array


class ExplainerInputs(NamedTuple):
    """What explainers read. Dimension names: batch, seq, layers, heads, hidden, classes.

    Attributes:
      mask: [batch, seq] 1 for tokens (special tokens included), 0 for padding.
      head_scores: [batch, layers, heads, seq] per-head row-mean logits (attention explainers).
      embeddings: [batch, seq, hidden] the embedding output h0 (gradient explainers).
      output_fn: embeddings -> [batch, classes] model outputs (gradient explainers).
    """

    mask: Array
    head_scores: Array | None = None
    embeddings: Array | None = None
    output_fn: Callable[[Array], Array] | None = None


class Explainer(NamedTuple):
    """A registered explainer: pure ``init`` / ``apply`` plus what training needs to know.

    Attributes:
      name: the registry name.
      kind: "attention" or "gradient" (selects the default explanation-loss weight beta).
      trainable: whether ``params`` are meta-learned (only the SMaT attention explainer).
      init: key -> params (a dict, possibly empty).
      apply: (params, ExplainerInputs) -> (explanation [batch, seq], aux dict with "logits").
    """

    name: str
    kind: str
    trainable: bool
    init: Callable[[Any], dict]
    apply: Callable[[dict, ExplainerInputs], tuple[Array, dict]]


def _to_simplex(logits: Array, mask: Array, token_normalizer: str = "softmax") -> Array:
    biased = jnp.where(mask > 0, logits, jnp.asarray(PAD_BIAS, logits.dtype))
    return simplex.get(token_normalizer)(biased, mask=mask > 0)


# ----------------------------------------------------------------------- attention


def attention_explainer(num_layers: int, num_heads: int, *, normalizer: str = "sparsemax",
                        layers: tuple[int, ...] | None = None, trainable: bool = True,
                        token_normalizer: str = "softmax", name: str = "attention") -> Explainer:
    """The parameterized attention explainer (SMaT, Eq. 11-12).

    Args:
      num_layers, num_heads: the encoder's shape.
      normalizer: maps phi to head coefficients: "sparsemax" (paper), "softmax",
        "entmax15" or "none". A constant phi maps to uniform under all of them.
      layers: use only these layers (e.g. ``(num_layers - 1,)`` for the last layer);
        None uses all. Coefficients are ordered layer-major over the selected layers.
      trainable: False freezes the explainer at its uniform init (the static rows).
      token_normalizer: the map from token logits to the simplex ("softmax" in every
        paper run).

    Returns:
      An :class:`Explainer` with params ``{"head_coeffs": [len(layers) * heads]}``.
    """
    selected = tuple(range(num_layers)) if layers is None else tuple(int(i) % num_layers for i in layers)
    size = len(selected) * num_heads
    normalize = simplex.get(normalizer)

    def init(key=None):
        del key  # uniform init is deterministic, as in the reference
        return {"head_coeffs": jnp.full((size,), 1.0 / size, jnp.float32)}

    def apply(params, inputs: ExplainerInputs):
        scores = inputs.head_scores
        if scores is None:
            raise ValueError(f"explainer {name!r} needs head_scores [batch, layers, heads, seq]")
        if scores.shape[1:3] != (num_layers, num_heads):
            raise ValueError(f"head_scores have {scores.shape[1:3]} layers x heads, expected "
                             f"{(num_layers, num_heads)}")
        if len(selected) != num_layers:
            scores = scores[:, np.asarray(selected)]
        scores = scores.reshape(scores.shape[0], size, scores.shape[-1])
        coeffs = normalize(params["head_coeffs"]).astype(scores.dtype)
        logits = jnp.einsum("bkt,k->bt", scores, coeffs)
        return _to_simplex(logits, inputs.mask, token_normalizer), {"logits": logits, "head_coeffs": coeffs}

    return Explainer(name, "attention", trainable, init, apply)


# ------------------------------------------------------------------------ gradients


def explained_output(outputs: Array) -> Array:
    """The scalar explained per example: the predicted class's output, or the raw output for regression."""
    if outputs.shape[-1] == 1:
        return outputs[..., 0]
    target = jax.lax.stop_gradient(jnp.argmax(outputs, axis=-1))
    return jnp.take_along_axis(outputs, target[..., None], axis=-1)[..., 0]


def _input_gradient(output_fn, embeddings, target_fn=explained_output):
    # Examples are independent, so the gradient of the batch sum is the per-example gradient.
    return jax.grad(lambda e: target_fn(output_fn(e)).sum())(embeddings)


def _require_gradient_inputs(name, inputs: ExplainerInputs):
    if inputs.embeddings is None or inputs.output_fn is None:
        raise ValueError(f"explainer {name!r} needs embeddings and output_fn")


def gradient_l2(*, temperature: float = 1.0, token_normalizer: str = "softmax") -> Explainer:
    """||df/dh0_t||_2 per token, softmax(. / temperature).

    The reference declares temperature 0.1 but never applies it; 1.0 reproduces it.
    """

    def apply(params, inputs):
        _require_gradient_inputs("gradient_l2", inputs)
        grad = _input_gradient(inputs.output_fn, inputs.embeddings)
        logits = jnp.sqrt(jnp.sum(jnp.square(grad), axis=-1) + 1e-20) / temperature
        return _to_simplex(logits, inputs.mask, token_normalizer), {"logits": logits}

    return Explainer("gradient_l2", "gradient", False, lambda key=None: {}, apply)


def gradient_x_input(*, temperature: float = 0.1, token_normalizer: str = "softmax") -> Explainer:
    """<df/dh0_t, h0_t> per token (signed), softmax(. / temperature); the reference used 0.1."""

    def apply(params, inputs):
        _require_gradient_inputs("gradient_x_input", inputs)
        grad = _input_gradient(inputs.output_fn, inputs.embeddings)
        logits = jnp.sum(grad * inputs.embeddings, axis=-1) / temperature
        return _to_simplex(logits, inputs.mask, token_normalizer), {"logits": logits}

    return Explainer("gradient_x_input", "gradient", False, lambda key=None: {}, apply)


def _path_quadrature(steps: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Points alpha in [0, 1] and weights for the integral over the straight-line path."""
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if method == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps)
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return alphas, weights
    if method == "riemann_middle":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    raise ValueError(f"unknown quadrature {method!r}: gausslegendre, trapezoid or riemann_middle")


def integrated_gradients(*, steps: int = 10, method: str = "gausslegendre", baseline: str | float = 0.0,
                         temperature: float = 0.5, legacy_reference_path: bool = False,
                         steps_per_batch: int | None = None, token_normalizer: str = "softmax") -> Explainer:
    """Integrated gradients (Sundararajan et al. 2017) along the straight line from a baseline.

    attribution_t = <(h0_t - b_t), sum_i w_i df/dh0(b + alpha_i (h0 - b))_t>, which sums
    over tokens to f(h0) - f(b) up to the quadrature error (completeness).

    Args:
      steps: points on the path (10 for simulability in the paper, 50 for plausibility).
      method: quadrature: "gausslegendre" (Captum's default), "trapezoid", "riemann_middle".
      baseline: a constant embedding value (0.0: the zero baseline of the reference).
      temperature: softmax temperature (0.5 in the reference).
      legacy_reference_path: reproduce the SMaT reference instead: path points
        ``h0 * (i / (steps - 1)) * w_i`` with trapezoid weights w_i (so gradients are
        only taken within ~1/steps of the zero baseline) and attributions
        ``<sum_i w_i grad_i, h0_t>``. Not integrated gradients; for reproducing numbers only.
      steps_per_batch: evaluate this many path points at once (memory / speed trade-off);
        default all at once.
    """
    if legacy_reference_path:
        alphas, weights = _path_quadrature(steps, "trapezoid")
        weights = weights * (steps - 1) / steps  # the reference's w_i: 1/(2n) at the ends, 1/n inside
    else:
        alphas, weights = _path_quadrature(steps, method)

    def apply(params, inputs):
        _require_gradient_inputs("integrated_gradients", inputs)
        x = inputs.embeddings
        base = jnp.full_like(x, baseline)
        # The target class is fixed at the real input, not re-picked along the path.
        target = jax.lax.stop_gradient(jnp.argmax(inputs.output_fn(x), axis=-1))

        def target_fn(outputs):
            if outputs.shape[-1] == 1:
                return outputs[..., 0]
            return jnp.take_along_axis(outputs, target[..., None], axis=-1)[..., 0]

        def grad_at(point):
            alpha, weight = point
            if legacy_reference_path:
                path_x = x * alpha * weight
            else:
                path_x = base + alpha * (x - base)
            return weight * _input_gradient(inputs.output_fn, path_x, target_fn)

        points = (jnp.asarray(alphas, x.dtype), jnp.asarray(weights, x.dtype))
        grads = jax.lax.map(grad_at, points, batch_size=steps_per_batch or steps)
        avg_grad = grads.sum(0)
        delta = x if legacy_reference_path else x - base
        attributions = jnp.sum(avg_grad * delta, axis=-1)
        logits = attributions / temperature
        return _to_simplex(logits, inputs.mask, token_normalizer), {"logits": logits, "attributions": attributions}

    return Explainer("integrated_gradients", "gradient", False, lambda key=None: {}, apply)


# ------------------------------------------------------------------------- registry


def no_explainer() -> Explainer:
    """The "No explainer" row: a uniform explanation over the tokens, used with beta = 0."""

    def apply(params, inputs: ExplainerInputs):
        del params
        logits = jnp.zeros(inputs.mask.shape, jnp.float32)
        return _to_simplex(logits, inputs.mask), {"logits": logits}

    return Explainer("none", "none", False, lambda key=None: {}, apply)


def _static_attention(layers_kind):
    def factory(num_layers, num_heads, **kw):
        layers = (num_layers - 1,) if layers_kind == "last" else None
        return attention_explainer(num_layers, num_heads, layers=layers, trainable=False,
                                   name=f"attention_{layers_kind}_layer{'s' if layers_kind == 'all' else ''}", **kw)

    return factory


_REGISTRY: dict[str, Callable[..., Explainer]] = {
    "attention": attention_explainer,
    "attention_all_layers": _static_attention("all"),
    "attention_last_layer": _static_attention("last"),
    "gradient_l2": gradient_l2,
    "gradient_x_input": gradient_x_input,
    "integrated_gradients": integrated_gradients,
    "none": no_explainer,
}

# Explanation-loss weight beta per explainer kind (paper, Appendix A).
DEFAULT_BETA = {"attention": 5.0, "gradient": 0.2, "none": 0.0}


def available() -> tuple[str, ...]:
    """Names accepted by :func:`get`."""
    return tuple(_REGISTRY)


def get(name: str, /, **kwargs) -> Explainer:
    """Builds a registered explainer; attention explainers need ``num_layers`` and ``num_heads``.

    Example:
      >>> from smat import explainers
      >>> e = explainers.get("attention_last_layer", num_layers=6, num_heads=12)
      >>> e.trainable, e.init()["head_coeffs"].shape
      (False, (12,))
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown explainer {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name](**kwargs)


def register(name: str, factory: Callable[..., Explainer]) -> None:
    """Adds a user explainer factory to the registry."""
    if name in _REGISTRY:
        raise KeyError(f"explainer {name!r} is already registered")
    _REGISTRY[name] = factory
