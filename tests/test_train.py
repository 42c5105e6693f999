"""train_explainer end to end with a custom teacher that is not one of our encoders."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from smat.metalearn import MetaConfig
from smat.models import TextConfig, build
from smat.students import make_student
from smat.teacher import TeacherOutput
from smat.train import SmatConfig, train_explainer

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
    result = train_explainer(teacher_fn, teacher_params, {"train": _split(48, 0), "valid": _split(16, 1)}, student,
                             SmatConfig(batch_size=16, max_epochs=3, patience=5,
                                        meta=MetaConfig(mode="jvp", inner_lr=0.1, meta_lr=0.05)),
                             progress=False)
    assert len(result.history) == 3 and 0 <= result.best_epoch < 3
    assert all(np.isfinite(h["sim_loss"]) and 0 <= h["valid_simulability"] <= 1 for h in result.history)
    phi = np.asarray(result.state.teacher_expl_params["head_coeffs"])
    assert phi.shape == (2,) and not np.allclose(phi, 0.5)  # the explainer was meta-learned
    assert result.history[-1]["sim_loss"] < result.history[0]["sim_loss"]  # the student learns to simulate
