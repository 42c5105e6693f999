"""Explainers against numpy oracles; IG completeness on a real (tiny, random) encoder."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smat import explainers
from smat.explainers import ExplainerInputs
from smat.models import TextConfig, build


def _softmax_masked(x, mask):
    x = np.where(mask > 0, x, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def scores_and_mask():
    rng = np.random.default_rng(0)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)
    scores = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)  # batch, layers, heads, seq
    return scores, mask


@pytest.mark.parametrize("normalizer", ["sparsemax", "softmax", "entmax15", "none"])
def test_uniform_init_is_softmax_of_mean_logits(scores_and_mask, normalizer):
    scores, mask = scores_and_mask
    e = explainers.get("attention", num_layers=3, num_heads=4, normalizer=normalizer)
    params = e.init(jax.random.key(0))
    expl, aux = e.apply(params, ExplainerInputs(mask=jnp.asarray(mask), head_scores=jnp.asarray(scores)))
    want = _softmax_masked(scores.mean(axis=(1, 2)), mask)
    np.testing.assert_allclose(np.asarray(expl), want, atol=1e-6)
    np.testing.assert_allclose(np.asarray(aux["head_coeffs"]).sum(), 1.0 if normalizer != "none" else 1.0, atol=1e-6)
    assert np.all(np.asarray(expl)[mask == 0] == 0)


def test_last_layer_static_explainer_reads_only_the_last_layer(scores_and_mask):
    scores, mask = scores_and_mask
    e = explainers.get("attention_last_layer", num_layers=3, num_heads=4)
    assert not e.trainable and e.init()["head_coeffs"].shape == (4,)
    expl, _ = e.apply(e.init(), ExplainerInputs(mask=jnp.asarray(mask), head_scores=jnp.asarray(scores)))
    np.testing.assert_allclose(np.asarray(expl), _softmax_masked(scores[:, -1].mean(1), mask), atol=1e-6)


def test_sparse_coefficients_select_heads(scores_and_mask):
    scores, mask = scores_and_mask
    e = explainers.get("attention", num_layers=3, num_heads=4, normalizer="sparsemax")
    phi = jnp.zeros(12).at[5].set(10.0)  # sparsemax puts all mass on head 5 = layer 1, head 1
    expl, aux = e.apply({"head_coeffs": phi}, ExplainerInputs(mask=jnp.asarray(mask), head_scores=jnp.asarray(scores)))
    assert np.asarray(aux["head_coeffs"]).tolist() == [0.0] * 5 + [1.0] + [0.0] * 6
    np.testing.assert_allclose(np.asarray(expl), _softmax_masked(scores[:, 1, 1], mask), atol=1e-6)


def _linear_inputs(seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(2, 5, 3)).astype(np.float32)
    w = rng.normal(size=(3, 4)).astype(np.float32)  # hidden -> classes
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], np.int32)

    def output_fn(e):  # sum over tokens of a linear map: gradient = w[:, class] everywhere
        return jnp.einsum("bth,hc->bc", e, jnp.asarray(w))

    return emb, w, mask, output_fn


def test_gradient_x_input_and_l2_on_a_linear_model():
    emb, w, mask, output_fn = _linear_inputs()
    inputs = ExplainerInputs(mask=jnp.asarray(mask), embeddings=jnp.asarray(emb), output_fn=output_fn)
    target = np.einsum("bth,hc->bc", emb, w).argmax(-1)
    grad = w[:, target].T[:, None, :]  # [batch, 1, hidden]
    gxi, aux = explainers.get("gradient_x_input").apply({}, inputs)
    np.testing.assert_allclose(np.asarray(aux["logits"]), (grad * emb).sum(-1) / 0.1, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(gxi), _softmax_masked((grad * emb).sum(-1) / 0.1, mask), atol=1e-6)
    l2, aux = explainers.get("gradient_l2").apply({}, inputs)
    np.testing.assert_allclose(np.asarray(aux["logits"]), np.broadcast_to(np.linalg.norm(grad, axis=-1), (2, 5)),
                               rtol=1e-5)


def test_legacy_reference_ig_reproduces_the_reference_formula():
    emb, w, mask, _ = _linear_inputs(1)

    def output_fn(e):  # quadratic, so the path points matter
        return jnp.einsum("bth,hc->bc", e * e, jnp.asarray(w))

    steps = 10
    e = explainers.get("integrated_gradients", steps=steps, legacy_reference_path=True)
    _, aux = e.apply({}, ExplainerInputs(mask=jnp.asarray(mask), embeddings=jnp.asarray(emb), output_fn=output_fn))
    target = np.einsum("bth,hc->bc", emb * emb, w).argmax(-1)
    wt = w[:, target].T[:, None, :]
    weights = np.full(steps, 1 / steps)
    weights[[0, -1]] = 1 / (2 * steps)
    total = sum(wi * 2 * (emb * (i / (steps - 1)) * wi) * wt for i, wi in enumerate(weights))
    np.testing.assert_allclose(np.asarray(aux["attributions"]), (total * emb).sum(-1), rtol=1e-4)


def test_integrated_gradients_completeness_on_an_encoder():
    config = TextConfig(vocab_size=60, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                        max_position_embeddings=16, head="bert", pooler=True, num_labels=3)
    encoder = build(config)
    params = encoder.init(jax.random.key(0))
    # Non-zero biases: with the all-zero biases of init, LayerNorm makes f(alpha * x) flat in
    # alpha > 0 with a jump at 0, a path no quadrature can integrate (and no trained model has).
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    params = treedef.unflatten([x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])
    ids = jnp.asarray(np.random.default_rng(0).integers(1, 60, (3, 7)), jnp.int32)
    mask = jnp.asarray([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4], jnp.int32)
    emb = encoder.embed(params, ids)

    def output_fn(e):
        return encoder.encode(params, e, mask).logits

    e = explainers.get("integrated_gradients", steps=64)
    _, aux = e.apply({}, ExplainerInputs(mask=mask, embeddings=emb, output_fn=output_fn))
    logits = np.asarray(output_fn(emb))
    target = logits.argmax(-1)
    rows = np.arange(3)
    gap = logits[rows, target] - np.asarray(output_fn(jnp.zeros_like(emb)))[rows, target]
    total = np.asarray(aux["attributions"]).sum(-1)  # pads included: IG attributes to every input
    np.testing.assert_allclose(total, gap, rtol=0.01, atol=1e-4)


def test_registry_lists_and_rejects():
    assert set(explainers.available()) >= {"attention", "attention_all_layers", "attention_last_layer",
                                           "gradient_l2", "gradient_x_input", "integrated_gradients"}
    with pytest.raises(KeyError, match="available"):
        explainers.get("lime")
    with pytest.raises(ValueError, match="head_scores"):
        explainers.get("attention", num_layers=1, num_heads=1).apply(
            {"head_coeffs": jnp.ones(1)}, ExplainerInputs(mask=jnp.ones((1, 2))))
