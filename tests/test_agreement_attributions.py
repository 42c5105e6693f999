"""Attribution methods: completeness / summation-to-delta, hand oracles, sklearn, batch invariance.

Everything runs under ``jax.jit``: eager mode dispatches DeepLIFT's interpreter op by op
(seconds per call), and each test compiles as few functions as it can. Stochastic methods
get "rbg" keys where batch invariance is not tested: threefry's bit generator takes over
a second to compile on the CPU.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agreement import attributions as attr
from baselines.models import BiLSTMConfig, bilstm_classifier


@functools.cache
def _bilstm():
    config = BiLSTMConfig(vocab_size=20, embedding_dim=6, hidden_size=4, attention_hidden=3, num_classes=3)
    model = bilstm_classifier(config)
    params = jax.jit(model.init)(jax.random.key(0))  # one compile instead of one per eager op
    ids = jnp.asarray([[2, 5, 6, 7, 3, 0], [2, 8, 9, 3, 0, 0], [2, 11, 12, 13, 14, 3]], jnp.int32)
    batch = {"input_ids": ids, "attention_mask": (ids > 0).astype(jnp.int32)}
    return model, params, batch


def _normal(seed, shape, dtype=jnp.float32):
    """Test data from numpy: eager jax.random compiles a kernel per shape."""
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


def _mlp(seed, hidden=4, seq=5, classes=3, dtype=jnp.float32):
    w1 = _normal(seed, (hidden, 8), dtype)
    w2 = _normal(seed + 1, (seq * 8, classes), dtype) / 4
    b1 = _normal(seed + 2, (8,), dtype)

    def forward(e):
        z = e @ w1 + b1
        h = jnp.tanh(z) * jax.nn.sigmoid(z + 1) + jax.nn.relu(z) + jax.nn.gelu(z, approximate=False)
        h = (h - h.mean(-1, keepdims=True)) * jax.lax.rsqrt(h.var(-1, keepdims=True) + 1e-3)  # LayerNorm
        return h.reshape(e.shape[0], -1) @ w2

    return forward


def _gap(forward, x, reference, target, output="probability"):
    return attr.target_output(forward(x), target, output) - attr.target_output(forward(reference), target, output)


def _completeness(method, forward, emb, mask, baseline, **settings):
    """(sum of token scores, f(x) - f(reference)) per example, in one compiled function."""

    @jax.jit
    def run(e):
        target = attr.predicted_class(forward(e))
        reference = jnp.where(mask[..., None] > 0, jnp.broadcast_to(baseline, e.shape), e)
        scores = method(forward, e, mask, baseline=baseline, **settings)
        return scores, _gap(forward, e, reference, target)

    scores, gap = (np.asarray(v) for v in run(emb))
    assert np.all(np.abs(gap) > 1e-4)
    assert np.all(scores[..., np.asarray(mask) == 0] == 0)
    return scores.sum(-1), gap


def test_integrated_gradients_and_deeplift_completeness_on_a_bilstm():
    model, params, batch = _bilstm()
    mask, emb = batch["attention_mask"], model.embed(params, batch)
    base = _normal(1, (6,))  # a pad row that is not zero

    def forward(e):  # LSTM gate products, tanh attention and its masked softmax
        return model.apply(params, batch, embeddings=e)[0]

    def both(forward, e, mask, baseline):
        return jnp.stack([attr.integrated_gradients(forward, e, mask, baseline=baseline, steps=64),
                          attr.deeplift(forward, e, mask, baseline=baseline)])

    total, gap = _completeness(both, forward, emb, mask, base)
    np.testing.assert_allclose(total[0], gap, rtol=0.01)
    np.testing.assert_allclose(total[1], gap, rtol=1e-4, atol=2e-6)  # DeepLIFT: exact, not within 1%


def test_deeplift_summation_to_delta_is_exact_on_an_mlp():
    with jax.enable_x64(True):
        forward = _mlp(0, dtype=jnp.float64)
        x = _normal(1, (4, 5, 4), jnp.float64)
        base = 0.3 * _normal(2, (4,), jnp.float64)
        mask = jnp.ones((4, 5), jnp.int32).at[1, 3:].set(0)
        target = attr.predicted_class(forward(x))
        reference = jnp.where(mask[..., None] > 0, base, x)

        outputs = ("probability",)

        @jax.jit
        def run(x):
            exact = [attr.deeplift(forward, x, mask, target, baseline=base, output=o) for o in outputs]
            loose = attr.deeplift(forward, x, mask, target, baseline=base, product_rule="gradient")
            return exact, loose, [_gap(forward, x, reference, target, o) for o in outputs]

        exact, loose, gaps = run(x)
        for scores, gap in zip(exact, gaps):
            np.testing.assert_allclose(np.asarray(scores).sum(-1), gap, rtol=1e-10, atol=1e-12)
        assert np.all(np.asarray(exact[0])[1, 3:] == 0)
        # Captum's gradient rule on products is not exact on the same model.
        assert np.max(np.abs(np.asarray(loose).sum(-1) - gaps[0])) > 1e-6


def test_deeplift_rules_without_a_dedicated_case_keep_summation():
    with jax.enable_x64(True):
        w = _normal(3, (3, 3), jnp.float64)

        def forward(e):  # sort, cumprod, where on a varying condition, division, max of two varying values
            z = e @ w
            a = jnp.sort(z, axis=-1)[..., 0] + jnp.cumprod(jnp.tanh(z), axis=-1)[..., -1]
            b = jnp.where(z[..., 1] > 0, z[..., 1], 0.1 * z[..., 1]) / (1.5 + jnp.tanh(z[..., 2]))
            c = jnp.max(z, axis=-1) * jnp.maximum(z[..., 0], z[..., 2])
            return jnp.stack([(a + b).sum(-1), c.sum(-1)], axis=-1)

        x = _normal(4, (5, 4, 3), jnp.float64)
        base = -x[::-1]
        mask = jnp.ones((5, 4), jnp.int32)
        target = jnp.asarray([0, 1, 0, 1, 0], jnp.int32)
        scores = jax.jit(lambda x: attr.deeplift(forward, x, mask, target, baseline=base, output="logit"))(x)
        np.testing.assert_allclose(np.asarray(scores).sum(-1), _gap(forward, x, base, target, "logit"),
                                   rtol=1e-9, atol=1e-10)


@pytest.mark.slow
def test_deeplift_is_exact_on_a_transformer():
    from smat.models import TextConfig, build

    config = TextConfig(vocab_size=30, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16,
                        max_position_embeddings=8, head="bert", pooler=True, num_labels=3)
    encoder = build(config)
    params = jax.jit(encoder.init)(jax.random.key(6))
    leaves, treedef = jax.tree.flatten(params)
    params = treedef.unflatten([x + 0.3 * _normal(7 + i, x.shape) for i, x in enumerate(leaves)])
    ids = jnp.asarray([[2, 5, 6, 7, 3, 0], [2, 8, 9, 3, 0, 0], [2, 11, 12, 13, 14, 3]], jnp.int32)
    mask = (ids > 0).astype(jnp.int32)
    # LayerNorm, GELU, q.k and alpha.v products, the attention softmax, the pooler's tanh.
    total, gap = _completeness(attr.deeplift, lambda e: encoder.encode(params, e, mask).logits,
                               encoder.embed(params, ids), mask, encoder.embed(params, jnp.zeros_like(ids)))
    np.testing.assert_allclose(total, gap, rtol=1e-4, atol=2e-6)


def test_deeplift_rescale_rule_by_hand_and_captum_degenerate_form():
    w = jnp.asarray([0.5, -1.0, 2.0])

    def forward(e):  # one logit: p = sigmoid(z), z = sum_t w . e_t
        return jnp.sum(e @ w, axis=-1, keepdims=True)

    x = jnp.asarray([[[1.0, 0.0, 0.5], [0.2, 0.3, -0.1]]])
    base = jnp.asarray([0.1, 0.1, 0.1])
    mask = jnp.ones((1, 2), jnp.int32)
    target = jnp.ones((1,), jnp.int32)

    @jax.jit
    def run(x):
        logit_shap = attr.deep_shap(forward, x, mask, target, baselines=jnp.stack([base, -base]), output="logit")
        return (attr.deeplift(forward, x, mask, target, baseline=base),
                attr.gradient_x_input(forward, x, mask, target, baseline=base),
                attr.gradient_x_input(forward, x, mask, target),
                attr.gradient_x_input(forward, x, mask, target, reduce="l2"), logit_shap)

    deeplift, captum, plain, l2, logit_shap = (np.asarray(v)[0] for v in run(x))
    z, z0 = float(forward(x)[0, 0]), float(forward(jnp.broadcast_to(base, x.shape))[0, 0])
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    slope = sigmoid(z) * (1 - sigmoid(z))
    per_dim = np.asarray(w) * np.asarray(x - base)[0]
    np.testing.assert_allclose(deeplift, per_dim.sum(-1) * (sigmoid(z) - sigmoid(z0)) / (z - z0), rtol=1e-5)
    # Captum's DeepLift on court's models: no rule fires, so (x - b) * grad f(x).
    np.testing.assert_allclose(captum, per_dim.sum(-1) * slope, rtol=1e-5)
    np.testing.assert_allclose(plain, (np.asarray(w) * np.asarray(x)[0]).sum(-1) * slope, rtol=1e-5)
    np.testing.assert_allclose(l2, np.linalg.norm(np.asarray(w) * np.asarray(x)[0] * slope, axis=-1), rtol=1e-5)
    # On the logit (linear) DeepLIFT is (x - b) . w, so Deep-SHAP over {b, -b} averages to x . w.
    np.testing.assert_allclose(logit_shap, (np.asarray(w) * np.asarray(x)[0]).sum(-1), rtol=1e-5)


def test_deep_shap_with_identical_baselines_is_deeplift():
    forward = _mlp(8)
    x = _normal(9, (3, 5, 4))
    mask = jnp.ones((3, 5), jnp.int32)
    b1, b2 = jnp.full((4,), 0.2), jnp.full((4,), -0.4)

    @jax.jit
    def run(x):
        return (attr.deeplift(forward, x, mask, baseline=b1),
                attr.deep_shap(forward, x, mask, baselines=jnp.stack([b1, b1])))

    one, same = run(x)
    np.testing.assert_allclose(same, one, rtol=1e-5, atol=1e-7)


def test_deeplift_refuses_input_dependent_control_flow():
    def forward(e):
        return jax.lax.cond(e.sum() > 0, lambda v: v, lambda v: -v, e.sum((1, 2)))[:, None]

    with pytest.raises(NotImplementedError, match="cond"):
        attr.deeplift(forward, jnp.ones((1, 2, 2)), jnp.ones((1, 2)), output="logit")


def test_weighted_ridge_minimises_sklearns_ridge_objective():
    """Oracle: ``sklearn.linear_model.Ridge(alpha).fit(x, y, sample_weight=w)`` minimises
    sum_n w_n (y_n - c - x_n . beta)^2 + alpha |beta|^2 (intercept unpenalised); here that
    objective is solved as an augmented least-squares problem (no centring)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (2, 60, 5)).astype(np.float64)
    y = rng.normal(size=(2, 60))
    w = rng.uniform(0.2, 1.0, (2, 60))
    alpha = 1.0
    with jax.enable_x64(True):
        coef, intercept = jax.jit(attr.weighted_ridge)(jnp.asarray(x), jnp.asarray(y), jnp.asarray(w), alpha)
    for i in range(2):
        design = np.sqrt(w[i])[:, None] * np.concatenate([np.ones((60, 1)), x[i]], axis=1)
        penalty = np.concatenate([np.zeros((5, 1)), np.sqrt(alpha) * np.eye(5)], axis=1)
        solution = np.linalg.lstsq(np.concatenate([design, penalty]),
                                   np.concatenate([np.sqrt(w[i]) * y[i], np.zeros(5)]), rcond=None)[0]
        np.testing.assert_allclose(np.asarray(coef[i]), solution[1:], rtol=1e-8)
        np.testing.assert_allclose(float(intercept[i]), solution[0], rtol=1e-8)


def test_cosine_kernel_matches_captums_formula_on_flattened_inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 3)).astype(np.float32)
    base = rng.normal(size=(2, 4, 3)).astype(np.float32)
    keep = rng.integers(0, 2, (5, 2, 4)).astype(bool)
    feature = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
    got = np.asarray(jax.jit(attr.cosine_kernel_weights)(jnp.asarray(x), jnp.asarray(base), jnp.asarray(keep),
                                                         jnp.asarray(feature)))
    for s in range(5):
        for b in range(2):
            f = feature[b]
            original = x[b][f].ravel()
            perturbed = np.where(keep[s, b][:, None], x[b], base[b])[f].ravel()
            cos = original @ perturbed / (np.linalg.norm(original) * np.linalg.norm(perturbed))
            np.testing.assert_allclose(got[s, b], np.exp(-((1 - cos) ** 2) / 2), rtol=1e-5)


def test_lime_recovers_the_coefficients_of_a_linear_model():
    coefs = jnp.asarray([[1.0, -2.0, 0.5, 3.0, 0.0, 9.0], [0.3, 0.0, -1.0, 2.0, 1.0, 9.0]])

    def forward(e):  # logit = 0.7 + sum_t c_t e_t: linear in the binary "token kept" features
        return (0.7 + jnp.sum(coefs * e[..., 0], axis=-1))[:, None]

    x = jnp.ones((2, 6, 1))
    mask = jnp.asarray([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 0]], jnp.int32)  # the last token is not a feature
    scores = jax.jit(lambda e, k: attr.lime(forward, e, mask, jnp.ones((2,), jnp.int32), key=k, output="logit"))(
        x, jax.random.key(0, impl="rbg"))
    np.testing.assert_allclose(np.asarray(scores)[:, :5], np.asarray(coefs)[:, :5], rtol=0.02, atol=0.02)
    assert np.all(np.asarray(scores)[:, 5] == 0)


def test_leave_one_out_matches_a_loop():
    forward = _mlp(10)
    x = _normal(11, (2, 5, 4))
    mask = jnp.asarray([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], jnp.int32)
    base = jnp.full((4,), 0.5)
    target = attr.predicted_class(forward(x))

    @jax.jit
    def run(x):
        dropped = [attr.target_output(forward(x.at[:, t].set(base)), target) for t in range(5)]
        return (attr.leave_one_out(forward, x, mask, baseline=base, positions_per_batch=2),
                attr.target_output(forward(x), target), jnp.stack(dropped, -1))

    got, full, dropped = (np.asarray(v) for v in run(x))
    np.testing.assert_allclose(got, np.where(np.asarray(mask) > 0, full[:, None] - dropped, 0.0), rtol=1e-5,
                               atol=1e-7)


def test_gradient_shap_is_exact_on_a_linear_model_and_keyed():
    w = jnp.asarray([0.5, -1.0, 2.0])

    def forward(e):
        return jnp.sum(e @ w, axis=-1)[:, None] * jnp.asarray([1.0, -1.0])

    x = _normal(12, (2, 4, 3))
    mask = jnp.asarray([[1, 1, 1, 1], [1, 1, 0, 0]], jnp.int32)
    base = jnp.full((3,), 0.25)
    target = jnp.zeros((2,), jnp.int32)

    @functools.partial(jax.jit, static_argnums=1)
    def run(key, stdev):
        return attr.gradient_shap(forward, x, mask, target, key=key, baselines=jnp.stack([base, base]),
                                  stdev=stdev, output="logit")

    expected = jnp.where(mask > 0, (x - base) @ w, 0.0)
    np.testing.assert_allclose(run(jax.random.key(0, impl="rbg"), 0.0), expected, rtol=1e-5, atol=1e-6)
    noisy = [np.asarray(run(jax.random.key(k, impl="rbg"), 0.1)) for k in (1, 1, 2)]
    np.testing.assert_array_equal(noisy[0], noisy[1])
    assert not np.allclose(noisy[0], noisy[2])
    assert np.all(noisy[0][np.asarray(mask) == 0] == 0)
    with pytest.raises(ValueError, match="key"):
        attr.gradient_shap(forward, x, mask, target)


def _pooling_model():
    """A masked additive-attention pooling classifier with one logit: cheap to compile."""
    w_attn, w_out, w_in = (_normal(20 + i, s) for i, s in enumerate([(5,), (5, 1), (4, 5)]))
    ids = jnp.asarray([[3, 1, 4, 1, 5, 0], [2, 7, 0, 0, 0, 0], [1, 8, 2, 8, 1, 8]], jnp.int32)
    mask = (ids > 0).astype(jnp.int32)
    table = _normal(21, (10, 4))

    def model_fn(params, mask, e):
        h = jnp.tanh(e @ params["in"])
        alpha = jax.nn.softmax(jnp.where(mask > 0, h @ params["attn"], -jnp.inf), axis=-1)
        return jnp.einsum("bs,bsh->bh", alpha, h) @ params["out"]

    return model_fn, {"in": w_in, "attn": w_attn, "out": w_out}, mask, table[ids]


INVARIANCE_SETTINGS = {
    "integrated_gradients": {"steps": 8},
    "leave_one_out": {},
    "deeplift": {"baseline": jnp.full((4,), 0.1)},
    "gradient_shap": {"n_samples": 3},  # noise draws are tested on the linear model
    "lime": {"n_samples": 50},
}


def test_a_jitted_batch_equals_one_instance_at_a_time():
    model_fn, params, mask, emb = _pooling_model()

    @jax.jit  # all methods in one function: two compiles (batch of 3, batch of 1) instead of ten
    def run(mask, emb, keys):
        forward = functools.partial(model_fn, params, mask)
        return {name: attr.get(name, **settings)(forward, emb, mask, key=keys)
                for name, settings in INVARIANCE_SETTINGS.items()}

    keys = jax.random.split(jax.random.key(3), 3)  # threefry: its draws do not change under vmap (rbg's do)
    together = run(mask, emb, keys)
    alone = [run(mask[i:i + 1], emb[i:i + 1], keys[i:i + 1]) for i in range(3)]
    for name in INVARIANCE_SETTINGS:
        scores = np.asarray(together[name])
        for i in range(3):
            np.testing.assert_allclose(scores[i], np.asarray(alone[i][name])[0], rtol=1e-4, atol=1e-6,
                                       err_msg=name)
        assert np.all(scores[np.asarray(mask) == 0] == 0), name
        assert np.all(np.any(scores != 0, axis=-1)), name
    # jit_method is the same computation for one model function.
    one = attr.jit_method("deeplift", model_fn, **INVARIANCE_SETTINGS["deeplift"])(params, mask, emb, mask)
    np.testing.assert_allclose(one, together["deeplift"], rtol=1e-6, atol=1e-7)


def test_target_defaults_to_the_prediction_and_registry():
    forward = _mlp(13)
    x = _normal(14, (3, 5, 4))
    mask = jnp.ones((3, 5), jnp.int32)
    target = attr.predicted_class(forward(x))

    @jax.jit
    def run(x):
        return attr.gradient_x_input(forward, x, mask), attr.gradient_x_input(forward, x, mask, target)

    default, explicit = run(x)
    np.testing.assert_array_equal(default, explicit)
    per_dim = jax.eval_shape(lambda x: attr.get("integrated_gradients", steps=4, reduce="none")(forward, x, mask), x)
    assert per_dim.shape == (3, 5, 4)
    assert set(attr.available()) == {"lime", "integrated_gradients", "deeplift", "gradient_shap", "deep_shap",
                                     "gradient_x_input", "leave_one_out"}
    with pytest.raises(KeyError, match="available"):
        attr.get("shapley")
    with pytest.raises(ValueError, match="output"):
        attr.target_output(forward(x), target, "odds")
