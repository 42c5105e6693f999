"""Students: an encoder, a scalar mix over every hidden state, and a classification / regression head.

Fernandes et al. 2022, Section 4 and the reference's ``models/scalar_mix.py``: each
hidden state (the embedding output and every layer) is mean-pooled over the non-pad
tokens, the pooled vectors are mixed with softmax(coeffs) x gamma (coeffs init 0, gamma
init 1), and the mix feeds a head as if it were the [CLS] vector.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from smat.models import Encoder, layers

__all__ = ["Student", "StudentOutput", "make_student", "scalar_mix"]

Array = jax.Array


class StudentOutput(NamedTuple):
    outputs: Array  # [batch, classes] logits, or [batch, 1] for regression
    head_scores: Array  # [batch, layers, heads, seq]
    mask: Array  # [batch, seq]


class Student(NamedTuple):
    """Pure functions of a student model.

    init(key, encoder_params=None) -> params; apply(params, batch, *, key=None, train=False) -> StudentOutput.
    ``batch`` holds ``input_ids`` + ``attention_mask`` (+ ``token_type_ids``) or ``pixel_values``.
    """

    init: Callable[..., dict]
    apply: Callable[..., StudentOutput]
    num_layers: int
    num_heads: int


def scalar_mix(params: dict, hidden_states: Array, mask: Array | None) -> Array:
    """softmax(coeffs) x gamma weighted sum of mask-mean-pooled hidden states.

    Args:
      params: ``{"coeffs": [layers + 1], "gamma": []}``.
      hidden_states: [layers + 1, batch, seq, hidden].
      mask: [batch, seq] or None (images: every token, CLS included).

    Returns:
      [batch, hidden].
    """
    dtype = hidden_states.dtype
    if mask is None:
        pooled = hidden_states.mean(axis=2)
    else:
        m = mask.astype(dtype)[None, :, :, None]
        pooled = (hidden_states * m).sum(2) / jnp.maximum(m.sum(2), 1.0)
    weights = jax.nn.softmax(params["coeffs"].astype(dtype)) * params["gamma"].astype(dtype)
    return jnp.einsum("l,lbh->bh", weights, pooled)


def make_student(encoder: Encoder, num_outputs: int, *, head_activation: str | None = "gelu",
                 head_dropout: float = 0.1) -> Student:
    """A student on top of any of our encoders.

    Args:
      encoder: from :func:`smat.models.build` or ``load_pretrained(...).encoder``.
      num_outputs: classes, or 1 for regression.
      head_activation: "gelu" (ELECTRA's head), "tanh" (RoBERTa's): dense -> act -> dense;
        None: one dense layer (ViT's head).
      head_dropout: dropout before each head dense layer in training.
    """
    config = encoder.config
    hidden = config.hidden_size
    is_text = config.family != "vit"

    def init(key, encoder_params=None):
        k_enc, k_dense, k_out = jax.random.split(key, 3)
        enc = encoder.init(k_enc) if encoder_params is None else encoder_params
        enc = {k: v for k, v in enc.items() if k not in ("head", "pooler")}  # a fresh head, as the reference
        head = {"out": layers.dense_init(k_out, hidden, num_outputs)}
        if head_activation is not None:
            head["dense"] = layers.dense_init(k_dense, hidden, hidden)
        mix = {"coeffs": jnp.zeros((config.num_layers + 1,), jnp.float32), "gamma": jnp.ones((), jnp.float32)}
        return {"encoder": enc, "mix": mix, "head": head}

    def apply(params, batch, *, key=None, train=False) -> StudentOutput:
        k_enc, k1, k2 = layers.split_or_none(key, 3)
        if is_text:
            mask = batch["attention_mask"]
            out = encoder.apply(params["encoder"], batch["input_ids"], mask, batch.get("token_type_ids"),
                                key=k_enc, train=train)
        else:
            out = encoder.apply(params["encoder"], batch["pixel_values"], key=k_enc, train=train)
            mask = jnp.ones(out.last_hidden_state.shape[:2], jnp.int32)
        x = scalar_mix(params["mix"], out.hidden_states, mask if is_text else None)
        head = params["head"]
        if "dense" in head:
            x = layers.dropout(x, head_dropout, k1, train)
            x = layers.activation(head_activation)(layers.dense(head["dense"], x))
        x = layers.dropout(x, head_dropout, k2, train)
        return StudentOutput(layers.dense(head["out"], x), out.head_scores, mask)

    return Student(init, apply, config.num_layers, config.num_heads)


def cast(tree: Any, dtype) -> Any:
    """Casts the floating leaves of a pytree (e.g. to float64 for gradient checks, bf16 for speed)."""
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)
