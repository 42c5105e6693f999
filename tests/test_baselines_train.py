"""The baselines' training loop: loss, optimiser, metrics against numpy / sklearn; vmapped seeds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from baselines.models import BiLSTMConfig, bilstm_classifier
from baselines.train import TrainConfig, binary_metrics, classification_loss, encode_split, optimizer, train
from smat.data.vocab import build_vocabulary
from toy_text import toy_splits


@pytest.fixture(scope="module")
def toy():
    data, vocab = toy_splits({"train": 70, "dev": 24, "test": 24})
    config = BiLSTMConfig(vocab_size=len(vocab), embedding_dim=6, hidden_size=5, attention_hidden=4)
    return data, config


def test_encode_split_wraps_with_sos_eos_and_pads():
    vocab = build_vocabulary(["a b", "b c"])
    arrays = encode_split(vocab, ["a b", "c"], [1, 0])
    np.testing.assert_array_equal(arrays["input_ids"], [[2, 4, 5, 3], [2, 6, 3, 0]])
    np.testing.assert_array_equal(arrays["attention_mask"], [[1, 1, 1, 1], [1, 1, 1, 0]])
    assert arrays["lengths"].tolist() == [4, 3] and arrays["labels"].tolist() == [1, 0]


def test_loss_is_the_weighted_bce_summed_over_the_batch():
    logits = np.array([[0.3], [-1.2], [2.0], [0.5]], np.float32)
    labels = np.array([1, 0, 1, 0])
    valid = np.array([1, 1, 1, 0], np.float32)
    pos_weight = 0.7
    z, y = logits[:, 0].astype(np.float64), labels.astype(np.float64)
    bce = -(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))
    expected = np.sum(bce * (y * pos_weight + (1 - y)) * valid)
    got = classification_loss(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(valid), pos_weight)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_coupled_weight_decay_spares_the_attention(toy):
    _, config = toy
    model = bilstm_classifier(config)
    params = model.init(jax.random.key(0))
    opt = optimizer(TrainConfig(weight_decay=0.1))
    zero = jax.tree.map(jnp.zeros_like, params)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
        updates, _ = opt.update(zero, opt.init(params), params)
    # With zero gradients only the L2 term moves parameters: the attention must stay put.
    assert all(float(jnp.abs(u).max()) == 0.0 for u in jax.tree.leaves(updates["attention"]))
    assert float(jnp.abs(updates["decoder"]["kernel"]).max()) > 0
    assert float(jnp.abs(updates["encoder"]["forward"]["input_kernel"]).max()) > 0


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 40)
    probs = rng.random((3, 40))
    metrics = binary_metrics(probs, labels)
    for s in range(3):
        np.testing.assert_allclose(metrics["auc"][s], roc_auc_score(labels, probs[s]), rtol=1e-6)
        np.testing.assert_allclose(metrics["f1"][s], f1_score(labels, probs[s] > 0.5), rtol=1e-9)
        np.testing.assert_allclose(metrics["accuracy"][s], np.mean((probs[s] > 0.5) == labels))


def test_vmapped_seeds_equal_sequential_training_and_learn(toy):
    data, config = toy
    model = bilstm_classifier(config)
    cfg = TrainConfig(epochs=2, batch_size=8, bucket_step=16)  # one width: one compilation per run
    together = train(model, data, cfg, seeds=(3, 7), progress=False)
    for i, seed in enumerate((3, 7)):
        alone = train(model, data, cfg, seeds=(seed,), progress=False)
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(together.params)):
            np.testing.assert_allclose(a[0], b[i], atol=1e-5)
        assert alone.best_epoch[0] == together.best_epoch[i]
        np.testing.assert_allclose([h["loss"][0] for h in alone.history],
                                   [h["loss"][i] for h in together.history], rtol=1e-5)
    assert together.metrics["train"]["auc"].min() > 0.9  # the toy labels are learnable
    assert not np.allclose(jax.tree.leaves(together.params)[0][0], jax.tree.leaves(together.params)[0][1])


def test_training_resumes_from_its_checkpoint(toy, tmp_path):
    data, config = toy
    model = bilstm_classifier(BiLSTMConfig(**{**config.__dict__, "attention": "uniform"}))
    full = train(model, data, TrainConfig(epochs=2, batch_size=8, select_on="test"), seeds=(1,), progress=False)
    path = tmp_path / "run.npz"
    train(model, data, TrainConfig(epochs=1, batch_size=8, select_on="test"), seeds=(1,), checkpoint=path,
          progress=False)
    resumed = train(model, data, TrainConfig(epochs=2, batch_size=8, select_on="test"), seeds=(1,),
                    checkpoint=path, progress=False)
    assert len(resumed.history) == 2
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_selection_settings_are_validated():
    with pytest.raises(ValueError, match="select_on"):
        TrainConfig(select_on="valid")
    with pytest.raises(ValueError, match="select_metric"):
        TrainConfig(select_metric="f1")


def test_pair_models_train_on_flat_pairs_and_select_on_accuracy():
    """Three classes (which of two words is in the hypothesis, or neither) from flat pairs."""
    from baselines.models import flat_pair
    from baselines.train import encode_pairs

    rng = np.random.default_rng(0)

    def split(n):
        labels = rng.integers(0, 3, n)
        premises = [" ".join(rng.choice(["a", "b", "c"], 4)) for _ in labels]
        hypotheses = [" ".join([["x", "y", "z"][y], *rng.choice(["a", "b"], 2)]) for y in labels]
        return premises, hypotheses, labels

    raw = {s: split(n) for s, n in (("train", 192), ("dev", 48), ("test", 48))}
    vocab = build_vocabulary(raw["train"][0] + raw["train"][1])
    data = {s: encode_pairs(vocab, *v) for s, v in raw.items()}
    assert data["train"]["segment_ids"].max() == 1 and data["train"]["input_ids"].shape[0] == 192
    model = flat_pair(bilstm_classifier(BiLSTMConfig(vocab_size=len(vocab), embedding_dim=8, hidden_size=8,
                                                     attention_hidden=8, num_classes=3, pair=True)))
    result = train(model, data, TrainConfig(lr=1e-2, batch_size=16, epochs=4, select_metric="accuracy"), seeds=(0,),
                   progress=False)
    assert set(result.metrics["test"]) == {"accuracy"}
    assert result.metrics["test"]["accuracy"][0] > 0.9
