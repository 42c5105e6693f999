"""Pure layer functions shared by every encoder: dense, LayerNorm, attention, blocks.

Layer parameters of a transformer are stacked along a leading ``layers`` axis and the
stack runs under one ``jax.lax.scan``, so compile time does not grow with depth and
per-layer outputs (hidden states, head scores, attention maps) come out stacked.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
Params = dict[str, Any]

INIT_STD = 0.02


# ----------------------------------------------------------------------------- init


def dense_init(key, fan_in: int, fan_out: int, *, bias: bool = True, std: float = INIT_STD) -> Params:
    params = {"kernel": std * jax.random.normal(key, (fan_in, fan_out), jnp.float32)}
    if bias:
        params["bias"] = jnp.zeros((fan_out,), jnp.float32)
    return params


def norm_init(size: int) -> Params:
    return {"scale": jnp.ones((size,), jnp.float32), "bias": jnp.zeros((size,), jnp.float32)}


def embedding_init(key, rows: int, width: int, std: float = INIT_STD) -> Array:
    return std * jax.random.normal(key, (rows, width), jnp.float32)


# ---------------------------------------------------------------------------- apply


def dense(params: Params, x: Array) -> Array:
    y = x @ params["kernel"].astype(x.dtype)
    if "bias" in params:
        y = y + params["bias"].astype(x.dtype)
    return y


def stat_dtype(dtype) -> jnp.dtype:
    """At least float32 for statistics and softmax (bf16 inputs), float64 kept as is."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def layer_norm(params: Params, x: Array, eps: float) -> Array:
    """LayerNorm over the last axis, statistics in at least float32 whatever the input dtype."""
    dtype = stat_dtype(x.dtype)
    xs = x.astype(dtype)
    mean = xs.mean(-1, keepdims=True)
    var = jnp.square(xs - mean).mean(-1, keepdims=True)
    y = (xs - mean) * jax.lax.rsqrt(var + eps)
    return (y * params["scale"].astype(dtype) + params["bias"].astype(dtype)).astype(x.dtype)


def activation(name: str):
    return {
        "gelu": lambda x: jax.nn.gelu(x, approximate=False),
        "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
        "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
        "relu": jax.nn.relu,
        "tanh": jnp.tanh,
        "silu": jax.nn.silu,
    }[name]


def dropout(x: Array, rate: float, key, train: bool) -> Array:
    if not train or rate == 0.0:
        return x
    if key is None:
        raise ValueError("train=True with dropout needs an RNG key: pass key=jax.random.key(...)")
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


def split_or_none(key, num: int):
    return (None,) * num if key is None else tuple(jax.random.split(key, num))


# ------------------------------------------------------------------------ attention


class AttentionOutput(NamedTuple):
    out: Array  # [batch, seq, hidden]
    head_scores: Array  # [batch, heads, seq]
    probs: Array | None  # [batch, heads, seq, seq]
    logits: Array | None


def attention_init(key, hidden: int, *, bias: bool = True) -> Params:
    kq, kk, kv, ko = jax.random.split(key, 4)
    return {
        "query": dense_init(kq, hidden, hidden, bias=bias),
        "key": dense_init(kk, hidden, hidden, bias=bias),
        "value": dense_init(kv, hidden, hidden, bias=bias),
        "attn_out": dense_init(ko, hidden, hidden),
    }


def self_attention(
    params: Params,
    x: Array,
    key_bias: Array,
    query_weights: Array,
    *,
    num_heads: int,
    dropout_rate: float,
    key=None,
    train: bool = False,
    output_attentions: bool = False,
    uniform: bool = False,
) -> AttentionOutput:
    """Multi-head self-attention that also returns the per-head row-mean scores.

    Args:
      params: ``query``, ``key``, ``value``, ``attn_out`` dense params.
      x: [batch, seq, hidden].
      key_bias: [batch, seq] additive bias on keys (0 for tokens, a large negative for pads).
      query_weights: [batch, seq] non-negative weights summing to 1 over the valid queries.
      output_attentions: also return the [batch, heads, seq, seq] probabilities and logits.
      uniform: attend uniformly to the keys that ``key_bias`` leaves open (queries zeroed).

    Returns:
      An :class:`AttentionOutput`.
    """
    batch, seq, hidden = x.shape
    head_dim = hidden // num_heads
    scale = head_dim**-0.5

    # One fused [hidden, 3 * hidden] projection: a bigger matmul runs closer to peak.
    names = ("query", "key", "value")
    kernel = jnp.concatenate([params[n]["kernel"] for n in names], axis=1).astype(x.dtype)
    qkv = x @ kernel
    if "bias" in params["query"]:
        qkv = qkv + jnp.concatenate([params[n]["bias"] for n in names]).astype(x.dtype)
    # [3, batch, heads, seq, head_dim]: batch dims leading, as XLA's dot prefers.
    q, k, v = qkv.reshape(batch, seq, 3, num_heads, head_dim).transpose(2, 0, 3, 1, 4)
    if uniform:
        q = jnp.zeros_like(q)
    # s^h_j = mean_i(q_i) . k_j * scale + bias_j: the row mean of the logits, O(seq) not O(seq^2).
    mean_query = jnp.einsum("bhqd,bq->bhd", q, query_weights.astype(q.dtype))
    head_scores = jnp.einsum("bhd,bhkd->bhk", mean_query, k) * scale + key_bias[:, None, :].astype(q.dtype)
    bias = key_bias[:, None, None, :].astype(q.dtype)
    # (float64 takes the explicit path: jax's fused op promotes to float32 internally.)
    if not output_attentions and not (train and dropout_rate > 0) and x.dtype != jnp.float64:
        # Fused attention: never materializes seq x seq where the backend has a kernel (cuDNN).
        context = jax.nn.dot_product_attention(
            q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3), bias=bias, scale=scale)
        out = dense(params["attn_out"], context.reshape(batch, seq, hidden))
        return AttentionOutput(out, head_scores, None, None)
    logits = jnp.einsum("bhqd,bhkd->bhqk", q * scale, k) + bias
    probs = jax.nn.softmax(logits.astype(stat_dtype(x.dtype)), axis=-1).astype(x.dtype)
    dropped = dropout(probs, dropout_rate, key, train)
    context = jnp.einsum("bhqk,bhkd->bqhd", dropped, v).reshape(batch, seq, hidden)
    out = dense(params["attn_out"], context)
    return AttentionOutput(out, head_scores, probs if output_attentions else None,
                           logits if output_attentions else None)


# --------------------------------------------------------------------------- blocks


def block_init(key, hidden: int, intermediate: int, *, qkv_bias: bool = True) -> Params:
    ka, ki, ko = jax.random.split(key, 3)
    return {
        **attention_init(ka, hidden, bias=qkv_bias),
        "attn_norm": norm_init(hidden),
        "ffn_in": dense_init(ki, hidden, intermediate),
        "ffn_out": dense_init(ko, intermediate, hidden),
        "ffn_norm": norm_init(hidden),
    }


def transformer_block(
    params: Params,
    x: Array,
    key_bias: Array,
    query_weights: Array,
    *,
    pre_norm: bool,
    num_heads: int,
    act: str,
    eps: float,
    hidden_dropout: float,
    attention_dropout: float,
    key=None,
    train: bool = False,
    output_attentions: bool = False,
    uniform_attention: bool = False,
) -> tuple[Array, AttentionOutput]:
    """One transformer layer.

    ``pre_norm=False`` is the post-LN block of BERT / ELECTRA / RoBERTa / XLM-R /
    DistilBERT: ``h = LN(x + Attn(x)); y = LN(h + FFN(h))``. ``pre_norm=True`` is
    ViT's: ``h = x + Attn(LN(x)); y = h + FFN(LN(h))``.
    """
    k_attn, k_attn_out, k_ffn = split_or_none(key, 3)
    attn_in = layer_norm(params["attn_norm"], x, eps) if pre_norm else x
    attn = self_attention(
        params, attn_in, key_bias, query_weights, num_heads=num_heads,
        dropout_rate=attention_dropout, key=k_attn, train=train, output_attentions=output_attentions,
        uniform=uniform_attention,
    )
    h = x + dropout(attn.out, hidden_dropout, k_attn_out, train)
    if not pre_norm:
        h = layer_norm(params["attn_norm"], h, eps)
    ffn_in = layer_norm(params["ffn_norm"], h, eps) if pre_norm else h
    ffn = dense(params["ffn_out"], activation(act)(dense(params["ffn_in"], ffn_in)))
    y = h + dropout(ffn, hidden_dropout, k_ffn, train)
    if not pre_norm:
        y = layer_norm(params["ffn_norm"], y, eps)
    return y, attn


class StackOutput(NamedTuple):
    hidden_states: Array  # [layers + 1, batch, seq, hidden]
    head_scores: Array  # [batch, layers, heads, seq]
    attentions: Array | None
    attention_logits: Array | None


def run_stack(
    layer_params: Params,
    x: Array,
    attention_mask: Array | None,
    *,
    num_layers: int,
    mask_bias: float = -1e10,
    key=None,
    **block_kwargs,
) -> StackOutput:
    """Runs ``num_layers`` stacked blocks under ``lax.scan``.

    Args:
      layer_params: block params with a leading ``layers`` axis.
      x: [batch, seq, hidden] embedding output.
      attention_mask: [batch, seq] with 1 for tokens and 0 for padding, or None.
      key: dropout key (split per layer).
      block_kwargs: forwarded to :func:`transformer_block`.
    """
    batch, seq, _ = x.shape
    if attention_mask is None:
        valid = jnp.ones((batch, seq), stat_dtype(x.dtype))
    else:
        valid = attention_mask.astype(stat_dtype(x.dtype))
    key_bias = jnp.where(valid > 0, 0.0, mask_bias).astype(valid.dtype)
    query_weights = valid / jnp.maximum(valid.sum(-1, keepdims=True), 1.0)
    keys = None if key is None else jax.random.split(key, num_layers)

    def step(h, xs):
        params, layer_key = xs
        y, attn = transformer_block(params, h, key_bias, query_weights, key=layer_key, **block_kwargs)
        return y, (y, attn.head_scores, attn.probs, attn.logits)

    _, (states, scores, probs, logits) = jax.lax.scan(step, x, (layer_params, keys))
    hidden_states = jnp.concatenate([x[None], states], axis=0)
    return StackOutput(hidden_states, jnp.swapaxes(scores, 0, 1), probs, logits)
