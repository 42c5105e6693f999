"""smat.simplex against float64 numpy / scipy oracles, simplex laws, and order-2 gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.spatial.distance
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jax.test_util import check_grads

from smat import simplex

NORMALIZERS = {"softmax": simplex.softmax, "sparsemax": simplex.sparsemax, "entmax15": simplex.entmax15}
# Jitted once per shape: eager mode would compile every primitive separately (slow tests).
JITTED = {name: jax.jit(fn, static_argnames="axis") for name, fn in NORMALIZERS.items()}
KL = jax.jit(simplex.kl, static_argnames=("eps", "axis"))
JSD = jax.jit(simplex.jsd, static_argnames="axis")
TVD = jax.jit(simplex.tvd, static_argnames=("legacy_binary", "axis"))
HYPOTHESIS = settings(max_examples=40, deadline=None)
LN2 = math.log(2)


# ---------------------------------------------------------------- numpy oracles (float64)


def sparsemax_ref(z: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the simplex, sort-based (Duchi et al., 2008, Fig. 1)."""
    z = np.asarray(z, np.float64)
    u = np.sort(z)[::-1]
    cssv = np.cumsum(u) - 1.0
    rho = np.nonzero(u - cssv / np.arange(1, z.size + 1) > 0)[0][-1]
    return np.maximum(z - cssv[rho] / (rho + 1.0), 0.0)


def entmax15_threshold_ref(z: np.ndarray) -> float:
    """tau with sum_i max(z_i/2 - tau, 0)^2 = 1, by bisection (no sorting, no closed form)."""
    half = np.asarray(z, np.float64) / 2
    lo, hi = half.max() - 1.0, half.max()  # mass(lo) >= 1 >= mass(hi) = 0
    for _ in range(200):
        mid = (lo + hi) / 2
        if np.sum(np.maximum(half - mid, 0.0) ** 2) >= 1.0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def entmax15_ref(z: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(z, np.float64) / 2 - entmax15_threshold_ref(z), 0.0) ** 2


def rowwise(ref, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Applies a 1-d oracle to every row's valid entries; masked entries and empty rows get 0."""
    x = np.asarray(x, np.float64)
    mask = np.ones(x.shape, bool) if mask is None else np.broadcast_to(mask, x.shape)
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape[:-1]):
        if mask[index].any():
            out[index][mask[index]] = ref(x[index][mask[index]])
    return out


def softmax_ref(z):
    return scipy.special.softmax(np.asarray(z, np.float64))


REFS = {"softmax": softmax_ref, "sparsemax": sparsemax_ref, "entmax15": entmax15_ref}


# ------------------------------------------------------------------------ strategies


@st.composite
def scores_and_mask(draw, dtype=np.float32, max_abs=10.0):
    """A [rows, n] score array (ties are likely: hypothesis reuses values) and a mask."""
    rows, n = draw(st.integers(1, 3)), draw(st.integers(1, 7))
    width = 32 if dtype == np.float32 else 64
    x = draw(hnp.arrays(dtype, (rows, n), elements=st.floats(-max_abs, max_abs, width=width)))
    mask = draw(hnp.arrays(np.bool_, (rows, n)))
    return x, mask


@st.composite
def distribution_pair(draw, n_max=6):
    """Two float64 distributions [n] with exact zeros likely, and a mask with >= 1 valid entry."""
    n = draw(st.integers(2, n_max))
    # No subnormals: XLA on CPU flushes them to zero, numpy and scipy do not.
    weights = st.one_of(st.just(0.0), st.floats(1e-6, 1.0))
    p = draw(hnp.arrays(np.float64, n, elements=weights))
    q = draw(hnp.arrays(np.float64, n, elements=weights))
    mask = draw(hnp.arrays(np.bool_, n))
    mask[draw(st.integers(0, n - 1))] = True

    def normalize(a):
        a = np.where(mask, a, 0.0)
        return a / a.sum() if a.sum() > 0 else mask / mask.sum()

    return normalize(p), normalize(q), mask


# -------------------------------------------------------------- against the oracles


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizers_match_float64_references_in_float32(name):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(4, 3, 9)) * rng.choice([0.3, 1.0, 4.0], size=(4, 3, 1))).astype(np.float32)
    mask = rng.random((4, 3, 9)) < 0.8
    out = JITTED[name](jnp.asarray(x), mask=jnp.asarray(mask))
    assert out.dtype == jnp.float32 and out.shape == x.shape
    np.testing.assert_allclose(np.asarray(out), rowwise(REFS[name], x, mask), atol=2e-6)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalizers_match_float64_references_in_float64(name):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 11)) * 2.0
    mask = rng.random((5, 11)) < 0.7
    with jax.enable_x64(True):
        out = JITTED[name](jnp.asarray(x), mask=jnp.asarray(mask))
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(out), rowwise(REFS[name], x, mask), atol=1e-12)


@given(scores_and_mask())
@HYPOTHESIS
def test_sparsemax_and_entmax15_match_references_on_hypothesis_inputs(data):
    x, mask = data
    for name in ("sparsemax", "entmax15"):
        out = np.asarray(JITTED[name](jnp.asarray(x), mask=jnp.asarray(mask)))
        np.testing.assert_allclose(out, rowwise(REFS[name], x, mask), atol=5e-6, err_msg=name)


def test_large_offsets_in_float32_stay_accurate():
    # Without the max shift, 1 + k z_(k) > cumsum_k loses the support at |z| ~ 1e4.
    x = np.array([1e4 + 0.3, 1e4, 1e4 - 0.2, 1e4 - 3.0], np.float32)
    for name in ("sparsemax", "entmax15", "softmax"):
        out = np.asarray(JITTED[name](jnp.asarray(x)))
        np.testing.assert_allclose(out, REFS[name](x.astype(np.float64)), atol=2e-6, err_msg=name)


def test_sparsemax_example_from_the_paper():
    # Martins & Astudillo (2016): two entries differing by 2 or more leave only the larger one.
    np.testing.assert_array_equal(np.asarray(simplex.sparsemax(jnp.array([3.0, 1.0]))), [1.0, 0.0])
    np.testing.assert_allclose(np.asarray(simplex.sparsemax(jnp.array([1.0, 0.5]))), [0.75, 0.25])


# ------------------------------------------------------------------------ simplex laws


@given(scores_and_mask())
@HYPOTHESIS
def test_outputs_lie_on_the_simplex_over_valid_entries(data):
    x, mask = data
    for name, fn in JITTED.items():
        p = np.asarray(fn(jnp.asarray(x), mask=jnp.asarray(mask)))
        assert np.all(p >= 0), name
        assert np.all(p[~mask] == 0), name
        expected_sum = mask.any(-1).astype(np.float64)  # a fully masked row is all zeros
        np.testing.assert_allclose(p.sum(-1), expected_sum, atol=1e-5, err_msg=name)


@given(scores_and_mask(dtype=np.float64))
@HYPOTHESIS
def test_sparsemax_is_the_euclidean_projection_kkt(data):
    # argmin ||p - z||^2 on the simplex  <=>  p = max(z - tau, 0) with sum p = 1 (KKT).
    x, _ = data
    with jax.enable_x64(True):
        p = np.asarray(JITTED["sparsemax"](jnp.asarray(x)))
    for z, row in zip(x, p):
        support = row > 0
        tau = np.mean(z[support] - row[support])
        np.testing.assert_allclose(z[support] - row[support], tau, atol=1e-12)
        assert np.all(z[~support] <= tau + 1e-12)
        np.testing.assert_allclose(row.sum(), 1.0, atol=1e-12)
        np.testing.assert_allclose(row, sparsemax_ref(z), atol=1e-12)


def test_sparsemax_beats_a_generic_solver_on_the_projection_objective():
    rng = np.random.default_rng(2)
    for _ in range(5):
        z = rng.normal(size=6)
        with jax.enable_x64(True):
            p = np.asarray(JITTED["sparsemax"](jnp.asarray(z)))
        res = scipy.optimize.minimize(
            lambda v: np.sum((v - z) ** 2), np.full(6, 1 / 6), method="SLSQP",
            bounds=[(0, 1)] * 6, constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
            options={"ftol": 1e-14, "maxiter": 500})
        assert res.success
        assert np.sum((p - z) ** 2) <= res.fun + 1e-10
        np.testing.assert_allclose(p, res.x, atol=1e-5)


@given(scores_and_mask())
@HYPOTHESIS
def test_order_preserving_and_ties_equal(data):
    x, mask = data
    for name, fn in JITTED.items():
        p = np.asarray(fn(jnp.asarray(x), mask=jnp.asarray(mask)))
        for z, row, valid in zip(x, p, mask):
            z, row = z[valid], row[valid]
            greater = z[:, None] > z[None, :]
            assert np.all((row[:, None] >= row[None, :])[greater]), name
            assert np.all((row[:, None] == row[None, :])[z[:, None] == z[None, :]]), name


@given(scores_and_mask(), st.floats(-50, 50, width=32))
@HYPOTHESIS
def test_shift_invariance(data, shift):
    x, mask = data
    for name, fn in JITTED.items():
        p = fn(jnp.asarray(x), mask=jnp.asarray(mask))
        shifted = fn(jnp.asarray(x) + np.float32(shift), mask=jnp.asarray(mask))
        np.testing.assert_allclose(np.asarray(shifted), np.asarray(p), atol=5e-5, err_msg=name)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
@pytest.mark.parametrize("value", [-3.0, 0.0, 1 / 48, 1e3])
def test_constant_input_maps_to_uniform(name, value):
    x = jnp.full((2, 48), value, jnp.float32)
    mask = jnp.arange(48) < jnp.array([[48], [5]])
    np.testing.assert_allclose(np.asarray(JITTED[name](x)), 1 / 48, rtol=1e-6)
    out = np.asarray(JITTED[name](x, mask=mask))
    np.testing.assert_allclose(out[1, :5], 0.2, rtol=1e-6)
    assert np.all(out[1, 5:] == 0)


# ---------------------------------------------------------- masks, -inf, axes, dtypes


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_masked_entries_never_influence_the_result(name):
    fn = JITTED[name]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 0, 1], [0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], bool)
    garbage = np.where(mask, x, np.float32(np.nan))  # NaN, +big and -inf at masked entries
    garbage[0, 2], garbage[2, 3] = 1e30, -np.inf
    base = np.asarray(fn(jnp.asarray(x), mask=jnp.asarray(mask)))
    np.testing.assert_array_equal(np.asarray(fn(jnp.asarray(garbage), mask=jnp.asarray(mask))), base)
    np.testing.assert_array_equal(base[1], 0.0)  # fully masked row: zeros, no NaN
    np.testing.assert_array_equal(base[2], [1, 0, 0, 0, 0, 0])
    # -inf entries act as masked ones.
    with_inf = np.where(mask, x, np.float32(-np.inf))
    np.testing.assert_array_equal(np.asarray(fn(jnp.asarray(with_inf))), base)
    # Gradients: finite everywhere, zero with respect to masked entries.
    weights = jnp.asarray(rng.normal(size=(3, 6)).astype(np.float32))
    grad = jax.grad(lambda v: jnp.sum(fn(v, mask=jnp.asarray(mask)) * weights))(jnp.asarray(garbage))
    assert np.all(np.isfinite(grad))
    assert np.all(np.asarray(grad)[~mask] == 0)
    grad_inf = jax.grad(lambda v: jnp.sum(fn(v) * weights))(jnp.asarray(with_inf))
    np.testing.assert_allclose(np.asarray(grad_inf), np.asarray(grad), atol=1e-6)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_axis_and_broadcast_mask(name):
    fn = JITTED[name]
    x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 5, 3)).astype(np.float32))
    mask = jnp.array([True, True, False, True, True])[:, None]  # over axis 1, broadcast
    moved = fn(jnp.moveaxis(x, 1, -1), mask=jnp.moveaxis(jnp.broadcast_to(mask, x.shape), 1, -1))
    np.testing.assert_allclose(np.asarray(fn(x, axis=1, mask=mask)),
                               np.asarray(jnp.moveaxis(moved, -1, 1)), atol=1e-7)
    batched = jax.vmap(lambda row: fn(row))(x.reshape(-1, 3))
    np.testing.assert_allclose(np.asarray(batched), np.asarray(fn(x)).reshape(-1, 3), atol=1e-7)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_dtypes(name):
    fn = JITTED[name]
    x = np.array([0.7, -0.2, 0.1, 0.65])
    assert fn(jnp.asarray(x, jnp.float32)).dtype == jnp.float32
    assert fn(jnp.asarray(x, jnp.bfloat16)).dtype == jnp.bfloat16  # computed in float32
    assert fn(jnp.array([1, 1, 0])).dtype == jnp.float32  # ints become floats
    with jax.enable_x64(True):
        out = fn(jnp.asarray(x, jnp.float64))
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(out), REFS[name](x), atol=1e-14)


# -------------------------------------------------------------------- second order


def _away_from_kinks(name, n=6, margin=0.05, seed=0):
    """A float64 point whose support is >= 2 and stays put within +-margin (no kink)."""
    rng = np.random.default_rng(seed)
    while True:
        z = rng.normal(size=n)
        if name == "sparsemax":
            gap = z - (z - sparsemax_ref(z))[sparsemax_ref(z) > 0].mean()
        else:
            gap = z / 2 - entmax15_threshold_ref(z)
        if np.min(np.abs(gap)) > margin and np.sum(gap > 0) >= 2:
            return z


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_check_grads_order_two(name):
    fn = JITTED[name]
    z = _away_from_kinks(name)
    # Rows: all valid; one masked entry; fully masked (must differentiate twice without NaN).
    mask = np.ones((3, 6), bool)
    mask[1, 3], mask[2] = False, False
    with jax.enable_x64(True):
        batch = jnp.asarray(np.stack([z, z[::-1], z]))
        check_grads(jax.jit(lambda v: fn(v, mask=jnp.asarray(mask))), (batch,), order=2,
                    modes=["fwd", "rev"])


@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_jacobian_is_the_closed_form(name):
    # J = diag(s) - s s^T / sum(s): s = support indicator (sparsemax) or sqrt(p) (entmax15).
    z = _away_from_kinks(name, seed=1)
    with jax.enable_x64(True):
        p = np.asarray(JITTED[name](jnp.asarray(z)))
        jac_fwd = np.asarray(jax.jacfwd(JITTED[name])(jnp.asarray(z)))
        jac_rev = np.asarray(jax.jacrev(JITTED[name])(jnp.asarray(z)))
    s = (p > 0).astype(np.float64) if name == "sparsemax" else np.sqrt(p)
    expected = np.diag(s) - np.outer(s, s) / s.sum()
    np.testing.assert_allclose(jac_fwd, expected, atol=1e-12)
    np.testing.assert_allclose(jac_rev, expected, atol=1e-12)


def test_entmax15_hessian_is_nonzero_and_matches_differences():
    # sparsemax is piecewise linear (zero Hessian); entmax15 is not: check a real second order.
    z = _away_from_kinks("entmax15", seed=2)
    with jax.enable_x64(True):
        first = jax.jit(jax.jacfwd(lambda v: simplex.entmax15(v)[0]))
        hess = np.asarray(jax.jacrev(first)(jnp.asarray(z)))
        h = 1e-6
        at = lambda v: np.asarray(first(jnp.asarray(v)))  # noqa: E731
        numeric = np.stack([(at(z + h * e) - at(z - h * e)) / (2 * h) for e in np.eye(z.size)])
    assert np.abs(hess).max() > 1e-2
    np.testing.assert_allclose(hess, numeric, atol=1e-7)


# ------------------------------------------------------------------------- registry


def test_registry():
    assert simplex.available() == ("entmax15", "identity", "none", "softmax", "sparsemax")
    for name in ("softmax", "sparsemax", "entmax15"):
        assert simplex.get(name) is NORMALIZERS[name]
    assert simplex.get("none") is simplex.get("identity") is simplex.identity
    x = jnp.array([[0.3, -2.0, 5.0]])
    np.testing.assert_array_equal(np.asarray(simplex.get("none")(x)), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(simplex.get("none")(x, mask=jnp.array([1, 0, 1]))),
                                  np.array([[0.3, 0.0, 5.0]], np.float32))
    with pytest.raises(KeyError, match="sparsemax"):
        simplex.get("sparsemx")


# ----------------------------------------------------------------------- divergences


@given(distribution_pair())
@HYPOTHESIS
def test_divergences_match_scipy_on_valid_entries(data):
    p, q, mask = data
    # Masked entries hold garbage that must be ignored.
    p_in, q_in = np.where(mask, p, 7.0), np.where(mask, q, -3.0)
    pv, qv = p[mask], q[mask]
    with jax.enable_x64(True):
        args = (jnp.asarray(p_in), jnp.asarray(q_in))
        got_kl = float(KL(*args, mask=jnp.asarray(mask), eps=0.0))
        got_jsd = float(JSD(*args, mask=jnp.asarray(mask)))
        got_tvd = float(TVD(*args, mask=jnp.asarray(mask)))
    expected_kl = scipy.stats.entropy(pv, qv)  # inf where q = 0 < p, as eps=0 gives
    if np.isfinite(expected_kl):
        np.testing.assert_allclose(got_kl, expected_kl, rtol=1e-10, atol=1e-12)
    else:
        assert got_kl == np.inf
    # scipy takes a square root, which turns a rounding of -1e-17 for p == q into NaN.
    expected_jsd = np.nan_to_num(scipy.spatial.distance.jensenshannon(pv, qv, base=np.e) ** 2)
    np.testing.assert_allclose(got_jsd, expected_jsd, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(got_tvd, 0.5 * np.abs(pv - qv).sum(), rtol=1e-12, atol=1e-15)


@given(distribution_pair())
@HYPOTHESIS
def test_jsd_and_tvd_bounds_symmetry_and_identity(data):
    p, q, mask = data
    with jax.enable_x64(True):
        pj, qj, mj = jnp.asarray(p), jnp.asarray(q), jnp.asarray(mask)
        d_pq, d_qp = float(JSD(pj, qj, mj)), float(JSD(qj, pj, mj))
        t_pq, t_qp = float(TVD(pj, qj, mj)), float(TVD(qj, pj, mj))
        assert float(JSD(pj, pj, mj)) == 0.0 and float(TVD(pj, pj, mj)) == 0.0
        assert float(KL(pj, pj, mj)) == 0.0 and float(KL(pj, pj, mj, eps=0.0)) == 0.0
    assert 0.0 <= d_pq <= LN2 + 1e-12 and 0.0 <= t_pq <= 1.0 + 1e-12
    assert d_pq == pytest.approx(d_qp, abs=1e-15) and t_pq == t_qp
    # Zero iff equal, quantitatively: TVD^2 / 2 <= JSD <= ln2 * TVD (Pinsker; Lin, 1991).
    assert t_pq ** 2 / 2 <= d_pq + 1e-12
    assert d_pq <= LN2 * t_pq + 1e-12


def test_jsd_reaches_ln2_on_disjoint_supports_and_tvd_one():
    p = jnp.array([[0.5, 0.5, 0.0, 0.0]])
    q = jnp.array([[0.0, 0.0, 0.2, 0.8]])
    np.testing.assert_allclose(np.asarray(simplex.jsd(p, q)), [LN2], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(simplex.tvd(p, q)), [1.0], rtol=1e-6)


def test_kl_clipping_reproduces_the_reference_loss():
    # softmax_loss in the SMaT reference: sum_j t_j (log clip(t_j) - log clip(s_j)).
    t = np.array([[0.6, 0.4, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], np.float32)
    s = np.array([[0.5, 0.0, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25]], np.float32)
    clip = lambda a: np.clip(a.astype(np.float64), 1e-7, 1 - 1e-7)  # noqa: E731
    expected = np.sum(t * (np.log(clip(t)) - np.log(clip(s))), -1)
    got = simplex.kl(jnp.asarray(t), jnp.asarray(s))
    assert got.dtype == jnp.float32 and got.shape == (2,)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6)
    assert np.isinf(np.asarray(simplex.kl(jnp.asarray(t), jnp.asarray(s), eps=0.0))[0])
    # The clip saturates: no gradient flows into s where it is below 1e-7; the rest is -t/s.
    grad = np.asarray(jax.grad(lambda v: simplex.kl(jnp.asarray(t), v).sum())(jnp.asarray(s)))
    np.testing.assert_allclose(grad, [[-1.2, 0.0, 0.0, 0.0], [-4.0, 0.0, 0.0, 0.0]], rtol=1e-6)


def test_divergences_reduce_the_last_axis_over_any_batch_shape():
    rng = np.random.default_rng(6)
    p = scipy.special.softmax(rng.normal(size=(2, 3, 5)), -1)
    q = scipy.special.softmax(rng.normal(size=(2, 3, 5)), -1)
    got_kl = np.asarray(KL(jnp.asarray(p, jnp.float32), jnp.asarray(q, jnp.float32)))
    got_jsd = np.asarray(JSD(jnp.asarray(p, jnp.float32), jnp.asarray(q, jnp.float32)))
    assert got_kl.shape == got_jsd.shape == (2, 3)
    np.testing.assert_allclose(got_kl, scipy.stats.entropy(p, q, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(
        got_jsd, scipy.spatial.distance.jensenshannon(p, q, axis=-1, base=np.e) ** 2, rtol=1e-4)
    with jax.enable_x64(True):  # explicit promotion of mixed inputs under strict dtype rules
        mixed = simplex.kl(jnp.asarray(p, jnp.float32), jnp.asarray(q, jnp.float64))
        assert mixed.dtype == jnp.float64
        assert simplex.tvd(jnp.array([0, 1]), jnp.array([0.5, 0.5], jnp.float32)).dtype == jnp.float32


def test_divergence_gradients_are_finite_with_zeros_and_masked_garbage():
    p = jnp.array([[1.0, 0.0, 0.0, np.nan]])
    q = jnp.array([[0.0, 0.5, 0.5, np.nan]])
    mask = jnp.array([[True, True, True, False]])
    for fn in (simplex.kl, simplex.jsd, simplex.tvd):
        value, grads = jax.value_and_grad(lambda a, b: fn(a, b, mask).sum(), argnums=(0, 1))(p, q)
        assert np.isfinite(float(value)), fn.__name__
        assert all(np.all(np.isfinite(g)) for g in grads), fn.__name__
        assert all(float(g[0, 3]) == 0.0 for g in grads), fn.__name__


def test_kl_and_jsd_check_grads_order_two():
    # The explanation loss KL(E_T || E_S) sits on the meta-gradient path.
    rng = np.random.default_rng(7)
    with jax.enable_x64(True):
        p = jnp.asarray(scipy.special.softmax(rng.normal(size=(2, 5)), -1))
        q = jnp.asarray(scipy.special.softmax(rng.normal(size=(2, 5)), -1))
        mask = jnp.asarray(np.array([[1, 1, 1, 0, 1], [1, 1, 1, 1, 1]], bool))
        both = jax.jit(lambda a, b: jnp.stack([simplex.kl(a, b, mask), simplex.jsd(a, b, mask)]))
        check_grads(both, (p, q), order=2, modes=["fwd", "rev"], eps=1e-5)


def test_tvd_legacy_binary_is_half_the_true_binary_tvd():
    p1 = jnp.array([0.9, 0.2, 0.5, 0.0])
    q1 = jnp.array([0.3, 0.25, 0.5, 1.0])
    two_class = lambda a: jnp.stack([1 - a, a], -1)  # noqa: E731
    correct = simplex.tvd(two_class(p1), two_class(q1))
    legacy = simplex.tvd(p1, q1, legacy_binary=True)
    np.testing.assert_allclose(np.asarray(correct), np.abs(np.asarray(p1 - q1)), atol=1e-7)
    np.testing.assert_allclose(np.asarray(legacy), np.asarray(correct) / 2, atol=1e-7)
    assert legacy.shape == p1.shape
    with pytest.raises(ValueError, match="legacy_binary"):
        simplex.tvd(p1, q1, jnp.ones(4, bool), legacy_binary=True)
