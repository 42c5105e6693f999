"""The torch.func peer of the SMaT meta step (experiments/benchmarks/meta_step_torch.py) computes what ours does.

Same tiny student, same float64 params, same batches, every dropout rate at zero (the two
sides draw dropout masks from different RNGs): the student loss, the exact meta-gradient
and one full meta step must agree to rounding, with the inner gradient clip inactive and
active (the head kernels scaled up so the inner gradient norm passes 5). Ours runs as one
jitted function per module, compiled once for both cases.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from experiments.benchmarks import meta_step_torch as peer  # noqa: E402
from smat import explainers  # noqa: E402
from smat.metalearn import MetaConfig, make_trainer  # noqa: E402
from smat.models import TextConfig, build  # noqa: E402
from smat.students import make_student  # noqa: E402

LAYERS, HEADS, SEQ, BATCH, CLASSES = 2, 4, 7, 3, 3
CONFIG = TextConfig(vocab_size=50, hidden_size=16, num_layers=LAYERS, num_heads=HEADS, intermediate_size=32,
                    max_position_embeddings=16, hidden_dropout=0.0, attention_dropout=0.0)
META = MetaConfig(mode="exact", inner_lr=0.5, beta=5.0)  # inner_clip 5.0, the benchmark's
HEAD_SCALE = {"clip-inactive": 1.0, "clip-active": 30.0}  # head kernel std x this: inner gradient norm < or > 5


def _batches(rng):
    def batch(valid):
        lengths = np.r_[SEQ, rng.integers(3, SEQ, BATCH - 1)]  # two padded rows
        mask = (np.arange(SEQ)[None] < lengths[:, None]).astype(np.int32)
        return {"input_ids": rng.integers(1, 50, (BATCH, SEQ)).astype(np.int32) * mask, "attention_mask": mask,
                "valid": np.asarray(valid, np.float64),
                "teacher_outputs": rng.normal(size=(BATCH, CLASSES)),
                "teacher_head_scores": 3 * rng.normal(size=(BATCH, LAYERS, HEADS, SEQ))}

    return batch([1, 1, 1]), batch([1, 1, 0])


def _random_student(student, rng, head_scale):
    """float64 params shaped as ``student.init``'s, every leaf random (biases, norms, mix weights too)."""

    def leaf(path, shape):
        name = path[-1].key
        base = 1.0 if name in ("scale", "gamma") else 0.0
        std = 0.02 if name in ("kernel", "word", "position", "token_type") else 0.1
        if name == "kernel" and path[0].key == "head":
            std *= head_scale
        return jnp.asarray(base + std * rng.normal(size=shape.shape))

    return jax.tree_util.tree_map_with_path(leaf, jax.eval_shape(student.init, jax.random.key(0)))


def _ours(rng, train, valid, phi_teacher, phi_student):
    """Per case: the float64 state we start from and our numbers (numpy). Call inside ``jax.enable_x64``."""
    student = make_student(build(CONFIG), CLASSES, head_dropout=0.0)
    explainer = explainers.get("attention", num_layers=LAYERS, num_heads=HEADS)
    trainer = make_trainer(student, explainer, explainer, META)
    key = jax.random.key(1)

    @jax.jit
    def run(state, train, valid):
        loss, aux = trainer.student_loss(state.student_params, state.teacher_expl_params, train, key)
        meta_grad = trainer.meta_gradient(state.student_params, state.opt_state, state.teacher_expl_params,
                                          train, valid, key)
        new_state, metrics = trainer.meta_step(state, train, valid, key)
        return {"loss": loss, **aux, "meta_grad": meta_grad["head_coeffs"], "metrics": metrics,
                "new_phi": new_state.teacher_expl_params["head_coeffs"], "new_student": new_state.student_params}

    train, valid = jax.tree.map(jnp.asarray, train), jax.tree.map(jnp.asarray, valid)
    results = {}
    for case, scale in HEAD_SCALE.items():
        student_params = {"student": _random_student(student, rng, scale), "explainer": {"head_coeffs": phi_student}}
        state = trainer.init(key, {"head_coeffs": phi_teacher}, student_params)
        out = jax.device_get(run(state, train, valid))
        out["new_student"] = {k: v.numpy() for k, v in peer.params_from_jax(out.pop("new_student")).items()}
        results[case] = (state, out)
    return results


@pytest.fixture(scope="module")
def cases():
    """case -> (our results, the peer's inputs converted from the very same arrays)."""
    rng = np.random.default_rng(0)
    train, valid = _batches(rng)
    # Spread-out coefficients: sparsemax drops some heads and sits at no kink.
    phi_teacher, phi_student = 0.3 * rng.normal(size=(2, LAYERS * HEADS))
    with jax.enable_x64(True):
        ours = _ours(rng, train, valid, jnp.asarray(phi_teacher), jnp.asarray(phi_student))
        converted = {case: (peer.params_from_jax(state.student_params), peer.params_from_jax(state.teacher_expl_params))
                     for case, (state, _) in ours.items()}

    def to_torch(batch):
        return {k: torch.as_tensor(v, dtype=torch.int64 if v.dtype.kind == "i" else torch.float64)
                for k, v in batch.items()}

    config = peer.ModelConfig.from_text_config(CONFIG, num_outputs=CLASSES, head_dropout=0.0)
    meta = peer.MetaConfig(**{f.name: getattr(META, f.name) for f in dataclasses.fields(peer.MetaConfig)})
    shared = dict(config=config, meta=meta, train=to_torch(train), valid=to_torch(valid))
    return {case: (out, dict(shared, params=converted[case][0], phi=converted[case][1]))
            for case, (_, out) in ours.items()}


def test_converted_params_are_float64_and_unstacked(cases):
    _, theirs = cases["clip-inactive"]
    params = theirs["params"]
    assert {v.dtype for v in params.values()} == {torch.float64}
    assert params["student.encoder.layers.1.query.kernel"].shape == (16, 16)
    assert "student.encoder.layers.1.ffn_norm.scale" in params and "explainer.head_coeffs" in params
    assert theirs["phi"]["head_coeffs"].shape == (LAYERS * HEADS,)


@pytest.mark.parametrize("case", HEAD_SCALE)
def test_student_loss_matches(cases, case):
    ours, t = cases[case]
    loss, aux = peer.student_loss(t["params"], t["phi"], t["train"], t["config"], t["meta"])
    assert ours["expl_loss"] > 1e-3  # the explanation term really contributes
    np.testing.assert_allclose(loss.item(), ours["loss"], rtol=1e-10)
    for name in ("sim_loss", "expl_loss"):
        np.testing.assert_allclose(aux[name].item(), ours[name], rtol=1e-10)


@pytest.mark.parametrize("case", HEAD_SCALE)
def test_exact_meta_gradient_matches(cases, case):
    ours, t = cases[case]
    # The pilot step at these params is the meta step's real inner step: same gradient norm.
    assert (ours["metrics"]["grad_norm"] > META.inner_clip) == (case == "clip-active")
    theirs = peer.meta_gradient(t["params"], t["phi"], t["train"], t["valid"], t["config"], t["meta"])
    expected = ours["meta_grad"]
    assert np.abs(expected).max() > 1e-4 and (expected == 0).any()  # a real gradient, and heads off the support
    np.testing.assert_allclose(theirs["head_coeffs"].numpy(), expected, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("case", HEAD_SCALE)
def test_meta_step_matches(cases, case):
    ours, t = cases[case]
    state = peer.TrainState(t["params"], t["phi"], peer.adam_init(t["phi"]), torch.zeros((), dtype=torch.int32))
    new_state, metrics = peer.meta_step(state, t["train"], t["valid"], t["config"], t["meta"])

    phi = t["phi"]["head_coeffs"].numpy()
    new_phi = new_state.teacher_expl_params["head_coeffs"].numpy()
    np.testing.assert_allclose(new_phi, ours["new_phi"], rtol=1e-8)
    np.testing.assert_allclose(new_phi - phi, ours["new_phi"] - phi, rtol=1e-8)
    new_student = {k: v.numpy() for k, v in new_state.student_params.items()}
    assert new_student.keys() == ours["new_student"].keys()
    for name in ("student.encoder.layers.1.query.kernel", "explainer.head_coeffs"):  # the step itself, not just the sum
        before = t["params"][name].numpy()
        step = ours["new_student"][name] - before
        np.testing.assert_allclose(new_student[name] - before, step, rtol=1e-8, atol=1e-12 * np.abs(step).max())
    for name, value in ours["new_student"].items():
        np.testing.assert_allclose(new_student[name], value, rtol=1e-8, atol=1e-14, err_msg=name)
    for name, value in ours["metrics"].items():
        np.testing.assert_allclose(metrics[name].item(), value, rtol=1e-8, err_msg=name)
    assert int(new_state.step) == 1
