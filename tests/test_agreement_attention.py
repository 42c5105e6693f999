"""Attention rollout on a hand-computed example; attention flow against an LP max-flow oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

from agreement import attention


def _hand_example():
    """3 tokens, 2 layers, 2 heads, plus a padded copy with a 4th (pad) token.

    Layer 1 heads average to A1 = [[1, 0, 0], [.5, .5, 0], [0, .5, .5]],
    so A1' = .5 A1 + .5 I = [[1, 0, 0], [.25, .75, 0], [0, .25, .75]].
    Layer 2: A2 = [[0, .5, .5], [1, 0, 0], [0, 0, 1]],
    so A2' = [[.5, .25, .25], [.5, .5, 0], [0, 0, 1]].
    Rollout A2' A1': row 0 = .5 [1,0,0] + .25 [.25,.75,0] + .25 [0,.25,.75] = [.5625, .25, .1875];
    row 1 = .5 [1,0,0] + .5 [.25,.75,0] = [.625, .375, 0]; row 2 = [0, .25, .75].
    """
    head_a = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    head_b = np.eye(3, dtype=np.float32)
    layer2 = np.array([[0, .5, .5], [1, 0, 0], [0, 0, 1]], np.float32)
    plain = np.stack([np.stack([head_a, head_b]), np.stack([layer2, layer2])])  # [layers, heads, 3, 3]
    padded = np.zeros((2, 2, 4, 4), np.float32)
    padded[:, :, :3, :3] = plain
    padded[:, :, 3, :] = 0.25  # the pad query row attends anywhere: must not matter
    attentions = np.stack([padded, padded], axis=1)  # [layers, batch=2, heads, 4, 4]
    attentions[:, 0, :, :, :] = 0.0
    attentions[:, 0, :, :3, :3] = plain  # row 0: same matrices; its 4th token is real but unreachable
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], np.int32)
    return attentions, mask


EXPECTED = np.array([[.5625, .25, .1875], [.625, .375, 0], [0, .25, .75]])


def test_rollout_matches_the_hand_computation():
    attentions, mask = _hand_example()
    matrix = np.asarray(jax.jit(attention.rollout_matrix)(jnp.asarray(attentions), jnp.asarray(mask)))
    np.testing.assert_allclose(matrix[1, :3, :3], EXPECTED, atol=1e-7)
    assert np.all(matrix[1, 3] == 0) and np.all(matrix[1, :, 3] == 0)  # padding
    cls = np.asarray(attention.rollout(jnp.asarray(attentions), jnp.asarray(mask)))
    np.testing.assert_allclose(cls[1], [.5625, .25, .1875, 0], atol=1e-7)
    # Row 0's 4th token is real with an all-zero attention row: the residual makes it self-attend.
    np.testing.assert_allclose(cls[0], [.5625, .25, .1875, 0], atol=1e-7)
    np.testing.assert_allclose(cls.sum(-1), 1.0, atol=1e-6)


def test_residual_attention_is_court_normalisation_of_a_plus_identity():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 2, 4, 5, 5))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    got = np.asarray(attention.residual_attention(jnp.asarray(probs, jnp.float32)))
    a_plus_i = probs.mean(2) + np.eye(5)
    np.testing.assert_allclose(got, a_plus_i / a_plus_i.sum(-1, keepdims=True), atol=1e-6)


def _lp_max_flow(layers, source, sink, tokens):
    """Max-flow on the layered graph as a linear programme (an oracle independent of networkx)."""
    num_layers = layers.shape[0]
    edges = [((l, i), (l - 1, j), layers[l - 1, i, j]) for l in range(1, num_layers + 1)
             for i in tokens for j in tokens if layers[l - 1, i, j] > 0]
    nodes = sorted({e[0] for e in edges} | {e[1] for e in edges})
    inner = [v for v in nodes if v not in (source, sink)]
    a_eq = np.zeros((len(inner), len(edges)))
    for col, (u, v, _) in enumerate(edges):
        if u in inner:
            a_eq[inner.index(u), col] -= 1
        if v in inner:
            a_eq[inner.index(v), col] += 1
    cost = np.array([-1.0 if u == source else (1.0 if v == source else 0.0) for u, v, _ in edges])
    res = linprog(cost, A_eq=a_eq, b_eq=np.zeros(len(inner)), bounds=[(0, c) for _, _, c in edges],
                  method="highs")
    assert res.status == 0
    return -res.fun


@pytest.mark.parametrize("solver", ["scipy", "networkx"])
def test_attention_flow_matches_an_lp_max_flow(solver):
    rng = np.random.default_rng(1)
    num_layers, batch, heads, seq = 2, 2, 2, 4
    logits = rng.normal(size=(num_layers, batch, heads, seq, seq))
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], np.int32)
    logits = np.where(mask[None, :, None, None, :] > 0, logits, -np.inf)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    flows = attention.attention_flow(jnp.asarray(probs, jnp.float32), jnp.asarray(mask), normalize=False,
                                     solver=solver)
    layers = np.asarray(attention.residual_attention(jnp.asarray(probs, jnp.float32), jnp.asarray(mask)),
                        np.float64)
    for b in range(batch):
        tokens = list(np.flatnonzero(mask[b]))
        expected = [_lp_max_flow(layers[:, b], (num_layers, 0), (0, j), tokens) for j in tokens]
        np.testing.assert_allclose(flows[b, tokens], expected, rtol=1e-6, atol=1e-9)
        assert np.all(flows[b, len(tokens):] == 0)
    normalized = attention.attention_flow(jnp.asarray(probs, jnp.float32), jnp.asarray(mask), solver=solver)
    np.testing.assert_allclose(normalized.sum(-1), 1.0)
    np.testing.assert_allclose(normalized, flows / flows.sum(-1, keepdims=True))


def test_scipy_and_networkx_flows_agree_on_sparse_attention():
    """Peaked attention (many near-zero capacities, exact zeros from padding) over 3 layers:
    the int32-rounded Dinic flows equal networkx's float preflow-push ones to 2^-31 per cut edge."""
    rng = np.random.default_rng(2)
    num_layers, batch, heads, seq = 3, 3, 2, 9
    logits = 4.0 * rng.normal(size=(num_layers, batch, heads, seq, seq))
    mask = (np.arange(seq)[None, :] < np.array([[9], [6], [2]])).astype(np.int32)
    logits = np.where(mask[None, :, None, None, :] > 0, logits, -np.inf)
    probs = jnp.asarray(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), jnp.float32)
    fast = attention.attention_flow(probs, jnp.asarray(mask), normalize=False)
    slow = attention.attention_flow(probs, jnp.asarray(mask), normalize=False, solver="networkx")
    np.testing.assert_allclose(fast, slow, rtol=0, atol=seq * 2.0**-31)
    assert np.all(fast[mask == 0] == 0) and np.all(fast[mask == 1] > 0)


def test_flow_rejects_unknown_solvers():
    probs = jnp.full((1, 1, 1, 2, 2), 0.5)
    with pytest.raises(ValueError, match="solver"):
        attention.attention_flow(probs, solver="lp")
    with pytest.raises(ValueError, match="networkx"):
        attention.attention_flow(probs, flow_func=object())


def test_single_layer_flow_is_the_cls_row():
    attentions, mask = _hand_example()
    one = attentions[1:]  # layer 2 only: A2' row 0 = [.5, .25, .25]
    flow = attention.attention_flow(jnp.asarray(one), jnp.asarray(mask))
    np.testing.assert_allclose(flow[1], [.5, .25, .25, 0])
    np.testing.assert_allclose(flow[1], np.asarray(attention.rollout(jnp.asarray(one), jnp.asarray(mask)))[1],
                               atol=1e-7)


def test_rollout_of_a_real_encoder_is_a_distribution():
    from smat.models import TextConfig, build

    config = TextConfig(vocab_size=30, hidden_size=16, num_layers=3, num_heads=2, intermediate_size=32,
                        max_position_embeddings=16)
    encoder = build(config)
    ids = jnp.asarray(np.random.default_rng(0).integers(1, 30, (2, 6)), jnp.int32)
    mask = jnp.asarray([[1] * 6, [1] * 4 + [0] * 2], jnp.int32)

    @jax.jit  # one compile: eager init and encode would compile every op on its own
    def attentions(key):
        params = encoder.init(key)
        return encoder.encode(params, encoder.embed(params, ids), mask, output_attentions=True).attentions

    attn = attentions(jax.random.key(0))
    for query in (0, 2):
        scores = np.asarray(attention.rollout(attn, mask, query=query))
        np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
        assert np.all(scores[1, 4:] == 0) and np.all(scores >= 0)
