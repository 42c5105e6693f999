"""Agreement metrics against scipy and brute-force numpy oracles."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from agreement import metrics


def _rows(seed=0, batch=40, n=12):
    """Integer-valued float rows (many ties), random right-padded lengths incl. 0, 1, 2, and constant rows."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, (batch, n)).astype(np.float32)
    b = rng.integers(0, 4, (batch, n)).astype(np.float32)
    b[::5] = rng.normal(size=(len(b[::5]), n)).astype(np.float32)  # some rows without ties
    lengths = rng.integers(0, n + 1, batch)
    lengths[:3] = [0, 1, 2]
    mask = np.arange(n)[None] < lengths[:, None]
    a[3], b[4] = 2.0, 0.5  # constant rows
    a[5, ::2] = 7.0  # constant on the valid entries only for short rows is also covered randomly
    return a, b, mask


def _scipy(fn, a, b, mask):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x, y, m in zip(a, b, mask):
            if m.sum() < 2:
                out.append(np.nan)
                continue
            out.append(float(fn(x[m].astype(np.float64), y[m].astype(np.float64))[0]))
    return np.asarray(out)


@pytest.mark.parametrize("name, oracle", [("kendall_tau", stats.kendalltau), ("spearman", stats.spearmanr),
                                          ("pearson", stats.pearsonr)])
def test_correlations_match_scipy_with_ties_masks_and_constant_rows(name, oracle):
    a, b, mask = _rows()
    a[6, 0], b[7, 1] = np.nan, np.nan  # a NaN score: undefined, as scipy propagates it ...
    mask[6:8, :3] = True
    a[8, :4], b[8, :4], b[8, -1] = [0, 1, 2, 3], [1, 0, 3, 2], np.nan  # ... but not where it is masked out
    mask[8] = np.arange(mask.shape[1]) < 4
    result = jax.jit(getattr(metrics, name))(jnp.asarray(a), jnp.asarray(b), jnp.asarray(mask))
    expected = _scipy(oracle, a, b, mask)
    value = np.asarray(result.value)
    np.testing.assert_array_equal(np.isnan(value), np.isnan(expected))
    np.testing.assert_array_equal(np.asarray(result.defined), ~np.isnan(expected))
    assert int(result.undefined) == int(np.isnan(expected).sum()) >= 7  # lengths 0, 1, constant and NaN rows
    assert np.isnan(value[6:8]).all() and not np.isnan(value[8])
    np.testing.assert_allclose(value, expected, atol=1e-6, equal_nan=True)


def test_kendall_tau_is_exact_on_float_scores_and_works_on_leading_dims():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 3, 30)).astype(np.float32)
    b = (a + rng.normal(size=a.shape)).astype(np.float32)
    b[..., :5] = b[..., :1]  # ties in b only
    tau = metrics.kendall_tau(jnp.asarray(a), jnp.asarray(b))
    expected = _scipy(stats.kendalltau, a.reshape(6, 30), b.reshape(6, 30), np.ones((6, 30), bool))
    assert tau.value.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(tau.value).ravel(), expected, atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 8, 13])
@pytest.mark.parametrize("block", [None, 1, 7])
def test_kendall_tau_visits_every_pair_once_for_odd_and_even_widths_and_any_block(n, block):
    a, b, mask = _rows(seed=n, batch=24, n=n)
    b[1::2] = np.round(a[1::2] + np.random.default_rng(n).normal(size=(12, n)), 0)  # correlated, tied rows
    # a mask shared by two "methods" broadcasts against [batch, 2, n] scores, as in the study
    a2, b2 = np.stack([a, b], 1), np.stack([b, a], 1)
    tau = jax.jit(metrics.kendall_tau, static_argnames="block")(
        jnp.asarray(a2), jnp.asarray(b2), jnp.asarray(mask[:, None]), block=block)
    expected = _scipy(stats.kendalltau, a, b, mask)
    assert tau.value.shape == (24, 2)
    for k in range(2):  # tau is symmetric in its arguments
        np.testing.assert_allclose(np.asarray(tau.value[:, k]), expected, atol=1e-6, equal_nan=True)
    assert int(tau.undefined) == 2 * int(np.isnan(expected).sum())


def test_kendall_tau_of_empty_inputs_is_undefined():
    for shape in ((0, 5), (3, 0), (0, 0)):
        tau = metrics.kendall_tau(jnp.zeros(shape), jnp.zeros(shape))
        assert tau.value.shape == shape[:-1] and int(tau.undefined) == shape[0]


def test_average_ranks_match_rankdata():
    a, _, mask = _rows(seed=2)
    ranks = np.asarray(metrics.average_ranks(jnp.asarray(a), jnp.asarray(mask)))
    for r, x, m in zip(ranks, a, mask):
        np.testing.assert_allclose(r[m], stats.rankdata(x[m]))
        assert np.all(r[~m] == 0)


def _top_k_oracle(x, m, k):
    idx = [i for i in np.argsort(-np.abs(x), kind="stable") if m[i]]
    return idx[:k]


def test_top_k_agreements_match_their_definitions():
    rng = np.random.default_rng(3)
    batch, n, k = 30, 9, 4
    a = rng.normal(size=(batch, n)).astype(np.float32)
    b = a + 0.7 * rng.normal(size=(batch, n)).astype(np.float32)
    b[::3] = -b[::3]
    lengths = rng.integers(1, n + 1, batch)
    mask = np.arange(n)[None] < lengths[:, None]
    args = (jnp.asarray(a), jnp.asarray(b))
    got = {name: np.asarray(jax.jit(getattr(metrics, name), static_argnums=2)(*args, k, jnp.asarray(mask)))
           for name in ("feature_agreement", "rank_agreement", "sign_agreement", "signed_rank_agreement")}
    for row in range(batch):
        ta, tb = _top_k_oracle(a[row], mask[row], k), _top_k_oracle(b[row], mask[row], k)
        size = len(ta)
        same_sign = {i for i in range(n) if np.sign(a[row, i]) == np.sign(b[row, i])}
        np.testing.assert_allclose(got["feature_agreement"][row], len(set(ta) & set(tb)) / size)
        np.testing.assert_allclose(got["rank_agreement"][row], sum(x == y for x, y in zip(ta, tb)) / size)
        np.testing.assert_allclose(got["sign_agreement"][row], len(set(ta) & set(tb) & same_sign) / size)
        np.testing.assert_allclose(got["signed_rank_agreement"][row],
                                   sum(x == y and x in same_sign for x, y in zip(ta, tb)) / size)


def test_top_k_agreements_by_hand():
    a = jnp.asarray([[3.0, -2.0, 1.0, 0.5]])
    b = jnp.asarray([[-2.5, 3.0, 0.1, 1.0]])
    # top-2 by magnitude: a -> [0, 1], b -> [1, 0]; same set, no rank matches; signs agree only on 1.
    assert float(metrics.feature_agreement(a, b, 2)[0]) == 1.0
    assert float(metrics.rank_agreement(a, b, 2)[0]) == 0.0
    assert float(metrics.sign_agreement(a, b, 2)[0]) == 0.0  # 0: (+, -), 1: (-, +)
    assert float(metrics.signed_rank_agreement(a, b, 3)[0]) == 0.0
    assert float(metrics.feature_agreement(a, b, 3)[0]) == pytest.approx(2 / 3)  # {0,1,2} vs {1,0,3}


def test_pairwise_rank_agreement_matches_brute_force():
    a, b, mask = _rows(seed=4)
    got = np.asarray(metrics.pairwise_rank_agreement(jnp.asarray(a - 1.5), jnp.asarray(b), jnp.asarray(mask)))
    for row in range(len(a)):
        idx = np.flatnonzero(mask[row])
        pairs = [(i, j) for p, i in enumerate(idx) for j in idx[p + 1:]]
        if not pairs:
            assert np.isnan(got[row])
            continue
        x, y = np.abs(a[row] - 1.5), np.abs(b[row])
        agree = sum(np.sign(x[i] - x[j]) == np.sign(y[i] - y[j]) for i, j in pairs)
        np.testing.assert_allclose(got[row], agree / len(pairs), rtol=1e-6)


def test_summarize_skips_and_counts_nan():
    out = metrics.summarize([0.5, np.nan, 0.1, 0.3])
    assert out["count"] == 3 and out["undefined"] == 1
    np.testing.assert_allclose(out["mean"], 0.3)
    np.testing.assert_allclose(out["std"], np.std([0.5, 0.1, 0.3], ddof=1))
