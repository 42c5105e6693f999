"""baselines.adversary: W&P's model-consistent adversary against float64 numpy oracles, Table 4/5 and training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from baselines import adversary
from baselines.guided import GuidedMLPConfig, guided_mlp
from baselines.models import BiLSTMConfig, Model, bilstm_classifier
from baselines.train import TrainConfig, predict, train
from toy_text import toy_splits

LENGTHS = (9, 8, 6, 4, 3, 7)  # <SOS> + content + <EOS>
SEQ = 10
LN2 = float(np.log(2.0))

# Wiegreffe & Pinter (2019), Table 5: lambda -> (F1, TVD, JSD); Table 4 picks the starred lambda.
TABLE5 = {
    "anemia": {0: (.936, .008, .056), 1e-4: (.937, .009, .090), 2e-4: (.938, .010, .194),
               3.5e-4: (.936, .014, .387), 5e-4: (.942, .017, .481), 1e-3: (.938, .030, .576),
               2e-3: (.895, .068, .666), 4e-3: (.888, .074, .690), 5e-3: (.875, .079, .692),
               1e-2: (.872, .086, .693)},
    "diabetes": {0: (.779, .012, .098), 1e-5: (.769, .011, .098), 2e-5: (.770, .011, .098),
                 4e-5: (.780, .012, .162), 5e-5: (.781, .012, .209), 1e-4: (.781, .016, .385),
                 2e-4: (.775, .015, .409), 5e-4: (.759, .029, .494), 1e-3: (.690, .051, .646),
                 5e-3: (.645, .067, .693), 1e-2: (.643, .069, .693)},
    "sst": {0: (.816, .032, .075), 1e-5: (.822, .030, .042), 5e-5: (.824, .031, .080), 1e-4: (.823, .032, .064),
            5e-4: (.828, .031, .100), 5.2e-4: (.827, .036, .150), 5.25e-4: (.823, .036, .514),
            5.35e-4: (.814, .039, .420), 5.5e-4: (.809, .040, .505), 6e-4: (.813, .039, .513),
            7.5e-4: (.811, .037, .518), 1e-3: (.815, .038, .623), 1e-2: (.821, .036, .624),
            0.1: (.811, .047, .653), 0.5: (.799, .061, .652), 1: (.819, .039, .624)},
    "imdb": {0: (.906, .011, .043), 1e-4: (.907, .011, .027), 2e-4: (.906, .012, .059), 4e-4: (.906, .015, .202),
             5e-4: (.905, .016, .141), 7e-4: (.902, .015, .309), 8e-4: (.906, .014, .405),
             1e-3: (.905, .022, .615), 5e-3: (.888, .038, .691), 1e-2: (.885, .039, .691)},
}
TABLE4 = {"diabetes": 2e-4, "anemia": 5e-4, "sst": 5.25e-4, "imdb": 8e-4}


# ---------------------------------------------------------------- numpy oracles (float64)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_kl(p, q, mask, eps=1e-30):
    active = mask & (p > 0)
    safe_p = np.where(active, p, 1.0)
    safe_q = np.where(active, np.maximum(q, eps), 1.0)
    return np.sum(np.where(active, p * (np.log(safe_p) - np.log(safe_q)), 0.0), axis=-1)


def np_jsd(p, q):
    m = (p + q) / 2

    def kl_to_m(a):
        safe = np.where(a > 0, a, 1.0)
        return np.sum(np.where(a > 0, a * np.log(safe / np.where(a > 0, m, 1.0)), 0.0), axis=-1)

    return (kl_to_m(p) + kl_to_m(q)) / 2


def np_consistent_loss(logits, attention, mask, base_probs, base_attention, labels, valid, pos_weight, lam, *,
                       legacy, weighting):
    tvd = np.abs(np_sigmoid(logits[:, 0]) - base_probs) * (0.5 if legacy else 1.0)
    per_instance = (tvd - lam * np_kl(attention, base_attention, mask)) * valid
    weights = (labels * pos_weight + (1 - labels)) * valid
    if weighting == "none":
        return per_instance.sum()
    if weighting == "instance":
        return (weights * per_instance).sum()
    return per_instance.sum() * weights.sum()  # the reference: (loss * w).mean(1).sum(), loss a batch sum


# ---------------------------------------------------------------------------- fixtures


def _batch(rng):
    lengths = np.asarray(LENGTHS)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(4, 30, (len(LENGTHS), SEQ)).astype(np.int32)
    ids[:, 0] = 2
    ids[np.arange(len(LENGTHS)), lengths - 1] = 3
    ids = np.where(mask > 0, ids, 0).astype(np.int32)
    content = (mask > 0) & (ids != 2) & (ids != 3)
    base_logits = rng.normal(size=(len(LENGTHS), SEQ)) * 2
    base = np.where(content, np.exp(base_logits), 0.0)
    base = base / base.sum(-1, keepdims=True)
    return {"input_ids": ids, "attention_mask": mask,
            "labels": np.asarray([1, 0, 1, 1, 0, 0], np.int32),
            "valid": np.asarray([1, 1, 1, 1, 1, 0], np.float32),  # the last row is batch padding
            "base_probs": rng.uniform(0.05, 0.95, len(LENGTHS)).astype(np.float32),
            "target_attention": base.astype(np.float32)}


@pytest.fixture(scope="module")
def setup():
    model = bilstm_classifier(BiLSTMConfig(vocab_size=30, embedding_dim=6, hidden_size=5, attention_hidden=4))
    params = model.init(jax.random.key(0))
    batch = {k: jnp.asarray(v) for k, v in _batch(np.random.default_rng(0)).items()}
    logits, aux = jax.jit(model.apply)(params, batch)
    return model, params, batch, (logits, aux)


def _fixed(outputs):
    """A stand-in model whose apply returns given (logits, aux): the loss alone, without recompiling the BiLSTM."""
    return Model(None, lambda params, batch: outputs, None, None, None)


def _np(x):
    return np.asarray(x, np.float64)


@pytest.fixture(scope="module")
def toy():
    data, vocab = toy_splits({"train": 192, "dev": 16, "test": 48})
    return data, len(vocab)


# ------------------------------------------------------------------------------- loss


@pytest.mark.parametrize("legacy", [True, False])
def test_consistent_loss_matches_numpy(setup, legacy):
    _, _, batch, (logits, aux) = setup
    lam, pos_weight = 0.3, 1.7
    for weighting in adversary.WEIGHTINGS:
        loss = adversary.consistent_adversary_loss(lam, legacy_half_tvd=legacy, weighting=weighting)
        got = loss(_fixed((logits, aux)), None, batch, pos_weight)
        expected = np_consistent_loss(_np(logits), _np(aux["attention"]), np.asarray(aux["mask"]),
                                      _np(batch["base_probs"]), _np(batch["target_attention"]), _np(batch["labels"]),
                                      _np(batch["valid"]), pos_weight, lam, legacy=legacy, weighting=weighting)
        np.testing.assert_allclose(float(got), expected, rtol=2e-5, atol=1e-6, err_msg=weighting)


def test_lam_zero_is_pure_tvd_and_the_padding_row_is_ignored(setup):
    _, _, batch, (logits, aux) = setup
    model = _fixed((logits, aux))
    got = adversary.consistent_adversary_loss(0.0, weighting="none")(model, None, batch, 1.0)
    p = np_sigmoid(_np(logits[:, 0]))
    np.testing.assert_allclose(float(got), np.sum(0.5 * np.abs(p - _np(batch["base_probs"]))[:5]), rtol=1e-5)
    # lam = 0 with the reference weighting: that TVD sum times the valid rows' class weights.
    weighted = adversary.consistent_adversary_loss(0.0)(model, None, batch, 2.0)
    np.testing.assert_allclose(float(weighted), float(got) * (2.0 * 3 + 2), rtol=1e-6)  # labels 1, 0, 1, 1, 0
    # A padding row's content must not matter.
    changed = dict(batch, base_probs=batch["base_probs"].at[5].set(0.0),
                   target_attention=batch["target_attention"].at[5].set(0.0))
    for weighting in adversary.WEIGHTINGS:
        loss = adversary.consistent_adversary_loss(0.7, weighting=weighting)
        assert float(loss(model, None, changed, 2.0)) == float(loss(model, None, batch, 2.0))


def test_loss_through_the_bilstm_has_finite_gradients_with_zero_base_weights(setup):
    """The real model end to end, jitted. Masked positions (and a base weight of exactly 0 on a real
    token) give finite values and gradients; the reference's kl_div(log 0) is NaN on a recent PyTorch."""
    model, params, batch, (logits, aux) = setup  # the outputs do not depend on the targets
    base = np.asarray(batch["target_attention"]).copy()
    base[0, 1] = 0.0
    base[0] /= base[0].sum()
    batch = dict(batch, target_attention=jnp.asarray(base))
    loss = adversary.consistent_adversary_loss(0.5)
    value, grads = jax.jit(jax.value_and_grad(loss, argnums=1), static_argnums=0)(model, params, batch, 2.0)
    expected = np_consistent_loss(_np(logits), _np(aux["attention"]), np.asarray(aux["mask"]),
                                  _np(batch["base_probs"]), base.astype(np.float64), _np(batch["labels"]),
                                  _np(batch["valid"]), 2.0, 0.5, legacy=True, weighting="reference")
    np.testing.assert_allclose(float(value), expected, rtol=2e-5)
    assert np.isfinite(float(value))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads["attention"]["proj"]["kernel"]).max()) > 0  # the KL reaches the attention


def test_options_are_validated(setup):
    _, _, batch, (logits, aux) = setup
    with pytest.raises(ValueError, match="lam"):
        adversary.consistent_adversary_loss(-1e-3)
    with pytest.raises(ValueError, match="weighting"):
        adversary.consistent_adversary_loss(1e-3, weighting="mean")
    three = jnp.concatenate([logits, logits, logits], axis=-1)
    with pytest.raises(ValueError, match="binary"):
        adversary.consistent_adversary_loss(1e-3)(_fixed((three, aux)), None, batch, 1.0)


# ---------------------------------------------------------------- summary, grids, Table 4


def test_binary_tvd_legacy_is_half_the_true_tvd():
    p, q = jnp.asarray([0.9, 0.2, 0.5]), jnp.asarray([0.6, 0.7, 0.5])
    np.testing.assert_allclose(adversary.binary_tvd(p, q), [0.15, 0.25, 0.0], atol=1e-7)
    np.testing.assert_allclose(adversary.binary_tvd(p, q, legacy_half_tvd=False), [0.3, 0.5, 0.0], atol=1e-7)


def test_summary_matches_numpy_with_a_seed_axis():
    rng = np.random.default_rng(3)
    mask = np.arange(7)[None, :] < np.asarray([7, 5, 3, 6])[:, None]
    attn = np.where(mask, rng.random((2, 4, 7)), 0.0)
    attn /= attn.sum(-1, keepdims=True)
    base = np.where(mask, rng.random((4, 7)), 0.0)
    base /= base.sum(-1, keepdims=True)
    probs, base_probs = rng.random((2, 4, 1)), rng.random((4, 1))
    out = adversary.adversary_summary(probs, attn, base_probs, base, mask)
    tvd = 0.5 * np.abs(probs[..., 0] - base_probs[:, 0])
    jsd = np_jsd(attn, base[None])
    np.testing.assert_allclose(out["tvd"], tvd, atol=1e-6)
    np.testing.assert_allclose(out["jsd"], jsd, atol=1e-6)
    np.testing.assert_allclose(out["mean_tvd"], tvd.mean(-1), atol=1e-6)
    np.testing.assert_allclose(out["mean_jsd"], jsd.mean(-1), atol=1e-6)
    full = adversary.adversary_summary(probs[0, :, 0], attn[0], base_probs[:, 0], base, legacy_half_tvd=False)
    np.testing.assert_allclose(full["tvd"], 2 * tvd[0], atol=1e-6)
    assert out["jsd"].max() <= LN2 + 1e-6


def test_lambda_grids_are_table5():
    assert set(adversary.WP_LAMBDA_GRIDS) == set(TABLE5)
    for name, grid in adversary.WP_LAMBDA_GRIDS.items():
        np.testing.assert_allclose(grid, sorted(TABLE5[name]))


@pytest.mark.parametrize("name", sorted(TABLE4))
def test_selection_rule_recovers_table4_from_table5(name):
    lams = sorted(TABLE5[name])
    f1 = [TABLE5[name][lam][0] for lam in lams]
    jsd = [TABLE5[name][lam][2] for lam in lams]
    assert lams[adversary.select_adversary(f1, jsd)] == TABLE4[name]
    assert adversary.select_adversary(f1, jsd, min_jsd=0.7) is None
    assert adversary.select_adversary(f1, jsd, min_jsd=-1.0) == int(np.argmax(f1))


# ------------------------------------------------------------------------------ data


def test_adversary_data_attaches_and_validates(toy):
    data, _ = toy
    n, width = data["train"]["input_ids"].shape
    probs = np.linspace(0.1, 0.9, n, dtype=np.float32)[:, None]
    attn = np.full((n, width - 1), 0.5, np.float32)
    out = adversary.adversary_data(data, {"train": probs}, {"train": attn})
    assert out["train"]["base_probs"].shape == (n,) and out["train"]["target_attention"].shape == (n, width)
    assert np.all(out["train"]["target_attention"][:, -1] == 0)
    assert "base_probs" not in out["test"] and "base_probs" not in data["train"]  # the input is not mutated
    with pytest.raises(ValueError, match="splits"):
        adversary.adversary_data(data, {"train": probs}, {"test": attn})
    with pytest.raises(ValueError, match="shape"):
        adversary.adversary_data(data, {"train": probs[:-1]}, {"train": attn})
    with pytest.raises(ValueError, match="non-negative"):
        adversary.adversary_data(data, {"train": probs}, {"train": -attn})


# -------------------------------------------------------------------------- training


def _summary(model, params, data, split="test"):
    probs, attn = predict(model, params, data[split])
    return adversary.adversary_summary(probs, attn, data[split]["base_probs"], data[split]["target_attention"])


def test_training_the_adversary_diverts_attention_with_lambda(toy):
    """Through :func:`baselines.train.train`. The loss needs only logits, attention and mask from
    ``model.apply``; a trained-attention MLP stands in for the BiLSTM to keep compilation short."""
    data, vocab_size = toy
    model = guided_mlp(GuidedMLPConfig(vocab_size=vocab_size, embedding_dim=8, hidden_size=8, attention_hidden=4))
    # A confident base model whose attention prefers some words, given as data: the adversary sees only
    # its outputs.
    word_scores = 3 * np.random.default_rng(5).normal(size=vocab_size)
    probs, attn = {}, {}
    for split, arrays in data.items():
        content = (arrays["attention_mask"] > 0) & (arrays["input_ids"] != 2) & (arrays["input_ids"] != 3)
        scores = np.where(content, np.exp(word_scores[arrays["input_ids"]]), 0.0)
        probs[split] = np.where(arrays["labels"] > 0, 0.9, 0.1)
        attn[split] = scores / scores.sum(-1, keepdims=True)
    adv_data = adversary.adversary_data(data, probs, attn)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e-2, select_on="train", select_metric="loss")
    seed = 11
    start = _summary(model, jax.vmap(lambda k: model.init(k))(jnp.stack([jax.random.key(seed)])), adv_data)
    results = {lam: train(model, adv_data, cfg, seeds=(seed,), progress=False,
                          loss=adversary.consistent_adversary_loss(lam)) for lam in (0.0, 1.0)}
    end = {lam: _summary(model, r.params, adv_data) for lam, r in results.items()}
    losses = {lam: [h["loss"][0] for h in r.history] for lam, r in results.items()}
    # lam = 0 matches the base outputs only: its loss (a weighted TVD) and the test TVD go down.
    assert losses[0.0][-1] < losses[0.0][0]
    assert end[0.0]["mean_tvd"][0] < start["mean_tvd"][0] - 0.05, (start, end)
    # lam > 0 rewards divergence: the loss goes negative and the attention moves away from the base's.
    assert losses[1.0][-1] < losses[1.0][0] and losses[1.0][-1] < 0
    assert end[1.0]["mean_jsd"][0] > start["mean_jsd"][0] + 0.05, (start, end)
    assert end[1.0]["mean_jsd"][0] > end[0.0]["mean_jsd"][0] + 0.05, end
    assert end[1.0]["mean_jsd"][0] <= LN2 + 1e-6
    # The selected epoch is the one with the lowest loss on the train split.
    for r in results.values():
        assert r.best_epoch[0] == int(np.argmin([h["train/loss"][0] for h in r.history]))
