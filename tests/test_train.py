"""train_explainer end to end with a custom teacher that is not one of our encoders."""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smat.metalearn import MetaConfig
from smat.models import TextConfig, build
from smat.students import make_student
from smat.teacher import TeacherOutput
from smat.train import SmatConfig, add_teacher_cache, setup, train_epoch, train_explainer, train_student

warnings.filterwarnings("ignore", message="Some donated buffers were not usable")


def _teacher():
    """A one-layer, two-head attention classifier written by hand."""
    rng = np.random.default_rng(0)
    params = {"emb": jnp.asarray(rng.normal(size=(30, 8)), jnp.float32),
              "query": jnp.asarray(rng.normal(size=(2, 8)), jnp.float32),
              "out": jnp.asarray(rng.normal(size=(16, 2)), jnp.float32)}

    def teacher_fn(params, batch, embeddings=None):
        e = params["emb"][batch["input_ids"]] if embeddings is None else embeddings
        scores = jnp.einsum("bth,nh->bnt", e, params["query"])
        scores = jnp.where(batch["attention_mask"][:, None] > 0, scores, -1e10)  # [batch, heads, seq]
        pooled = jnp.einsum("bnt,bth->bnh", jax.nn.softmax(scores, -1), e).reshape(e.shape[0], -1)
        return TeacherOutput(pooled @ params["out"], scores[:, None], e)  # head_scores [batch, 1, 2, seq]

    return teacher_fn, params


def _split(n, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, n).astype(np.int32)
    mask = (np.arange(8)[None] < lengths[:, None]).astype(np.int32)
    return {"input_ids": (rng.integers(1, 30, (n, 8)) * mask).astype(np.int32), "attention_mask": mask,
            "lengths": lengths}


def test_train_explainer_with_a_custom_teacher():
    teacher_fn, teacher_params = _teacher()
    config = TextConfig(vocab_size=30, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                        max_position_embeddings=12, hidden_dropout=0.0, attention_dropout=0.0)
    student = make_student(build(config), 2, head_dropout=0.0)
    result = train_explainer(teacher_fn, teacher_params, {"train": _split(48, 0), "valid": _split(16, 1)},
                             SmatConfig(batch_size=16, max_epochs=3, patience=5,
                                        meta=MetaConfig(mode="jvp", inner_lr=0.1, meta_lr=0.05)),
                             student=student, progress=False)
    assert len(result.history) == 3 and 0 <= result.best_epoch < 3
    assert all(np.isfinite(h["sim_loss"]) and 0 <= h["valid_simulability"] <= 1 for h in result.history)
    phi = np.asarray(result.state.teacher_expl_params["head_coeffs"])
    assert phi.shape == (2,) and not np.allclose(phi, 0.5)  # the explainer was meta-learned
    assert result.history[-1]["sim_loss"] < result.history[0]["sim_loss"]  # the student learns to simulate


def _student():
    config = TextConfig(vocab_size=30, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                        max_position_embeddings=12, hidden_dropout=0.0, attention_dropout=0.0)
    return config


def _fast(**kw):
    return SmatConfig(batch_size=16, max_epochs=2, patience=5,
                      meta=MetaConfig(mode="jvp", inner_lr=0.1, meta_lr=0.05), **kw)


def test_fresh_student_with_the_frozen_learned_explainer():
    teacher_fn, teacher_params = _teacher()
    data = {"train": _split(32, 0), "valid": _split(16, 1), "test": _split(16, 2)}
    student = make_student(build(_student()), 2, head_dropout=0.0)
    learned = train_explainer(teacher_fn, teacher_params, data, _fast(), student=student, progress=False)
    phi = learned.state.teacher_expl_params
    fresh = train_student(teacher_fn, teacher_params, data, _fast(seed=1), teacher_expl_params=phi,
                          student=student, progress=False)
    np.testing.assert_array_equal(fresh.state.teacher_expl_params["head_coeffs"], phi["head_coeffs"])  # frozen
    assert int(fresh.state.step) == 2 * (fresh.best_epoch + 1)  # 2 student steps per epoch, no meta steps
    assert set(fresh.metrics) >= {"valid_simulability", "test_simulability", "test_sim_loss"}
    assert 0 <= fresh.metrics["test_simulability"] <= 1


def test_no_explainer_is_the_attention_loss_weighted_by_zero():
    teacher_fn, teacher_params = _teacher()
    data = {"train": _split(32, 0), "valid": _split(16, 1)}
    student = make_student(build(_student()), 2, head_dropout=0.0)
    none = train_explainer(teacher_fn, teacher_params, data, _fast(explainer="none"), student=student,
                           progress=False)
    zero = train_explainer(teacher_fn, teacher_params, data, _fast(explainer="attention_all_layers", beta=0.0),
                           student=student, progress=False)
    full = train_explainer(teacher_fn, teacher_params, data, _fast(explainer="attention_all_layers"),
                           student=student, progress=False)
    for a, b in zip(none.history, zero.history):
        np.testing.assert_allclose(a["sim_loss"], b["sim_loss"], rtol=1e-6)
    assert not np.isclose(none.history[-1]["sim_loss"], full.history[-1]["sim_loss"], rtol=1e-6)


def test_static_gradient_explainer_and_a_regression_teacher():
    teacher_fn, teacher_params = _teacher()

    def regression_teacher(params, batch, embeddings=None):
        out = teacher_fn(params, batch, embeddings)
        return out._replace(logits=out.logits[:, :1] - out.logits[:, 1:])

    data = add_teacher_cache(regression_teacher, teacher_params, {"train": _split(32, 0), "valid": _split(16, 1)},
                             ("gradient_x_input", "attention"), progress=False)
    assert data["train"]["teacher_outputs"].shape == (32, 1)
    expl = data["train"]["teacher_explanation/gradient_x_input"]
    np.testing.assert_allclose(expl.sum(-1), 1.0, rtol=1e-5)
    assert np.all(expl[data["train"]["attention_mask"] == 0] == 0)
    student = make_student(build(_student()), 1, head_dropout=0.0)
    for name in ("gradient_x_input", "attention"):
        result = train_explainer(regression_teacher, teacher_params, data, _fast(explainer=name), student=student,
                                 progress=False)
        assert -1 <= result.metrics["valid_simulability"] <= 1  # Pearson r
        assert result.history[-1]["sim_loss"] < result.history[0]["sim_loss"] or name == "attention"


def test_unknown_explainer_is_refused():
    with pytest.raises(ValueError, match="unknown explainer"):
        SmatConfig(explainer="lime")


def test_a_killed_run_resumes_to_the_same_result(tmp_path):
    teacher_fn, teacher_params = _teacher()
    data = {"train": _split(32, 0), "valid": _split(16, 1)}
    student = make_student(build(_student()), 2, head_dropout=0.1)  # dropout: the PRNG key must resume too
    config = dataclasses.replace(_fast(), max_epochs=3)
    whole = train_explainer(teacher_fn, teacher_params, data, config, student=student, progress=False)
    ckpt = tmp_path / "run.npz"
    train_explainer(teacher_fn, teacher_params, data, dataclasses.replace(config, max_epochs=2), student=student,
                    checkpoint=ckpt, progress=False)  # "killed" after two epochs
    resumed = train_explainer(teacher_fn, teacher_params, data, config, student=student, checkpoint=ckpt,
                              progress=False)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    for a, b in zip(jax.tree.leaves(whole.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert resumed.history == whole.history
    again = train_explainer(teacher_fn, teacher_params, data, config, student=student, checkpoint=ckpt,
                            progress=False)  # finished: returns without training
    assert again.history == whole.history


def test_meta_steps_read_valid_batches_times_the_batch_size():
    teacher_fn, teacher_params = _teacher()
    config = TextConfig(vocab_size=30, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                        max_position_embeddings=12, hidden_dropout=0.0, attention_dropout=0.0)
    student = make_student(build(config), 2, head_dropout=0.0)
    smat_config = SmatConfig(batch_size=8, meta=MetaConfig(valid_batches=3))
    run = setup(teacher_fn, teacher_params, {"train": _split(24, 0), "valid": _split(40, 1)}, smat_config,
                student=student, progress=False)
    seen = []

    def meta_step(state, train_batch, valid_batch, key):
        seen.append((len(train_batch["valid"]), int(valid_batch["valid"].sum()), len(valid_batch["valid"])))
        return state, {"sim_loss": 0.0}

    _, _, metrics = train_epoch(run.trainer._replace(meta_step=meta_step), run.state, run.splits, smat_config, 0,
                                run.key, meta=True)
    # 3 train batches of 8; valid batches of 24 cycle through the 40 examples (the second padded)
    assert len(metrics) == 3 and seen == [(8, 24, 24), (8, 16, 24), (8, 24, 24)]
