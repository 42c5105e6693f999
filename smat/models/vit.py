"""Pre-LN Vision Transformer (HF ``ViTModel`` layout): patch convolution, [CLS], positions.

Images are NHWC (``[batch, height, width, channels]``), JAX's convention; HF's
PyTorch models take NCHW. For sizes other than the training size the patch position
embeddings are resized with PyTorch's bicubic kernel (A = -0.75, half-pixel centres,
clamped borders), as ``ViTEmbeddings.interpolate_pos_encoding`` does.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from smat.data.batching import resize_images
from smat.models import layers
from smat.models.base import Encoder, EncoderOutput, Params
from smat.models.config import ViTConfig

__all__ = ["vit_encoder", "bicubic_matrix", "resize_inputs", "validate_image_inputs"]


@functools.lru_cache(maxsize=64)
def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out_size, in_size] matrix of PyTorch's ``interpolate(mode="bicubic", align_corners=False)``.

    Resizing a grid ``G`` [in_h, in_w] is then ``M_h @ G @ M_w.T`` (the kernel is separable).
    """
    a = -0.75

    def near(t):  # |t| <= 1
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):  # 1 < |t| < 2
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    scale = in_size / out_size
    matrix = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        src = (i + 0.5) * scale - 0.5  # no clamp at 0 for cubic, as in PyTorch
        base = int(np.floor(src))
        t = src - base
        weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
        for offset, w in zip(range(-1, 3), weights):
            matrix[i, min(max(base + offset, 0), in_size - 1)] += w
    return matrix


def validate_image_inputs(config: ViTConfig, pixel_values) -> None:
    if pixel_values.ndim != 4:
        raise ValueError(f"pixel_values must be [batch, height, width, channels], got {tuple(pixel_values.shape)}")
    _, height, width, channels = pixel_values.shape
    if channels != config.num_channels:
        hint = ""
        if pixel_values.shape[1] == config.num_channels:
            hint = " They look NCHW (PyTorch); transpose with .transpose(0, 2, 3, 1)."
        raise ValueError(
            f"pixel_values have {channels} channels in the last axis, the model expects "
            f"{config.num_channels}.{hint}"
        )
    if height % config.patch_size or width % config.patch_size:
        raise ValueError(
            f"image size {height}x{width} is not a multiple of the patch size {config.patch_size}"
        )


def vit_encoder(config: ViTConfig) -> Encoder:
    """Builds the pure functions of a ViT. See :class:`smat.models.base.Encoder`."""
    c = config
    p = c.patch_size
    grid = c.image_size // p
    block_kwargs = dict(
        pre_norm=True, num_heads=c.num_heads, act=c.hidden_act, eps=c.layer_norm_eps,
        hidden_dropout=c.hidden_dropout, attention_dropout=c.attention_dropout,
    )

    def init(key, only=None) -> Params:
        k_patch, k_cls, k_pos, k_layers, k_pool, k_head = jax.random.split(key, 6)
        params = {}
        if only is None or "embeddings" in only:
            params["embeddings"] = {
                "patch": {
                    "kernel": layers.INIT_STD * jax.random.normal(
                        k_patch, (p, p, c.num_channels, c.hidden_size), jnp.float32),
                    "bias": jnp.zeros((c.hidden_size,), jnp.float32),
                },
                "cls": layers.INIT_STD * jax.random.normal(k_cls, (c.hidden_size,), jnp.float32),
                "position": layers.embedding_init(k_pos, c.num_patches + 1, c.hidden_size),
            }
        if only is None or "layers" in only:
            params["layers"] = jax.vmap(
                lambda k: layers.block_init(k, c.hidden_size, c.intermediate_size, qkv_bias=c.qkv_bias)
            )(jax.random.split(k_layers, c.num_layers))
        if only is None or "final_norm" in only:
            params["final_norm"] = layers.norm_init(c.hidden_size)
        if c.pooler and (only is None or "pooler" in only):
            params["pooler"] = layers.dense_init(k_pool, c.hidden_size, c.hidden_size)
        if c.head is not None and (only is None or "head" in only):
            params["head"] = {"out": layers.dense_init(k_head, c.hidden_size, c.num_labels)}
        return params

    def positions(table, height, width):
        new_h, new_w = height // p, width // p
        if (new_h, new_w) == (grid, grid):
            return table
        patch_table = table[1:].reshape(grid, grid, -1)
        m_h = jnp.asarray(bicubic_matrix(grid, new_h), table.dtype)
        m_w = jnp.asarray(bicubic_matrix(grid, new_w), table.dtype)
        resized = jnp.einsum("ij,jkd,lk->ild", m_h, patch_table, m_w).reshape(new_h * new_w, -1)
        return jnp.concatenate([table[:1], resized], axis=0)

    def embed(params, pixel_values, *, key=None, train=False):
        emb = params["embeddings"]
        batch, height, width, _ = pixel_values.shape
        patches = jax.lax.conv_general_dilated(
            pixel_values, emb["patch"]["kernel"].astype(pixel_values.dtype), window_strides=(p, p),
            padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        ) + emb["patch"]["bias"].astype(pixel_values.dtype)
        patches = patches.reshape(batch, -1, c.hidden_size)
        cls = jnp.broadcast_to(emb["cls"], (batch, 1, c.hidden_size)).astype(patches.dtype)
        x = jnp.concatenate([cls, patches], axis=1) + positions(emb["position"], height, width).astype(patches.dtype)
        return layers.dropout(x, c.hidden_dropout, key, train)

    def encode(params, embeddings, attention_mask=None, *, key=None, train=False, output_attentions=False):
        k_stack, k_head = layers.split_or_none(key, 2)
        stack = layers.run_stack(
            params["layers"], embeddings, attention_mask, num_layers=c.num_layers, key=k_stack,
            train=train, output_attentions=output_attentions, **block_kwargs,
        )
        last = layers.layer_norm(params["final_norm"], stack.hidden_states[-1], c.layer_norm_eps)
        pooled = jnp.tanh(layers.dense(params["pooler"], last[:, 0])) if "pooler" in params else None
        logits = layers.dense(params["head"]["out"], last[:, 0]) if "head" in params else None
        return EncoderOutput(
            last_hidden_state=last, hidden_states=stack.hidden_states, head_scores=stack.head_scores,
            attentions=stack.attentions, attention_logits=stack.attention_logits,
            pooled=pooled, logits=logits,
        )

    def apply(params, pixel_values, attention_mask=None, *, key=None, train=False, output_attentions=False):
        validate_image_inputs(c, pixel_values)
        k_embed, k_encode = layers.split_or_none(key, 2)
        x = embed(params, pixel_values, key=k_embed, train=train)
        return encode(params, x, attention_mask, key=k_encode, train=train, output_attentions=output_attentions)

    return Encoder(config=c, init=init, embed=embed, encode=encode, apply=apply)


def resize_inputs(encoder: Encoder, size: int, *, method: str = "bilinear") -> Encoder:
    """``encoder`` with its images resized to ``size`` x ``size`` first, inside the jitted step.

    What Hugging Face's ViT image processor does before the model, done per batch on device
    so that a data set is stored at its own resolution: CIFAR-100's 32 x 32 images reach
    ViT-B/16 at 224 x 224 (14 x 14 patches) without a 224-pixel copy of 60,000 images
    (36 GB in float32). Bilinear with half-pixel centres, as PIL's resize when enlarging;
    no antialiasing (it only matters when shrinking). The resize is linear with weights
    summing to 1, so it commutes with the per-channel ``(x - mean) / std`` normalization.
    ``embed`` and ``apply`` take images of any size; ``encode`` (after the embedding) is
    unchanged, so gradient explainers still see ``(size / patch)^2 + 1`` tokens.
    """

    def resize(pixel_values):
        if pixel_values.ndim != 4 or pixel_values.shape[-1] != encoder.config.num_channels:
            validate_image_inputs(encoder.config, pixel_values)  # raises, with the NCHW hint
        if pixel_values.shape[1:3] == (size, size):
            return pixel_values
        return resize_images(pixel_values, size, method)

    def embed(params, pixel_values, *args, **kwargs):
        return encoder.embed(params, resize(pixel_values), *args, **kwargs)

    def apply(params, pixel_values, *args, **kwargs):
        return encoder.apply(params, resize(pixel_values), *args, **kwargs)

    return encoder._replace(embed=embed, apply=apply)
