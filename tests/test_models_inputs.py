"""Encoder input validation, tracing and gradients: no PyTorch needed."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from smat.models import TextConfig, build, load_pretrained


def test_missing_local_directory_is_not_sent_to_the_hub(tmp_path):
    for path in (tmp_path / "nope", "./no/such/model", "~/no-such-model"):
        with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
            load_pretrained(path)


def test_ids_are_checked_in_embed_too():
    config = TextConfig(vocab_size=50, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                        max_position_embeddings=12)
    encoder = build(config)
    with pytest.raises(ValueError, match="outside"):
        encoder.embed(encoder.init(jax.random.key(0)), np.array([[1, 99]]))


# -------------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def tiny_text():
    config = TextConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                        max_position_embeddings=12)
    encoder = build(config)
    return encoder, encoder.init(jax.random.key(0))


def test_out_of_vocabulary_ids_raise(tiny_text):
    encoder, params = tiny_text
    ids = np.array([[1, 2, 50, 3]])
    with pytest.raises(ValueError, match=r"outside \[0, 50\).*50"):
        encoder.apply(params, ids, np.ones_like(ids))
    with pytest.raises(ValueError, match="outside"):
        encoder.apply(params, np.array([[1, -1]]), np.ones((1, 2), np.int32))


def test_mask_of_wrong_shape_raises(tiny_text):
    encoder, params = tiny_text
    with pytest.raises(ValueError, match="attention_mask has shape"):
        encoder.apply(params, np.ones((2, 5), np.int32), np.ones((2, 4), np.int32))


def test_too_long_sequence_raises_even_under_jit(tiny_text):
    encoder, params = tiny_text
    with pytest.raises(ValueError, match="exceeds the position table"):
        jax.jit(encoder.apply)(params, jnp.ones((1, 13), jnp.int32), jnp.ones((1, 13), jnp.int32))


def test_nchw_images_get_a_hint():
    from smat.models import ViTConfig

    encoder = build(ViTConfig(hidden_size=8, num_layers=1, num_heads=2, intermediate_size=8, image_size=8,
                              patch_size=4))
    params = encoder.init(jax.random.key(0))
    with pytest.raises(ValueError, match="NCHW"):
        encoder.apply(params, jnp.zeros((1, 3, 8, 8)))
    from smat.models.vit import resize_inputs

    with pytest.raises(ValueError, match="NCHW"):  # checked before the resize would hide it
        resize_inputs(encoder, 8).apply(params, jnp.zeros((1, 3, 4, 4)))


def test_output_is_finite_and_dropout_needs_a_key(tiny_text):
    encoder, params = tiny_text
    ids = jnp.array([[1, 2, 3, 0]], jnp.int32)
    mask = jnp.array([[1, 1, 1, 0]], jnp.int32)
    out = encoder.apply(params, ids, mask)
    assert np.isfinite(np.asarray(out.last_hidden_state)).all()
    with pytest.raises(ValueError, match="RNG key"):
        encoder.apply(params, ids, mask, train=True)
    a = encoder.apply(params, ids, mask, train=True, key=jax.random.key(1)).last_hidden_state
    b = encoder.apply(params, ids, mask, train=True, key=jax.random.key(2)).last_hidden_state
    assert not np.allclose(a, b)  # dropout is on in training


# ----------------------------------------------------------------------- tracing


def test_jitted_forward_traces_once_per_shape(tiny_text):
    encoder, params = tiny_text

    @jax.jit
    @chex.assert_max_traces(n=2)
    def forward(params, ids, mask):
        return encoder.apply(params, ids, mask).last_hidden_state

    ids = jnp.ones((4, 8), jnp.int32)
    for step in range(3):  # same shape, new values: no retrace
        forward(params, ids + step, jnp.ones((4, 8), jnp.int32))
    forward(params, jnp.ones((4, 10), jnp.int32), jnp.ones((4, 10), jnp.int32))  # new shape: one more
    with pytest.raises(AssertionError):
        forward(params, jnp.ones((4, 11), jnp.int32), jnp.ones((4, 11), jnp.int32))


def test_init_matches_eval_shape_and_grads_flow_through_embeddings(tiny_text):
    encoder, params = tiny_text
    shapes = jax.eval_shape(encoder.init, jax.random.key(1))
    chex.assert_trees_all_equal_shapes(params, shapes)
    ids = jnp.array([[1, 2, 3, 4]], jnp.int32)
    mask = jnp.ones_like(ids)
    emb = encoder.embed(params, ids)

    def f(e):
        return encoder.encode(params, e, mask).last_hidden_state.sum()

    grad = jax.grad(f)(emb)
    assert grad.shape == emb.shape and float(jnp.abs(grad).sum()) > 0


def test_uniform_attention_weighs_every_real_token_equally():
    """Neely et al.'s Table 3 ablation: every head of every layer uniform over the real tokens,
    on the explicit and the fused attention path alike."""
    config = TextConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=4, intermediate_size=32,
                        max_position_embeddings=16, uniform_attention=True)
    encoder = build(config)
    params = encoder.init(jax.random.key(0))
    ids = jnp.asarray([[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]], jnp.int32)
    mask = jnp.asarray([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], jnp.int32)
    out = encoder.apply(params, ids, mask, output_attentions=True)
    expected = np.asarray(mask, np.float64) / np.asarray(mask).sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(out.attentions), np.broadcast_to(expected[None, :, None, None, :],
                                                                           out.attentions.shape), atol=1e-7)
    fused = encoder.apply(params, ids, mask)
    real = np.asarray(mask, bool)
    np.testing.assert_allclose(np.asarray(fused.last_hidden_state)[real], np.asarray(out.last_hidden_state)[real],
                               atol=1e-5)
    softmax = build(dataclasses.replace(config, uniform_attention=False)).apply(params, ids, mask,
                                                                              output_attentions=True)
    assert not np.allclose(np.asarray(softmax.attentions), np.asarray(out.attentions), atol=1e-3)
