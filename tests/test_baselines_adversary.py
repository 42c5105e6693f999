"""baselines.adversary: J&W's multi-adversary and permutation test against float64 numpy oracles."""

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from baselines import adversary
from baselines.adversary import JWAdversaryConfig
from baselines.models import BiLSTMConfig, bilstm_classifier

LENGTHS = (10, 9, 8, 6, 5, 3)  # <SOS> + content + <EOS>; the last row has one content token
SEQ = 10
STEPS = 200
NUM_PERMUTATIONS = 20
ATOL = 2e-5  # float32 code vs float64 oracle
LN2 = float(np.log(2.0))


# ---------------------------------------------------------------- numpy oracles (float64)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def np_masked_softmax(logits, mask):
    z = np.where(mask, logits, -np.inf)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.where(mask, np.exp(z), 0.0)
    return e / np.sum(e, axis=-1, keepdims=True)


def np_jsd(p, q):
    """JSD over the last axis, natural log, 0 log 0 = 0."""
    p, q = np.broadcast_arrays(p, q)
    m = (p + q) / 2

    def kl_to_m(a):
        safe = np.where(a > 0, a, 1.0)
        return np.sum(np.where(a > 0, a * np.log(safe / np.where(a > 0, m, 1.0)), 0.0), axis=-1)

    return (kl_to_m(p) + kl_to_m(q)) / 2


def np_decode(params, hidden, attention):
    """The single-sequence decoder: Linear(context), context = sum_t a_t h_t; [..., batch, classes]."""
    kernel = np.asarray(params["decoder"]["kernel"], np.float64)
    bias = np.asarray(params["decoder"]["bias"], np.float64)
    context = np.einsum("...bs,bsh->...bh", attention, hidden)
    return context @ kernel + bias


def np_output_diff(logits, base_logits):
    if logits.shape[-1] == 1:
        return np.abs(np_sigmoid(logits[..., 0]) - np_sigmoid(base_logits[..., 0]))
    return np.sum(np.abs(np_softmax(logits) - np_softmax(base_logits)), axis=-1)


def np_objective(params, hidden, mask, base_attention, base_logits, attention_logits, epsilon, penalty):
    """J&W's objective written out: sum_{b,k}[-JSD + penalty relu(|dp| - eps)] - mean_{k,k'} sum_b JSD."""
    attention = np_masked_softmax(attention_logits, mask)  # [K, batch, seq]
    jsd_base = np_jsd(attention, base_attention)  # [K, batch]
    diff = np_output_diff(np_decode(params, hidden, attention), base_logits)  # [K, batch]
    num_adversaries = attention.shape[0]
    cross = np.zeros((num_adversaries, num_adversaries))
    for k in range(num_adversaries):
        for k2 in range(num_adversaries):
            cross[k, k2] = np.sum(np_jsd(attention[k], attention[k2]))
    total = np.sum(-jsd_base + penalty * np.maximum(diff - epsilon, 0.0)) - np.mean(cross)
    return total, diff


# ------------------------------------------------------------------------------ fixtures


def make_batch(seed=0):
    rng = np.random.default_rng(seed)
    ids = np.zeros((len(LENGTHS), SEQ), np.int32)
    mask = np.zeros((len(LENGTHS), SEQ), np.int32)
    for b, length in enumerate(LENGTHS):
        ids[b, :length] = np.r_[2, rng.integers(4, 50, length - 2), 3]
        mask[b, :length] = 1
    return {"input_ids": jnp.asarray(ids), "attention_mask": jnp.asarray(mask)}


def make_model(num_classes=1):
    """A tiny random classifier whose outputs are near 0.5 and move with the attention.

    The decoder kernel is scaled up and its bias centred on the batch so that a random
    attention often changes p by more than the tolerance: the adversary has work to do.
    """
    model = bilstm_classifier(BiLSTMConfig(vocab_size=50, embedding_dim=8, hidden_size=8, attention_hidden=8,
                                           num_classes=num_classes))
    params = model.init(jax.random.key(0))
    batch = make_batch()
    params["decoder"]["kernel"] = params["decoder"]["kernel"] * jnp.float32(10.0)
    logits, _ = jax.jit(model.apply)(params, batch)
    params["decoder"]["bias"] = params["decoder"]["bias"] - jnp.mean(logits, axis=0)
    return model, params, batch


def counting(model, calls):
    """The same model, counting how often ``apply`` is traced or run eagerly."""

    def apply(*args, **kwargs):
        calls["apply"] += 1
        return model.apply(*args, **kwargs)

    return model._replace(apply=apply)


@pytest.fixture(scope="module")
def setup():
    model, params, batch = make_model()
    calls = collections.Counter()
    model = counting(model, calls)
    logits, aux = jax.jit(model.apply)(params, batch)
    config = JWAdversaryConfig(steps=STEPS)
    key = jax.random.key(1)
    trained = adversary.jw_adversary(model, params, batch, config, key)
    start = adversary.jw_adversary(model, params, batch, JWAdversaryConfig(steps=0), key)  # the same init
    return {"model": model, "params": params, "batch": batch, "logits": logits, "aux": aux, "config": config,
            "calls": calls, "trained": jax.device_get(trained), "start": jax.device_get(start)}


# ------------------------------------------------------------------------------ adversary


def test_adversarial_attention_on_the_simplex_over_content_tokens(setup):
    mask = np.asarray(setup["aux"]["mask"])
    assert not mask[:, 0].any() and not mask[np.arange(len(LENGTHS)), np.array(LENGTHS) - 1].any()
    for out in (setup["trained"], setup["start"]):
        attention = out["attention"]  # [batch, K, seq]
        assert attention.shape == (len(LENGTHS), setup["config"].num_adversaries, SEQ)
        assert np.all(attention[~np.broadcast_to(mask[:, None], attention.shape)] == 0.0)  # exactly
        np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-6)
        assert np.all(attention >= 0.0)
    # One content token: the only distribution puts all mass on it, so nothing changes.
    np.testing.assert_array_equal(setup["trained"]["attention"][-1, :, 1], 1.0)
    assert setup["trained"]["max_jsd_within"][-1] == 0.0


def test_reported_statistics_match_numpy(setup):
    out, params, aux = setup["trained"], setup["params"], setup["aux"]
    hidden = np.asarray(aux["hidden"], np.float64)
    attention = out["attention"].astype(np.float64)
    base_attention = np.asarray(aux["attention"], np.float64)
    base_logits = np_decode(params, hidden, base_attention)
    np.testing.assert_allclose(base_logits, np.asarray(setup["logits"]), atol=ATOL)
    adv_logits = np_decode(params, hidden, np.swapaxes(attention, 0, 1))  # [K, batch, 1]
    np.testing.assert_allclose(out["probs"], np_sigmoid(adv_logits[..., 0]).T, atol=ATOL)
    diff = np_output_diff(adv_logits, base_logits).T  # [batch, K]
    np.testing.assert_allclose(out["output_diff"], diff, atol=ATOL)
    jsd = np_jsd(attention, base_attention[:, None])
    np.testing.assert_allclose(out["jsd"], jsd, atol=ATOL)
    # Candidates: the K adversaries within select_epsilon, and the base (JSD 0).
    within = out["output_diff"] <= setup["config"].select_epsilon
    expected = np.max(np.where(within, out["jsd"], 0.0), axis=1)
    np.testing.assert_allclose(out["max_jsd_within"], expected, atol=1e-7)
    assert np.all((out["max_jsd_within"] >= 0.0) & (out["max_jsd_within"] <= LN2))
    np.testing.assert_allclose(out["base_max_attention"], base_attention.max(-1), atol=1e-7)
    np.testing.assert_array_equal(out["base_class"], (np_sigmoid(base_logits[:, 0]) > 0.5).astype(np.int32))
    assert out["base_class"].dtype == np.int32


def test_select_epsilon_filters_candidates(setup):
    """max_jsd_within ignores a far adversary whose output moved too much."""
    out = setup["start"]  # at the random init some adversaries break the tolerance
    outside = out["output_diff"] > setup["config"].select_epsilon
    assert outside.any()
    for b in np.nonzero(outside.any(axis=1))[0]:
        assert out["max_jsd_within"][b] == pytest.approx(np.where(outside[b], 0.0, out["jsd"][b]).max())
        assert out["max_jsd_within"][b] < out["jsd"][b].max() or not outside[b, np.argmax(out["jsd"][b])]


def test_optimisation_finds_distant_attention_with_the_same_output(setup):
    start, trained, config = setup["start"], setup["trained"], setup["config"]
    content_rows = np.array(LENGTHS) > 3  # rows with more than one content token
    # The random init often moves the output; the optimised adversaries do not.
    assert np.mean(start["output_diff"][content_rows] > config.select_epsilon) > 0.2
    assert np.all(trained["output_diff"] <= config.select_epsilon)
    hinge = lambda d: np.sum(np.maximum(d - config.epsilon, 0.0))  # noqa: E731
    assert hinge(trained["output_diff"]) < 0.1 * hinge(start["output_diff"])
    # ... while staying far from the base attention: many more far adversaries within tolerance.
    def far_within(out):
        return np.sum((out["jsd"] >= 0.1) & (out["output_diff"] <= config.select_epsilon))

    assert far_within(trained) >= far_within(start) + 5
    assert np.mean(trained["jsd"][content_rows]) > 0.15
    assert np.all(trained["max_jsd_within"][content_rows] > 0.1)
    objective = trained["objective"]
    assert objective.shape == (STEPS + 1,)
    assert objective[-1] < 0.1 * objective[0]
    np.testing.assert_allclose(objective[0], start["objective"][-1], rtol=1e-6)  # same init


@pytest.mark.parametrize("num_classes", [1, 3])
def test_objective_matches_numpy(num_classes):
    model, params, batch = make_model(num_classes)
    logits, aux = jax.jit(model.apply)(params, batch)
    rng = np.random.default_rng(3)
    mask = np.asarray(aux["mask"])
    attention_logits = rng.normal(0.0, 2.0, (4, len(LENGTHS), SEQ))
    attention_logits = np.where(mask, attention_logits, 1e4)  # masked entries must be ignored
    oracle = functools.partial(np_objective, params, np.asarray(aux["hidden"], np.float64), mask,
                               np.asarray(aux["attention"], np.float64), np.asarray(logits, np.float64),
                               attention_logits)
    _, diff = oracle(0.0, 0.0)
    epsilon = float(np.median(diff[:, :-1]))  # half the hinges active, half not
    config = JWAdversaryConfig(num_adversaries=4, epsilon=epsilon, penalty=7.0)
    objective = jax.jit(lambda z: adversary.jw_objective(model, params, aux, logits, z, config))
    got = objective(jnp.asarray(attention_logits, jnp.float32))
    expected, _ = oracle(config.epsilon, config.penalty)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5, atol=1e-4)


def test_output_difference_binary_and_multiclass():
    rng = np.random.default_rng(4)
    for classes in (1, 3):
        logits, base = rng.normal(0.0, 2.0, (2, 5, classes)), rng.normal(0.0, 2.0, (5, classes))
        got = adversary.output_difference(jnp.asarray(logits, jnp.float32), jnp.asarray(base, jnp.float32))
        np.testing.assert_allclose(np.asarray(got), np_output_diff(logits, base), atol=1e-6)
    # Binary: the full |delta p| (not the legacy half); several classes: the L1 of the softmax.
    half = adversary.output_difference(jnp.zeros((1, 1)), jnp.full((1, 1), 100.0))
    np.testing.assert_allclose(np.asarray(half), 0.5, atol=1e-6)
    two = adversary.output_difference(jnp.array([[100.0, 0.0]]), jnp.array([[0.0, 100.0]]))
    np.testing.assert_allclose(np.asarray(two), 2.0, atol=1e-6)


def test_adversary_traces_once_per_shape(setup):
    calls = setup["calls"]
    before = calls["apply"]
    params = jax.tree.map(lambda x: x * jnp.float32(1.01), setup["params"])
    out = adversary.jw_adversary(setup["model"], params, make_batch(seed=5), setup["config"], jax.random.key(9))
    jax.block_until_ready(out)
    assert calls["apply"] == before  # same (model, config) and shapes: the cached jit, no retrace


def test_config_validation():
    with pytest.raises(ValueError, match="num_adversaries"):
        JWAdversaryConfig(num_adversaries=0)
    with pytest.raises(ValueError, match="steps"):
        JWAdversaryConfig(steps=-1)
    model = bilstm_classifier(BiLSTMConfig(vocab_size=50, embedding_dim=8, hidden_size=8, attention_hidden=8))
    with pytest.raises(ValueError, match="num_permutations"):
        adversary.permutation_test(model, {}, make_batch(), jax.random.key(0), num_permutations=0)


# ---------------------------------------------------------------------------- permutations


def test_within_mask_permutations_permute_valid_positions_only():
    rng = np.random.default_rng(0)
    mask = rng.random((5, 12)) < 0.6  # not contiguous
    mask[0] = False
    mask[1] = True
    index = np.asarray(jax.jit(adversary.within_mask_permutations, static_argnums=2)(
        jax.random.key(0), jnp.asarray(mask), 50))
    assert index.shape == (50, 5, 12) and index.dtype == np.int32
    positions = np.arange(12)
    for p in range(50):
        for b in range(5):
            np.testing.assert_array_equal(index[p, b, ~mask[b]], positions[~mask[b]])
            np.testing.assert_array_equal(np.sort(index[p, b, mask[b]]), positions[mask[b]])
    # Random, not the identity: the full row sees many distinct orders.
    assert len({tuple(index[p, 1]) for p in range(50)}) == 50


def test_permutation_test_matches_numpy(setup):
    model, params, batch, aux = setup["model"], setup["params"], setup["batch"], setup["aux"]
    num_permutations = NUM_PERMUTATIONS
    key = jax.random.key(7)
    out = jax.device_get(adversary.permutation_test(model, params, batch, key, num_permutations))
    mask = np.asarray(aux["mask"])
    index = np.asarray(adversary.within_mask_permutations(key, jnp.asarray(mask), num_permutations))
    base = np.asarray(aux["attention"], np.float64)
    permuted = np.take_along_axis(np.broadcast_to(base, index.shape), index, axis=-1)  # [perms, batch, seq]
    for p in range(num_permutations):
        assert np.all(permuted[p][~mask] == 0.0)
        for b in range(len(LENGTHS)):
            np.testing.assert_array_equal(np.sort(permuted[p, b, mask[b]]), np.sort(base[b, mask[b]]))
    hidden = np.asarray(aux["hidden"], np.float64)
    diff = np_output_diff(np_decode(params, hidden, permuted), np_decode(params, hidden, base))  # [perms, batch]
    np.testing.assert_allclose(out["output_diff"], diff.T, atol=ATOL)
    np.testing.assert_allclose(out["median_output_diff"], np.median(diff, axis=0), atol=ATOL)
    assert np.all(out["median_output_diff"][np.array(LENGTHS) > 4] > 1e-4)  # permuting does something here
    assert abs(out["median_output_diff"][-1]) < 1e-6  # one content token: only the identity exists
    np.testing.assert_allclose(out["base_max_attention"], base.max(-1), atol=1e-7)


def test_identity_permutation_changes_nothing(setup):
    model, params, aux, logits = setup["model"], setup["params"], setup["aux"], setup["logits"]
    identity = jnp.broadcast_to(aux["attention"], (3, *aux["attention"].shape))
    diff = adversary.output_difference(jax.jit(model.decode)(params, aux, identity), logits)
    np.testing.assert_allclose(np.asarray(diff), 0.0, atol=1e-6)


def test_permutation_test_traces_once_per_shape(setup):
    calls, model = setup["calls"], setup["model"]
    adversary.permutation_test(model, setup["params"], setup["batch"], jax.random.key(0), NUM_PERMUTATIONS)
    before = calls["apply"]
    out = adversary.permutation_test(model, setup["params"], make_batch(seed=2), jax.random.key(1), NUM_PERMUTATIONS)
    jax.block_until_ready(out)
    assert calls["apply"] == before
