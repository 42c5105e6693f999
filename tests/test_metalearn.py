"""The SMaT meta-gradient: exact vs finite differences, jvp vs exact, the pilot step, tracing."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smat import explainers
from smat.metalearn import MetaConfig, make_trainer, meta_optimizer
from smat.models import TextConfig, build
from smat.students import cast, make_student

warnings.filterwarnings("ignore", message="Some donated buffers were not usable")

LAYERS, HEADS, SEQ, BATCH, CLASSES = 2, 2, 6, 4, 3


def _setup(dtype, mode, *, inner_clip=5.0, seed=0):
    config = TextConfig(vocab_size=30, hidden_size=8, num_layers=LAYERS, num_heads=HEADS, intermediate_size=16,
                        max_position_embeddings=12, hidden_dropout=0.0, attention_dropout=0.0)
    student = make_student(build(config), CLASSES, head_dropout=0.0)
    student_expl = explainers.get("attention", num_layers=LAYERS, num_heads=HEADS, normalizer="sparsemax")
    teacher_expl = explainers.get("attention", num_layers=LAYERS, num_heads=HEADS, normalizer="sparsemax")
    trainer = make_trainer(student, student_expl, teacher_expl,
                           MetaConfig(mode=mode, inner_clip=inner_clip, inner_lr=0.5, beta=5.0))
    rng = np.random.default_rng(seed)

    def batch():
        lengths = rng.integers(3, SEQ + 1, BATCH)
        mask = (np.arange(SEQ)[None] < lengths[:, None]).astype(np.int32)
        return {
            "input_ids": jnp.asarray(rng.integers(1, 30, (BATCH, SEQ)) * mask, jnp.int32),
            "attention_mask": jnp.asarray(mask),
            "valid": jnp.asarray([1, 1, 1, 0], dtype),  # a padding row, as static batching makes
            "teacher_outputs": jnp.asarray(rng.normal(size=(BATCH, CLASSES)), dtype),
            "teacher_head_scores": jnp.asarray(3 * rng.normal(size=(BATCH, LAYERS, HEADS, SEQ)), dtype),
        }

    phi = jnp.asarray(1 / 4 + 0.02 * rng.normal(size=LAYERS * HEADS), dtype)  # all four heads in the support
    state = trainer.init(jax.random.key(seed), teacher_expl_params={"head_coeffs": phi})
    state = cast(state, dtype)
    return trainer, state, batch(), batch()


def _meta_grad(trainer, state, train, valid, key=jax.random.key(7)):
    return np.asarray(jax.jit(trainer.meta_gradient)(state.student_params, state.opt_state, state.teacher_expl_params,
                                            train, valid, key)["head_coeffs"])


def test_exact_meta_gradient_matches_finite_differences_in_float64():
    with jax.enable_x64(True):
        trainer, state, train, valid = _setup(jnp.float64, "exact")
        grad = _meta_grad(trainer, state, train, valid)

        @jax.jit
        def pilot_loss(phi):
            pilot, _, _ = trainer.inner_update(state.student_params, state.opt_state, {"head_coeffs": phi}, train,
                                               jax.random.key(7))
            return trainer.valid_loss(pilot, valid)

        def outer(phi):
            return float(pilot_loss(phi))

        phi = state.teacher_expl_params["head_coeffs"]
        # Five-point central differences: truncation O(h^4), round-off ~1e-16 / h.
        h = 1e-3

        def fd_at(i):
            f = [outer(phi.at[i].add(k * h)) for k in (-2, -1, 1, 2)]
            return (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)

        fd = np.array([fd_at(i) for i in range(phi.size)])
        assert np.abs(grad).max() > 1e-6  # the explanation really moves the pilot student
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-10 * np.abs(fd).max())


def test_jvp_meta_gradient_equals_exact():
    with jax.enable_x64(True):
        trainer, state, train, valid = _setup(jnp.float64, "exact")
        exact = _meta_grad(trainer, state, train, valid)
        jvp_trainer, _, _, _ = _setup(jnp.float64, "jvp")
        _, _, aux = trainer.inner_update(state.student_params, state.opt_state, state.teacher_expl_params, train,
                                         jax.random.key(7))
        assert float(aux["grad_norm"]) < 5.0  # clip inactive: the two forms are equal exactly
        jvp = _meta_grad(jvp_trainer, state, train, valid)
        np.testing.assert_allclose(jvp, exact, rtol=1e-6, atol=1e-12)
    trainer32, state32, train32, valid32 = _setup(jnp.float32, "exact")
    jvp_trainer32, _, _, _ = _setup(jnp.float32, "jvp")
    exact32 = _meta_grad(trainer32, state32, train32, valid32)
    np.testing.assert_allclose(_meta_grad(jvp_trainer32, state32, train32, valid32), exact32,
                               rtol=1e-4, atol=1e-4 * np.abs(exact32).max())


def test_jvp_with_an_active_clip_scales_by_the_clip_factor():
    with jax.enable_x64(True):
        trainer, state, train, valid = _setup(jnp.float64, "exact", inner_clip=1e-3)
        jvp_trainer, _, _, _ = _setup(jnp.float64, "jvp", inner_clip=1e-3)
        exact, jvp = _meta_grad(trainer, state, train, valid), _meta_grad(jvp_trainer, state, train, valid)
        # Only the derivative of the clip factor is dropped: same direction, close values.
        cosine = exact @ jvp / np.linalg.norm(exact) / np.linalg.norm(jvp)
        assert cosine > 0.9


def test_meta_step_updates_phi_and_the_pilot_leaves_the_student_alone():
    trainer, state, train, valid = _setup(jnp.float32, "exact")
    key = jax.random.key(3)
    k_inner, _ = jax.random.split(key)
    expected, _, _ = jax.jit(trainer.inner_update)(state.student_params, state.opt_state, state.teacher_expl_params, train,
                                          k_inner)
    expected = jax.tree.map(np.asarray, expected)
    phi_before = np.asarray(state.teacher_expl_params["head_coeffs"])
    new_state, metrics = trainer.meta_step(state, train, valid, key)
    # The real student moved by exactly one inner step, not two.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6, atol=1e-7),
                 new_state.student_params, expected)
    assert not np.allclose(np.asarray(new_state.teacher_expl_params["head_coeffs"]), phi_before)
    assert int(new_state.step) == 1 and np.isfinite(float(metrics["meta_grad_norm"]))


def test_meta_step_traces_once():
    trainer, state, train, valid = _setup(jnp.float32, "jvp")
    for step in range(3):
        state, _ = trainer.meta_step(state, train, valid, jax.random.key(step))
    assert trainer.meta_step._cache_size() == 1
    for step in range(2):
        state, _ = trainer.student_step(state, train, jax.random.key(step))
    assert trainer.student_step._cache_size() == 1


def test_meta_lr_warms_up_linearly():
    # A constant gradient makes Adam's direction exactly its sign, so each update is the lr of that step.
    config = MetaConfig(meta_lr=0.1, warmup_steps=4)
    opt = meta_optimizer(config)
    phi = {"head_coeffs": jnp.zeros(3)}
    grads = {"head_coeffs": jnp.asarray([0.5, -2.0, 0.1])}  # eps, eps_root negligible
    state, steps = opt.init(phi), []
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float (as meta_step)
        for _ in range(6):
            updates, state = opt.update(grads, state, phi)
            steps.append(np.asarray(updates["head_coeffs"]))
        plain, _ = meta_optimizer(MetaConfig(meta_lr=0.1)).update(grads, meta_optimizer(MetaConfig()).init(phi), phi)
    expected = [-0.1 * min(1.0, (t + 1) / 4) * np.sign(grads["head_coeffs"]) for t in range(6)]
    np.testing.assert_allclose(steps, expected, rtol=1e-4)  # float32 bias correction
    np.testing.assert_allclose(plain["head_coeffs"], expected[-1], rtol=1e-4)  # no warm-up: full lr at once
    with pytest.raises(ValueError, match="warmup_steps"):
        MetaConfig(warmup_steps=-1)
    with pytest.raises(ValueError, match="valid_batches"):
        MetaConfig(valid_batches=0)


def test_a_larger_valid_batch_averages_the_meta_gradients_of_its_parts():
    # MetaConfig.valid_batches feeds the outer loss valid_batches * batch_size examples: with
    # equally many real rows per part, its meta-gradient is the mean of the parts' (float64).
    with jax.enable_x64(True):
        trainer, state, train, valid_a = _setup(jnp.float64, "exact")
        _, _, _, valid_b = _setup(jnp.float64, "exact", seed=1)
        both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), valid_a, valid_b)
        parts = [_meta_grad(trainer, state, train, v) for v in (valid_a, valid_b)]
        assert np.abs(parts[0] - parts[1]).max() > 1e-3 * np.abs(parts[0]).max()  # the parts do differ
        np.testing.assert_allclose(_meta_grad(trainer, state, train, both), np.mean(parts, 0), rtol=1e-9, atol=1e-14)
