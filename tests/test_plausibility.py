"""Plausibility metrics against independent oracles: scikit-learn's ROC-AUC and float64 numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from smat import explainers
from smat.plausibility import candidate_explanations, mean_auc, roc_auc, sweep_coefficients, word_scores


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 12), st.integers(1, 4))
def test_roc_auc_equals_sklearn_per_row_with_ties_and_padding(seed, n, levels):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels + 1, (6, n)).astype(np.float32)  # few levels: many ties
    labels = rng.integers(0, 2, (6, n))
    mask = rng.random((6, n)) > 0.25
    auc, defined = jax.jit(roc_auc)(scores, labels, mask)
    for i in range(6):
        y, s = labels[i][mask[i]], scores[i][mask[i]]
        if len(set(y.tolist())) == 2:
            assert defined[i]
            np.testing.assert_allclose(auc[i], roc_auc_score(y, s), rtol=1e-6)
        else:
            assert not defined[i] and np.isnan(auc[i])


def test_roc_auc_ignores_padded_scores_whatever_their_value():
    scores = jnp.array([[0.2, 0.9, 0.5, 100.0, -100.0]])
    labels = jnp.array([[0, 1, 0, 0, 1]])
    mask = jnp.array([[1, 1, 1, 0, 0]])
    auc, defined = roc_auc(scores, labels, mask)
    assert bool(defined[0]) and float(auc[0]) == 1.0


def test_mean_auc_skips_undefined_examples_and_reports_nan_when_none():
    means, count = mean_auc(np.array([[0.5, 1.0], [np.nan, np.nan], [1.0, 0.0]]),
                            np.array([[True], [False], [True]]))
    np.testing.assert_allclose(means, [0.75, 0.5])
    assert count.tolist() == [2, 2]
    means, count = mean_auc(np.array([[np.nan]]), np.array([[False]]))
    assert np.isnan(means[0]) and count[0] == 0


def test_word_scores_sum_pieces_per_text_of_a_pair():
    # [CLS] a a' b [SEP] c c' [SEP] pad
    word_ids = jnp.array([[-1, 0, 0, 1, -1, 0, 0, -1, -1]])
    sequence_ids = jnp.array([[-1, 0, 0, 0, -1, 1, 1, -1, -1]])
    pieces = jnp.array([[9.0, 0.1, 0.2, 0.3, 9.0, 0.4, 0.5, 9.0, 9.0]])
    src, src_present = word_scores(pieces, word_ids, 4, sequence_ids=sequence_ids, sequence=0)
    tgt, tgt_present = word_scores(pieces, word_ids, 4, sequence_ids=sequence_ids, sequence=1)
    np.testing.assert_allclose(src[0], [0.3, 0.3, 0, 0], atol=1e-7)
    np.testing.assert_allclose(tgt[0], [0.9, 0, 0, 0], atol=1e-7)
    assert src_present[0].tolist() == [True, True, False, False]
    assert tgt_present[0].tolist() == [True, False, False, False]
    # Several explanations per example at once give the per-explanation results.
    rows, _ = word_scores(jnp.stack([pieces, 2 * pieces], axis=1), word_ids, 4, sequence_ids=sequence_ids)
    np.testing.assert_allclose(rows[0, 1], 2 * src[0], atol=1e-7)


def test_sweep_candidates_are_single_heads_and_single_layers():
    layers, heads, seq = 3, 2, 5
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2, layers, heads, seq))
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    names, coeffs = sweep_coefficients(layers, heads)
    assert names[:layers] == ["layer 0", "layer 1", "layer 2"] and names[layers + 3] == "head 1.1"
    expl = np.asarray(candidate_explanations(jnp.asarray(scores, jnp.float32), jnp.asarray(mask), coeffs))
    assert expl.shape == (2, layers + layers * heads, seq)

    def softmax(z, m):  # float64 oracle
        z = np.where(m > 0, z, -np.inf)
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    np.testing.assert_allclose(expl[:, layers + 3], softmax(scores[:, 1, 1], mask), atol=1e-6)
    np.testing.assert_allclose(expl[:, 2], softmax(scores[:, 2].mean(1), mask), atol=1e-6)
    # The last-layer candidate is the static "attention, last layer" explainer.
    last = explainers.get("attention_last_layer", num_layers=layers, num_heads=heads)
    static, _ = last.apply(last.init(), explainers.ExplainerInputs(mask=jnp.asarray(mask),
                                                                   head_scores=jnp.asarray(scores, jnp.float32)))
    np.testing.assert_allclose(expl[:, layers - 1], static, atol=1e-6)
    assert (expl.transpose(0, 2, 1)[mask == 0] == 0).all()


@pytest.mark.parametrize("bad", ["cifar", "movies:demo"])
def test_unknown_plausibility_tables_are_refused(bad):
    from experiments.smat.configs import get_plausibility_config

    with pytest.raises(ValueError, match="unknown"):
        get_plausibility_config(bad)
