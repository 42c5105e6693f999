"""The teacher cache equals running the teacher on each example alone; custom teachers work."""

import jax
import jax.numpy as jnp
import numpy as np

from smat import explainers
from smat.models import TextConfig, build
from smat.teacher import TeacherOutput, build_teacher_cache, encoder_teacher


def _arrays(n=7, seq=8, vocab=40, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, seq + 1, n).astype(np.int32)
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    return {"input_ids": (rng.integers(1, vocab, (n, seq)) * mask).astype(np.int32), "attention_mask": mask,
            "lengths": lengths}


def test_cache_matches_one_example_at_a_time():
    config = TextConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                        max_position_embeddings=16, head="bert", pooler=True, num_labels=3)
    encoder = build(config)
    params = encoder.init(jax.random.key(0))
    teacher_fn = encoder_teacher(encoder)
    arrays = _arrays()
    static = {"gxi": explainers.get("gradient_x_input"),
              "all": explainers.get("attention_all_layers", num_layers=2, num_heads=2)}
    cache = build_teacher_cache(teacher_fn, params, arrays, batch_size=3, static_explainers=static, progress=False)
    assert cache["outputs"].shape == (7, 3) and cache["head_scores"].shape == (7, 2, 2, 8)

    @jax.jit
    def alone(one):  # one example, its own batch, never padded rows around it
        out = teacher_fn(params, one)
        expl, _ = static["gxi"].apply({}, explainers.ExplainerInputs(
            mask=one["attention_mask"], embeddings=out.embeddings,
            output_fn=lambda e: teacher_fn(params, one, embeddings=e).logits))
        return out.logits[0], out.head_scores[0], expl[0]

    for i in range(7):
        length = arrays["lengths"][i]
        logits, scores, expl = alone({k: jnp.asarray(arrays[k][i:i + 1]) for k in ("input_ids", "attention_mask")})
        np.testing.assert_allclose(cache["outputs"][i], np.asarray(logits), atol=1e-5)
        np.testing.assert_allclose(cache["head_scores"][i, ..., :length], np.asarray(scores)[..., :length], atol=1e-4)
        np.testing.assert_allclose(cache["explanation/gxi"][i], np.asarray(expl), atol=1e-5)
        assert np.all(cache["explanation/gxi"][i, length:] == 0)
        np.testing.assert_allclose(cache["explanation/all"][i].sum(), 1.0, atol=1e-5)

def test_a_hand_written_teacher_is_a_teacher():
    """The protocol is a function: a one-layer attention classifier that is not one of our encoders."""
    rng = np.random.default_rng(1)
    params = {"emb": jnp.asarray(rng.normal(size=(40, 4)), jnp.float32),
              "query": jnp.asarray(rng.normal(size=(4,)), jnp.float32),
              "out": jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)}

    def teacher_fn(params, batch, embeddings=None):
        e = params["emb"][batch["input_ids"]] if embeddings is None else embeddings
        scores = jnp.where(batch["attention_mask"] > 0, e @ params["query"], -1e10)  # [batch, seq]
        pooled = jnp.einsum("bt,bth->bh", jax.nn.softmax(scores, -1), e)
        return TeacherOutput(pooled @ params["out"], scores[:, None, None, :], e)  # 1 layer x 1 head

    arrays = _arrays(n=5)
    cache = build_teacher_cache(teacher_fn, params, arrays, batch_size=2, progress=False, static_explainers={
        "att": explainers.get("attention_all_layers", num_layers=1, num_heads=1)})
    want = jax.nn.softmax(jnp.where(arrays["attention_mask"] > 0,
                                    params["emb"][arrays["input_ids"]] @ params["query"], -1e10), -1)
    np.testing.assert_allclose(cache["explanation/att"], np.asarray(want), atol=1e-6)


def test_fit_teacher_names_the_padding_rows_when_the_loss_is_not_finite():
    import pytest

    from smat.teacher import TeacherTrainConfig, fit_teacher

    def unguarded(params, batch, embeddings=None):  # mean pooling that divides by zero on padding rows
        e = params["embed"][batch["input_ids"]]
        m = batch["attention_mask"][..., None].astype(e.dtype)
        pooled = (e * m).sum(1) / m.sum(1)
        return TeacherOutput(pooled @ params["w"], None, e)

    params = {"embed": jnp.ones((40, 4)), "w": jnp.zeros((4, 2))}
    data = _arrays(n=7) | {"targets": np.arange(7) % 2}  # 7 examples in batches of 4: one padding row
    with pytest.raises(FloatingPointError, match="attention_mask is all zero"):
        fit_teacher(unguarded, params, data, None, TeacherTrainConfig(warmup_steps=1, batch_size=4, max_epochs=1),
                    progress=False)
    fit_teacher(unguarded, params, _arrays(n=8) | {"targets": np.arange(8) % 2}, None,
                TeacherTrainConfig(warmup_steps=1, batch_size=4, max_epochs=1), progress=False)
