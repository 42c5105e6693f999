"""Attention adversaries: Jain & Wallace's (2019) per-instance adversary and permutation test,
and Wiegreffe & Pinter's (2019) model-consistent adversary.

J&W's two experiments freeze a trained attention classifier, keep the BiLSTM hidden states of a
batch fixed (one :attr:`Model.apply`), and feed other attention distributions through the
decoder (:attr:`Model.decode`):

- :func:`jw_adversary` (their Section 4.2.2, Figure 3e-f; the ``+`` marker of Wiegreffe &
  Pinter's Figure 5): K free attention distributions per instance, optimised to be far from
  the base attention in Jensen-Shannon divergence while keeping the output within epsilon.
- :func:`permutation_test` (their Section 4.1): the base attention weights shuffled among
  each instance's real, non-special tokens; the statistic is the median output change.

Output change ("|delta p|", :func:`output_difference`) is ``|sigmoid(y') - sigmoid(y)|``
for the binary models (one logit), the full binary TVD and *not* the halved legacy value
of :func:`smat.simplex.tvd`; with several classes it is J&W's question-answering variant
``sum_c |softmax(y')_c - softmax(y)_c|`` (twice the TVD).

Everything is batched: all instances and all K adversaries are optimised in parallel by
one ``jax.lax.scan`` inside one jitted function per (model, config) and shape. The
objective of each instance depends only on that instance's variables, so the result for
an instance does not depend on the rest of the batch (up to the random draws).

Wiegreffe & Pinter's model-consistent adversary (their Section 4, Tables 4-5, the dotted
line of Figure 5) is a whole classifier trained by :func:`baselines.train.train` with
:func:`consistent_adversary_loss`: match a base model's outputs (TVD) while moving its
attention away from the base's (KL), traded off by lambda; :func:`adversary_data` attaches
the base outputs to the splits, :func:`adversary_summary` gives the reported TVD / JSD and
:func:`select_adversary` Table 4's choice among the lambda sweep (:data:`WP_LAMBDA_GRIDS`).

References:
  Jain & Wallace, "Attention is not Explanation", NAACL 2019, Sections 4.1 and 4.2.2
  (code: ``model/Binary_Classification.py::AdversaryMulti``, ``Model.permute_attn``,
  ``Trainers/PlottingBC.py::plot_multi_adversarial``, ``plot_permutations``).
  Wiegreffe & Pinter, "Attention is not not Explanation", EMNLP 2019, Section 4, Tables 4-5
  and Figure 5 (code: ``model/Binary_Classification.py::Model.train``, adversarial branch).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from baselines.models import Model
from smat import simplex

__all__ = [
    "JWAdversaryConfig", "jw_adversary", "jw_objective", "output_difference", "permutation_test",
    "within_mask_permutations",
    "WP_LAMBDA_GRIDS", "WP_MIN_JSD", "adversary_data", "adversary_summary", "binary_tvd", "consistent_adversary_loss",
    "consistent_terms", "select_adversary",
]

Array = jax.Array
Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class JWAdversaryConfig:
    """Static configuration of :func:`jw_adversary`; the defaults are J&W's.

    Attributes:
      num_adversaries: K, adversarial distributions per instance (5).
      steps: optimisation steps on the attention logits (500).
      lr: learning rate of Adam with AMSGrad (``optax.amsgrad``; 0.01).
      epsilon: the *optimisation* tolerance: the hinge ``penalty * relu(|delta p| - epsilon)``
        with ``|delta p| = |sigmoid(y_adv) - sigmoid(y_base)|``, the full difference, not
        halved (0.01).
      penalty: weight of that hinge (500).
      init_noise: standard deviation of the Gaussian noise added to the uniform initial
        logits ``log(1 / #tokens)`` (3).
      select_epsilon: the *plot-time* tolerance, different from ``epsilon``: "max JSD within
        epsilon" keeps the candidates (the K adversaries and the base attention) with
        ``|delta p| <= select_epsilon`` (0.05).
    """

    num_adversaries: int = 5
    steps: int = 500
    lr: float = 0.01
    epsilon: float = 0.01
    penalty: float = 500.0
    init_noise: float = 3.0
    select_epsilon: float = 0.05

    def __post_init__(self):
        if self.num_adversaries < 1:
            raise ValueError(f"num_adversaries must be positive, got {self.num_adversaries}")
        if self.steps < 0:
            raise ValueError(f"steps must be non-negative, got {self.steps}")
        for name in ("lr", "epsilon", "penalty", "init_noise", "select_epsilon"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")


# ------------------------------------------------------------------------- helpers


def _probabilities(logits: Array) -> Array:
    """sigmoid of the single logit ([..., batch]) or softmax over classes ([..., batch, classes])."""
    if logits.shape[-1] == 1:
        return jax.nn.sigmoid(logits[..., 0])
    return jax.nn.softmax(logits, axis=-1)


def output_difference(logits: Array, base_logits: Array) -> Array:
    """J&W's output change |delta p| between two outputs of the same classifier.

    Args:
      logits: [..., batch, classes].
      base_logits: [batch, classes] (broadcast against ``logits``).

    Returns:
      [..., batch]: ``|sigmoid(y) - sigmoid(y_base)|`` for one class (the full binary TVD),
      ``sum_c |softmax(y)_c - softmax(y_base)_c|`` for several (J&W's QA / NLI variant).

    Example:
      >>> import jax.numpy as jnp
      >>> print(f"{output_difference(jnp.array([[0.0]]), jnp.array([[100.0]]))[0]:.3f}")
      0.500
    """
    diff = _probabilities(logits) - _probabilities(base_logits)
    return jnp.abs(diff) if logits.shape[-1] == 1 else jnp.sum(jnp.abs(diff), axis=-1)


def _base_summary(logits: Array, attention: Array) -> dict[str, Array]:
    """Base probabilities, predicted class and max attention (the violin plots' x and hue)."""
    probs = _probabilities(logits)
    if logits.shape[-1] == 1:
        base_class = (probs > 0.5).astype(jnp.int32)
    else:
        base_class = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return {"base_attention": attention, "base_probs": probs, "base_class": base_class,
            "base_max_attention": jnp.max(attention, axis=-1)}


def _frozen_forward(model: Model, params: Params, batch: dict) -> tuple[Params, Array, dict]:
    """One forward pass of the frozen model: nothing downstream differentiates into it."""
    logits, aux = model.apply(params, batch)
    return jax.lax.stop_gradient((params, logits, aux))


# ------------------------------------------------------------------------ adversary


def jw_objective(model: Model, params: Params, aux: dict, base_logits: Array, attention_logits: Array,
                 config: JWAdversaryConfig) -> Array:
    """J&W's adversarial objective (minimised) for free attention logits.

    ``sum_{b,k} [-JSD(a_bk, a_b) + penalty * relu(|delta p_bk| - epsilon)]
    - mean_{k,k'} sum_b JSD(a_bk, a_bk')``, with ``a_bk = softmax(attention_logits[k, b])``
    over the real non-special tokens (``aux["mask"]``; others get exactly zero weight),
    ``a_b = aux["attention"]`` the base attention and ``|delta p|`` from
    :func:`output_difference`. The last term rewards diversity among the K adversaries; its
    mean runs over all K^2 ordered pairs, the zero diagonal included, as in the reference.
    JSD is :func:`smat.simplex.jsd` (exact; the reference adds 1e-10 inside its logs).

    Args:
      model: the frozen classifier.
      params: its parameters.
      aux: ``model.apply``'s aux for the batch (``"hidden"``, ``"mask"``, ``"attention"``).
      base_logits: ``model.apply``'s logits [batch, classes].
      attention_logits: [K, batch, seq], the free variables; masked entries are ignored.
      config: the tolerances ``epsilon`` and ``penalty``.

    Returns:
      The scalar objective, summed over the batch (so each instance's gradient is its own).
    """
    mask = aux["mask"]
    attention = simplex.softmax(attention_logits, mask=mask)  # [K, batch, seq]
    divergence = simplex.jsd(attention, aux["attention"], mask)  # [K, batch]
    diff = output_difference(model.decode(params, aux, attention), base_logits)  # [K, batch]
    hinge = jax.nn.relu(diff - jnp.asarray(config.epsilon, diff.dtype))
    cross = simplex.jsd(attention[:, None], attention[None, :], mask)  # [K, K, batch]
    penalty = jnp.asarray(config.penalty, diff.dtype)
    return jnp.sum(penalty * hinge - divergence) - jnp.mean(jnp.sum(cross, axis=-1))


@functools.lru_cache(maxsize=32)
def _jw_adversary_fn(model: Model, config: JWAdversaryConfig) -> Callable[..., dict]:
    """The jitted adversary for one (model, config); cached so repeated calls reuse its traces."""
    optimizer = optax.amsgrad(config.lr)

    @jax.jit
    def run(params, batch, key):
        params, logits, aux = _frozen_forward(model, params, batch)
        mask = aux["mask"]
        dtype = aux["hidden"].dtype
        batch_size, seq = mask.shape
        # log(1 / #tokens) + noise: the constant does not move a softmax, the noise picks the start.
        count = jnp.sum(mask, axis=-1, dtype=jnp.int32).astype(dtype)
        uniform = -jnp.log(jnp.maximum(count, jnp.ones((), dtype)))
        noise = jax.random.normal(key, (config.num_adversaries, batch_size, seq), dtype)
        init = uniform[None, :, None] + jnp.asarray(config.init_noise, dtype) * noise
        init = jnp.where(mask, init, jnp.zeros((), dtype))

        objective = functools.partial(jw_objective, model, params, aux, logits, config=config)

        def step(carry, _):
            attention_logits, opt_state = carry
            loss, grads = jax.value_and_grad(objective)(attention_logits)
            with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
                updates, opt_state = optimizer.update(grads, opt_state, attention_logits)
            return (optax.apply_updates(attention_logits, updates), opt_state), loss

        (final, _), losses = jax.lax.scan(step, (init, optimizer.init(init)), length=config.steps)

        attention = simplex.softmax(final, mask=mask)  # [K, batch, seq]
        adv_logits = model.decode(params, aux, attention)
        divergence = simplex.jsd(attention, aux["attention"], mask)  # [K, batch]
        diff = output_difference(adv_logits, logits)
        within = diff <= jnp.asarray(config.select_epsilon, diff.dtype)
        # The base itself (JSD 0, |delta p| 0) is always a candidate, hence the floor at 0.
        max_within = jnp.max(jnp.where(within, divergence, jnp.zeros((), divergence.dtype)), axis=0)
        return {
            "attention": jnp.swapaxes(attention, 0, 1),  # [batch, K, seq]
            "probs": jnp.swapaxes(_probabilities(adv_logits), 0, 1),  # [batch, K(, classes)]
            "jsd": divergence.T,  # [batch, K]
            "output_diff": diff.T,  # [batch, K]
            "max_jsd_within": max_within,  # [batch]
            "objective": jnp.append(losses, objective(final)),  # [steps + 1], before each step and at the end
            **_base_summary(logits, aux["attention"]),
        }

    return run


def jw_adversary(model: Model, params: Params, batch: dict, config: JWAdversaryConfig, key: Array) -> dict:
    """Jain & Wallace's per-instance multi-adversary on a frozen attention classifier.

    The model runs once; its hidden states and decoder are then reused with K free
    attention distributions per instance, parameterised by logits [K, batch, seq]
    initialised at ``log(1 / #tokens) + init_noise * N(0, 1)`` with ``<SOS>``, ``<EOS>``
    and padding at exactly zero weight (``aux["mask"]``). They minimise :func:`jw_objective`
    for ``config.steps`` steps of Adam with AMSGrad (``optax.amsgrad``, which takes the
    running max of the bias-corrected second moment; PyTorch's corrects the max instead),
    all instances and adversaries at once in one jitted ``lax.scan``.

    Args:
      model: the trained classifier (any ``num_classes``; several classes use J&W's
        softmax L1 output change, see :func:`output_difference`).
      params: its parameters (not changed; no gradient flows into them).
      batch: a batch as ``model.apply`` takes it.
      config: a :class:`JWAdversaryConfig`.
      key: a typed PRNG key for the initial noise.

    Returns:
      A dict of arrays, per instance (batch first):
        ``attention`` [batch, K, seq]: the adversarial distributions;
        ``probs`` [batch, K] (sigmoid; [batch, K, classes] softmax with several classes);
        ``jsd`` [batch, K]: JSD to the base attention;
        ``output_diff`` [batch, K]: |delta p| to the base output;
        ``max_jsd_within`` [batch]: the max JSD to the base among the candidates -- the K
        adversaries and the base itself (JSD 0) -- with ``|delta p| <= select_epsilon``,
        J&W's plotted statistic, in [0, ln 2];
        ``base_attention`` [batch, seq], ``base_probs`` [batch(, classes)],
        ``base_class`` [batch] int32 (the predicted class, the plots' hue),
        ``base_max_attention`` [batch] (the plots' x);
        ``objective`` [steps + 1]: the batch objective before each step and at the end.

    References:
      Jain & Wallace (2019), Section 4.2.2 and Figure 3 (e-f); ``AdversaryMulti``.
    """
    return _jw_adversary_fn(model, config)(params, batch, key)


# ---------------------------------------------------------------------- permutations


def within_mask_permutations(key: Array, mask: Array, num_permutations: int) -> Array:
    """Uniform random permutations of each row's valid positions, as gather indices.

    Valid positions are ranked by uniform random keys (invalid ones get keys above 1, in
    position order, so they sort last and in place); the i-th valid position in order then
    takes its value from the i-th valid position in random order.

    Args:
      key: a typed PRNG key.
      mask: [batch, seq], nonzero where values may move (need not be contiguous).
      num_permutations: how many permutations per row.

    Returns:
      [num_permutations, batch, seq] int32 ``index``: ``take_along_axis(x, index, -1)``
      permutes ``x`` within each row's valid positions and leaves the others in place.
    """
    valid = mask.astype(bool)
    batch_size, seq = valid.shape
    positions = jnp.arange(seq, dtype=jnp.int32)
    after = (positions + 1).astype(jnp.float32) + jnp.ones((), jnp.float32)  # > 1 > any uniform draw
    draws = jax.random.uniform(key, (num_permutations, batch_size, seq), jnp.float32)
    shuffled = jnp.argsort(jnp.where(valid, draws, after), axis=-1)  # valid in random order, then the rest
    in_order = jnp.argsort(jnp.where(valid, positions, positions + seq), axis=-1)  # valid ascending, then the rest
    rank = jnp.argsort(in_order, axis=-1)  # inverse of in_order: position -> its slot
    return jnp.take_along_axis(shuffled, jnp.broadcast_to(rank, shuffled.shape), axis=-1).astype(jnp.int32)


@functools.lru_cache(maxsize=32)
def _permutation_fn(model: Model, num_permutations: int) -> Callable[..., dict]:
    """The jitted permutation test for one (model, num_permutations)."""

    @jax.jit
    def run(params, batch, key):
        params, logits, aux = _frozen_forward(model, params, batch)
        attention, mask = aux["attention"], aux["mask"]
        index = within_mask_permutations(key, mask, num_permutations)
        permuted = jnp.take_along_axis(jnp.broadcast_to(attention, index.shape), index, axis=-1)
        permuted = jnp.where(mask, permuted, jnp.zeros((), permuted.dtype))  # [perms, batch, seq]
        diff = output_difference(model.decode(params, aux, permuted), logits)  # [perms, batch]
        return {"median_output_diff": jnp.median(diff, axis=0), "output_diff": diff.T,
                **_base_summary(logits, attention)}

    return run


def permutation_test(model: Model, params: Params, batch: dict, key: Array, num_permutations: int = 100) -> dict:
    """Jain & Wallace's random-permutation experiment on a frozen attention classifier.

    For every instance, the base attention weights are shuffled ``num_permutations`` times
    among the real non-special tokens (``aux["mask"]``; J&W's positions 1..L-2), the
    hidden states held fixed, and the output change |delta p| (:func:`output_difference`)
    is recorded. The permutations are ``within_mask_permutations(key, aux["mask"],
    num_permutations)``.

    Args:
      model: the trained classifier.
      params: its parameters.
      batch: a batch as ``model.apply`` takes it.
      key: a typed PRNG key.
      num_permutations: permutations per instance (100 in J&W).

    Returns:
      A dict of arrays, per instance:
        ``median_output_diff`` [batch]: the median over permutations of |delta p|, J&W's
        plotted statistic;
        ``output_diff`` [batch, num_permutations];
        ``base_attention``, ``base_probs``, ``base_class``, ``base_max_attention`` as in
        :func:`jw_adversary`.

    Raises:
      ValueError: if ``num_permutations`` is not positive.

    References:
      Jain & Wallace (2019), Section 4.1 and Figure 2; ``Model.permute_attn``.
    """
    if num_permutations < 1:
        raise ValueError(f"num_permutations must be positive, got {num_permutations}")
    return _permutation_fn(model, int(num_permutations))(params, batch, key)


# ------------------------------------------------------------ W&P consistent adversary

# Table 5 of Wiegreffe & Pinter (2019): the lambda values of each dataset's sweep.
WP_LAMBDA_GRIDS: dict[str, tuple[float, ...]] = {
    "anemia": (0.0, 1e-4, 2e-4, 3.5e-4, 5e-4, 1e-3, 2e-3, 4e-3, 5e-3, 1e-2),
    "diabetes": (0.0, 1e-5, 2e-5, 4e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3, 1e-2),
    "sst": (0.0, 1e-5, 5e-5, 1e-4, 5e-4, 5.2e-4, 5.25e-4, 5.35e-4, 5.5e-4, 6e-4, 7.5e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0),
    "imdb": (0.0, 1e-4, 2e-4, 4e-4, 5e-4, 7e-4, 8e-4, 1e-3, 5e-3, 1e-2),
}
WP_MIN_JSD = 0.4  # Table 4: the adversary must reach a mean test JSD above this
WEIGHTINGS = ("reference", "instance", "none")


def binary_tvd(probs: Array, base_probs: Array, *, legacy_half_tvd: bool = True) -> Array:
    """TVD between two binary outputs given as positive-class probabilities (any shape).

    Args:
      probs, base_probs: p(y = 1), broadcastable to each other.
      legacy_half_tvd: the reference's ``0.5 * |p - q|`` (:func:`smat.simplex.tvd` with
        ``legacy_binary=True``), which its Tables 4-5 and lambda refer to; ``False`` gives
        the true TVD of the two-class distributions, ``|p - q|``.

    Returns:
      The elementwise TVD.
    """
    if legacy_half_tvd:
        return simplex.tvd(probs, base_probs, legacy_binary=True)
    p, q = jnp.asarray(probs), jnp.asarray(base_probs)
    return simplex.tvd(jnp.stack([1 - p, p], axis=-1), jnp.stack([1 - q, q], axis=-1))


def consistent_terms(logits: Array, attention: Array, base_probs: Array, base_attention: Array, mask: Array, *,
                     legacy_half_tvd: bool = True, kl_eps: float = 1e-30) -> tuple[Array, Array]:
    """Per-instance terms of the W&P adversary: output TVD and attention KL(adversary || base).

    Args:
      logits: the adversary's logits [batch, 1].
      attention: its attention [batch, seq].
      base_probs: the base model's p(y = 1) [batch].
      base_attention: the base model's attention [batch, seq].
      mask: [batch, seq], where attention may go (``aux["mask"]``); the KL ignores the rest,
        where both distributions are 0 (the reference's ``kl_div`` of ``log 0`` there is 0 in
        the PyTorch it ran on and NaN in recent ones).
      legacy_half_tvd: see :func:`binary_tvd`.
      kl_eps: floor of both distributions inside the KL's logs. The reference has none: its
        KL is infinite when the base gives a real token exactly zero weight (underflow on
        long documents); the default only replaces that infinity by a finite bound.

    Returns:
      ``(tvd, kl)``, each [batch].
    """
    if logits.shape[-1] != 1:
        raise ValueError(f"the W&P adversary is for binary models with one logit, got {logits.shape[-1]} classes")
    dtype = logits.dtype
    tvd = binary_tvd(jax.nn.sigmoid(logits[:, 0]), base_probs.astype(dtype), legacy_half_tvd=legacy_half_tvd)
    # KL(adversary || base): the paper's formula and what the reference's swapped kl_div computed.
    divergence = simplex.kl(attention, base_attention.astype(attention.dtype), mask, eps=kl_eps)
    return tvd.astype(dtype), divergence.astype(dtype)


def consistent_adversary_loss(lam: float, *, legacy_half_tvd: bool = True, weighting: str = "reference",
                              kl_eps: float = 1e-30) -> Callable[..., Array]:
    """Wiegreffe & Pinter's model-consistent adversary as a loss for :func:`baselines.train.train`.

    A fresh classifier is trained to match a base model's outputs while diverting its
    attention: ``sum_i TVD(y_a,i, y_b,i) - lam * sum_i KL(alpha_a,i || alpha_b,i)`` over the
    batch's valid rows, TVD on the positive-class probability (:func:`binary_tvd`) and KL
    over the attended tokens (:func:`consistent_terms`). ``lam = 0`` is allowed (the
    reference's CLI rejected it): it trains to the base outputs alone.

    The reference then multiplies by the class weights ``w_i = y_i * pos_weight + (1 - y_i)``
    (gold labels) as ``(loss * w).mean(1).sum()``; since its loss is already a batch sum, that
    scales the whole batch by ``sum_i w_i``, leaving the ratio of TVD and KL (the meaning of
    lam) alone. ``weighting`` picks:

    - ``"reference"``: ``(sum_i d_i) * (sum_i w_i)``, the reference's loss;
    - ``"instance"``: ``sum_i w_i d_i``, each instance weighted by its own class weight;
    - ``"none"``: ``sum_i d_i``, labels play no part;

    with ``d_i = TVD_i - lam * KL_i`` and all sums over valid rows.

    Args:
      lam: weight of the attention divergence (Table 5's lambda), >= 0.
      legacy_half_tvd: ``0.5 * |delta p|`` as the reference (default) or the true binary TVD.
      weighting: see above.
      kl_eps: see :func:`consistent_terms`.

    Returns:
      ``loss(model, params, batch, pos_weight) -> scalar``; the batch holds the adversary's
      inputs, ``labels``, ``valid``, ``base_probs`` [batch] and ``target_attention``
      [batch, seq] (see :func:`adversary_data`).

    Raises:
      ValueError: for a negative ``lam`` or an unknown ``weighting``.

    References:
      Wiegreffe & Pinter (2019), Section 4 and Tables 4-5; ``Model.train`` (adversarial
      branch) of their ``model/Binary_Classification.py``.
    """
    if not lam >= 0:
        raise ValueError(f"lam must be non-negative, got {lam}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")

    def loss(model: Model, params: Params, batch: dict, pos_weight: float) -> Array:
        logits, aux = model.apply(params, batch)
        tvd, divergence = consistent_terms(logits, aux["attention"], batch["base_probs"], batch["target_attention"],
                                           aux["mask"], legacy_half_tvd=legacy_half_tvd, kl_eps=kl_eps)
        dtype = logits.dtype
        valid = batch["valid"].astype(dtype)
        per_instance = (tvd - jnp.asarray(lam, dtype) * divergence) * valid
        if weighting == "none":
            return jnp.sum(per_instance)
        y = batch["labels"].astype(dtype)
        weights = (y * jnp.asarray(pos_weight, dtype) + (1 - y)) * valid
        if weighting == "instance":
            return jnp.sum(weights * per_instance)
        return jnp.sum(per_instance) * jnp.sum(weights)

    return loss


def adversary_data(data: Mapping[str, Mapping[str, np.ndarray]], base_probs: Mapping[str, np.ndarray],
                   base_attention: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Adds a base model's outputs to the splits, for :func:`consistent_adversary_loss`.

    Args:
      data: splits from :func:`baselines.train.encode_split`.
      base_probs: per split, the base model's p(y = 1), [examples] or [examples, 1] (one
        seed of :func:`baselines.train.predict`'s outputs).
      base_attention: per split (the same splits), its attention [examples, width], width
        at most the split's (zero-padded to it), aligned with the split's tokens.

    Returns:
      A new dict of splits; those named in ``base_probs`` gain ``base_probs`` [examples]
      and ``target_attention`` [examples, seq] (float32), the others are unchanged.

    Raises:
      ValueError: for mismatched splits or shapes, or attention that is not finite and
        non-negative.
    """
    if set(base_probs) != set(base_attention):
        raise ValueError(f"base_probs has splits {sorted(base_probs)}, base_attention {sorted(base_attention)}")
    out = {split: dict(arrays) for split, arrays in data.items()}
    for split in base_probs:
        if split not in data:
            raise ValueError(f"split {split!r} is not in the data ({sorted(data)})")
        n, width = data[split]["input_ids"].shape
        probs = np.asarray(base_probs[split], np.float32)
        if probs.ndim == 2 and probs.shape[1] == 1:
            probs = probs[:, 0]
        if probs.shape != (n,):
            raise ValueError(f"{split}: base_probs has shape {probs.shape}, expected ({n},) or ({n}, 1)")
        attention = np.asarray(base_attention[split], np.float32)
        if attention.ndim != 2 or attention.shape[0] != n or attention.shape[1] > width:
            raise ValueError(f"{split}: base_attention has shape {attention.shape}, expected ({n}, <= {width})")
        if not (np.all(np.isfinite(attention)) and np.all(attention >= 0)):
            raise ValueError(f"{split}: base_attention must be finite and non-negative")
        out[split]["base_probs"] = probs
        out[split]["target_attention"] = np.pad(attention, ((0, 0), (0, width - attention.shape[1])))
    return out


def adversary_summary(probs: np.ndarray, attention: np.ndarray, base_probs: np.ndarray, base_attention: np.ndarray,
                      mask: np.ndarray | None = None, *, legacy_half_tvd: bool = True) -> dict[str, np.ndarray]:
    """Per-instance and mean output TVD and attention JSD of a model against a base model.

    The numbers of Tables 4-5 and Figure 5: the reference summed them over the test set,
    the paper reports instance means. Leading axes (e.g. seeds) are kept.

    Args:
      probs: p(y = 1) [..., examples] or [..., examples, 1].
      attention: [..., examples, seq].
      base_probs, base_attention: the base model's, broadcastable to those.
      mask: optional [examples, seq] validity mask (both attentions are 0 elsewhere anyway).
      legacy_half_tvd: see :func:`binary_tvd`.

    Returns:
      ``{"tvd": [..., examples], "jsd": [..., examples], "mean_tvd": [...], "mean_jsd": [...]}``
      as float numpy arrays; JSD is :func:`smat.simplex.jsd` (natural log, at most ln 2).
    """

    def positive(p, attn):
        p = jnp.asarray(p, jnp.float32)
        return p[..., 0] if p.ndim == jnp.ndim(attn) and p.shape[-1] == 1 else p

    tvd = binary_tvd(positive(probs, attention), positive(base_probs, base_attention), legacy_half_tvd=legacy_half_tvd)
    jsd = simplex.jsd(jnp.asarray(attention, jnp.float32), jnp.asarray(base_attention, jnp.float32), mask)
    tvd, jsd = np.asarray(tvd), np.asarray(jsd)
    return {"tvd": tvd, "jsd": jsd, "mean_tvd": tvd.mean(-1), "mean_jsd": jsd.mean(-1)}


def select_adversary(f1: Sequence[float], mean_jsd: Sequence[float], *, min_jsd: float = WP_MIN_JSD) -> int | None:
    """Table 4's rule: the setting with the highest F1 among those whose mean JSD exceeds ``min_jsd``.

    Args:
      f1: positive-class F1 per lambda setting.
      mean_jsd: mean JSD to the base attention per setting (same order).
      min_jsd: the strict lower bound on the mean JSD (0.4 in the paper).

    Returns:
      The index of the chosen setting (the first on ties), or None when no setting qualifies.

    Example:
      >>> select_adversary([0.80, 0.78, 0.70], [0.10, 0.45, 0.69])
      1
    """
    f1, mean_jsd = np.asarray(f1, np.float64), np.asarray(mean_jsd, np.float64)
    if f1.shape != mean_jsd.shape:
        raise ValueError(f"f1 has shape {f1.shape}, mean_jsd {mean_jsd.shape}")
    allowed = mean_jsd > min_jsd
    if not allowed.any():
        return None
    return int(np.argmax(np.where(allowed, f1, -np.inf)))
