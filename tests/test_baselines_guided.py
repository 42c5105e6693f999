"""baselines.guided: W&P's diagnostic MLP against a float64 numpy forward; guides; training with baselines.train."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from baselines.guided import GuidedMLPConfig, guide_data, guided_mlp
from baselines.models import content_mask, uniform_attention
from baselines.train import TrainConfig, default_loss, encode_split, train
from smat.data.vocab import build_vocabulary

LENGTHS = (9, 7, 5, 3, 8)  # <SOS> + content + <EOS>; the row of length 3 has one content token
SEQ = 10
VOCAB = 25


def _config(guide, **overrides):
    return GuidedMLPConfig(**{"vocab_size": VOCAB, "embedding_dim": 6, "hidden_size": 5, "attention_hidden": 3,
                              "guide": guide, **overrides})


def _batch(rng):
    lengths = np.asarray(LENGTHS)
    mask = (np.arange(SEQ)[None, :] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(4, VOCAB, (len(LENGTHS), SEQ)).astype(np.int32)
    ids[:, 0] = 2
    ids[np.arange(len(LENGTHS)), lengths - 1] = 3
    ids = np.where(mask > 0, ids, 0).astype(np.int32)
    # A guide with mass everywhere, specials and padding included: the model must zero those.
    guide = rng.random((len(LENGTHS), SEQ)).astype(np.float32)
    return {"input_ids": ids, "attention_mask": mask, "guide": guide}


@pytest.fixture(scope="module")
def batch():
    return {k: jnp.asarray(v) for k, v in _batch(np.random.default_rng(0)).items()}


def _content(batch):
    ids, mask = np.asarray(batch["input_ids"]), np.asarray(batch["attention_mask"]) > 0
    return mask & (ids != 2) & (ids != 3)


# ---------------------------------------------------------------- numpy oracles (float64)


def _f64(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def np_tokens(params, ids):
    p = _f64(params)
    return np.tanh(p["embedding"][ids] @ p["encoder"]["kernel"] + p["encoder"]["bias"])


def np_logits(params, hidden, attention):
    p = _f64(params)
    return np.einsum("bs,bsh->bh", attention, hidden) @ p["decoder"]["kernel"] + p["decoder"]["bias"]


def np_trained_attention(params, hidden, content):
    p = _f64(params)["attention"]
    scores = (np.tanh(hidden @ p["proj"]["kernel"] + p["proj"]["bias"]) @ p["score"]["kernel"])[..., 0]
    z = np.where(content, scores, -np.inf)
    e = np.where(content, np.exp(z - z.max(-1, keepdims=True)), 0.0)
    return e / e.sum(-1, keepdims=True), scores


# ------------------------------------------------------------------------- forward


def test_imposed_guide_is_honoured_and_matches_numpy(batch):
    model = guided_mlp(_config("imposed"))
    params = model.init(jax.random.key(0))
    assert set(params) == {"embedding", "encoder", "decoder"}
    assert params["encoder"]["kernel"].shape == (6, 5) and params["decoder"]["kernel"].shape == (5, 1)
    apply = jax.jit(model.apply)
    logits, aux = apply(params, batch)
    content = _content(batch)
    expected_attention = np.where(content, np.asarray(batch["guide"], np.float64), 0.0)
    # Used as given on the content tokens (not renormalised), exactly zero on <SOS>, <EOS> and padding.
    np.testing.assert_array_equal(np.asarray(aux["attention"]), expected_attention.astype(np.float32))
    hidden = np_tokens(params, np.asarray(batch["input_ids"]))
    np.testing.assert_allclose(aux["hidden"], hidden, atol=1e-6)
    np.testing.assert_allclose(logits, np_logits(params, hidden, expected_attention), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.decode(params, aux, aux["attention"]), logits, rtol=1e-6, atol=1e-6)
    # Another guide, other logits; mass moved onto specials and padding changes nothing.
    other, _ = apply(params, dict(batch, guide=batch["guide"][:, ::-1]))
    assert float(jnp.abs(other - logits).min()) > 1e-4
    outside, _ = apply(params, dict(batch, guide=jnp.where(jnp.asarray(content), batch["guide"], 5.0)))
    np.testing.assert_array_equal(outside, logits)
    with pytest.raises(ValueError, match="guide"):
        model.apply(params, {k: v for k, v in batch.items() if k != "guide"})


def test_uniform_guide_equals_imposing_uniform_attention(batch):
    uniform, imposed = guided_mlp(_config("uniform")), guided_mlp(_config("imposed"))
    params = uniform.init(jax.random.key(1))
    assert jax.tree.structure(params) == jax.tree.structure(imposed.init(jax.random.key(1)))
    logits, aux = uniform.apply(params, {k: v for k, v in batch.items() if k != "guide"})
    guide = uniform_attention(content_mask(batch))
    want, _ = imposed.apply(params, dict(batch, guide=guide))
    np.testing.assert_allclose(logits, want, rtol=1e-6, atol=1e-7)
    counts = _content(batch).sum(-1, keepdims=True)
    np.testing.assert_allclose(aux["attention"], np.where(_content(batch), 1.0 / counts, 0.0), rtol=1e-6)


def test_trained_guide_is_a_masked_distribution_and_matches_numpy(batch):
    model = guided_mlp(_config("trained"))
    params = model.init(jax.random.key(2))
    assert params["attention"]["proj"]["kernel"].shape == (5, 3)  # hidden -> attention_hidden
    assert params["attention"]["score"]["kernel"].shape == (3, 1) and "bias" not in params["attention"]["score"]
    logits, aux = jax.jit(model.apply)(params, batch)  # the batch's guide is ignored
    content = _content(batch)
    hidden = np_tokens(params, np.asarray(batch["input_ids"]))
    attention, scores = np_trained_attention(params, hidden, content)
    np.testing.assert_allclose(aux["scores"], scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(aux["attention"], attention, rtol=1e-5, atol=1e-7)
    assert np.all(np.asarray(aux["attention"])[~content] == 0)
    np.testing.assert_allclose(np.asarray(aux["attention"]).sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(logits, np_logits(params, hidden, attention), rtol=1e-5, atol=1e-6)
    # The attention learns: the loss reaches its parameters.
    grads = jax.grad(lambda p: default_loss(model, p, dict(batch, labels=jnp.asarray([1, 0, 1, 0, 1]),
                                                          valid=jnp.ones(5, jnp.float32)), 1.0))(params)
    assert float(jnp.abs(grads["attention"]["proj"]["kernel"]).max()) > 0
    # attention_override wins over the trained guide.
    override = jnp.asarray(np.where(content, 1.0, 0.0), jnp.float32)
    forced, forced_aux = model.apply(params, batch, attention_override=override)
    np.testing.assert_allclose(forced, np_logits(params, hidden, np.asarray(override, np.float64)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(forced_aux["attention"], override)
    assert "scores" not in forced_aux


def test_pretrained_embeddings_and_config_validation():
    table = np.arange(VOCAB * 6, dtype=np.float32).reshape(VOCAB, 6)
    params = guided_mlp(_config("uniform")).init(jax.random.key(0), table)
    np.testing.assert_array_equal(params["embedding"][1:], table[1:])
    assert float(jnp.abs(params["embedding"][0]).max()) == 0  # the pad row, as padding_idx=0
    with pytest.raises(ValueError, match="guide"):
        _config("frozen")
    with pytest.raises(ValueError, match="hidden_size"):
        _config("uniform", hidden_size=0)


# ---------------------------------------------------------------------------- data


def _keyed_data(rng, n, words):
    """The label is the class of the word at one random position; only a guide pointing there reveals it."""
    texts, labels, keys = [], [], []
    for _ in range(n):
        length = int(rng.integers(3, 9))
        tokens = rng.choice(words, length)
        key = int(rng.integers(0, length))
        texts.append(" ".join(tokens))
        labels.append(int(tokens[key] in words[:6]))
        keys.append(key + 1)  # after <SOS>
    return texts, np.asarray(labels), np.asarray(keys)


@pytest.fixture(scope="module")
def keyed():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    splits = {s: _keyed_data(rng, n, words) for s, n in (("train", 192), ("dev", 16), ("test", 96))}
    vocab = build_vocabulary(splits["train"][0])
    data = {s: encode_split(vocab, t, y) for s, (t, y, _) in splits.items()}
    guides = {}
    for split, (_, _, keys) in splits.items():
        guide = np.zeros((len(keys), data[split]["input_ids"].shape[1] - 1), np.float32)  # narrower: padded
        guide[np.arange(len(keys)), keys] = 1.0
        guides[split] = guide
    return guide_data(data, guides), len(vocab)


def test_guide_data_attaches_and_validates(keyed):
    data, _ = keyed
    n, width = data["test"]["input_ids"].shape
    assert data["test"]["guide"].shape == (n, width) and data["test"]["guide"].dtype == np.float32
    np.testing.assert_array_equal(data["test"]["guide"].sum(-1), 1.0)
    with pytest.raises(ValueError, match="split"):
        guide_data(data, {"valid": data["test"]["guide"]})
    with pytest.raises(ValueError, match="shape"):
        guide_data(data, {"test": data["test"]["guide"][:-1]})
    with pytest.raises(ValueError, match="non-negative"):
        guide_data(data, {"test": -data["test"]["guide"]})


# ------------------------------------------------------------------------ training


def test_trains_with_the_shared_loop_and_an_informative_guide_beats_uniform(keyed):
    data, vocab_size = keyed
    cfg = TrainConfig(epochs=3, batch_size=16, lr=2e-2, select_on="train")
    auc = {}
    for guide in ("imposed", "uniform"):
        model = guided_mlp(GuidedMLPConfig(vocab_size=vocab_size, embedding_dim=8, hidden_size=8, guide=guide))
        result = train(model, data, cfg, seeds=(0,), progress=False)
        auc[guide] = (float(result.metrics["train"]["auc"][0]), float(result.metrics["test"]["auc"][0]))
    # The guide at test time too: imposed on the key token the MLP learns the task ...
    assert auc["imposed"][0] > 0.95 and auc["imposed"][1] > 0.9, auc
    # ... which a uniform guide dilutes among the other, random, words.
    assert auc["uniform"][1] < auc["imposed"][1] - 0.15, auc
