"""Post-LN transformer text encoders: BERT / MiniLM, ELECTRA, RoBERTa, XLM-R, DistilBERT.

The families share :func:`smat.models.layers.transformer_block`; they differ only in
the embedding function (token types, RoBERTa's padding-offset positions, ELECTRA's
``embeddings_project``), the checkpoint key map (``smat.models.checkpoint``) and the
classification head.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from smat.models import layers
from smat.models.base import Encoder, EncoderOutput, Params
from smat.models.config import TextConfig

__all__ = ["text_encoder", "validate_text_inputs", "check_token_ids", "position_ids"]


def validate_text_inputs(config: TextConfig, input_ids, attention_mask, token_type_ids=None) -> None:
    """Raises ValueError for inputs that would otherwise give silent garbage.

    Shapes are checked always (they are static, even under ``jit``); id values are
    checked whenever they are concrete, i.e. outside ``jit``. ``jnp.take`` on an
    out-of-range id returns NaN (mode="fill") or a clipped row under ``jit``; the
    SMaT reference's XLM-R inputs turned into NaNs exactly that way.
    """
    _check_shapes(config, input_ids, attention_mask, token_type_ids)
    check_token_ids(config, input_ids, token_type_ids)


def _check_shapes(config: TextConfig, input_ids, attention_mask, token_type_ids) -> None:
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
    if attention_mask is None:
        raise ValueError("attention_mask is required for text encoders (1 = token, 0 = padding)")
    if tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids has "
            f"{tuple(input_ids.shape)}; they must match"
        )
    if token_type_ids is not None:
        if config.type_vocab_size == 0:
            raise ValueError(f"{config.family} has no token-type embeddings; pass token_type_ids=None")
        if tuple(token_type_ids.shape) != tuple(input_ids.shape):
            raise ValueError(
                f"token_type_ids has shape {tuple(token_type_ids.shape)} but input_ids has "
                f"{tuple(input_ids.shape)}"
            )


def check_token_ids(config: TextConfig, input_ids, token_type_ids=None) -> None:
    """Raises ValueError for ids outside the tables; values are checked when concrete (outside jit)."""
    seq = input_ids.shape[-1]
    if seq > config.max_length:
        raise ValueError(
            f"sequence length {seq} exceeds the position table of this {config.family} model "
            f"({config.max_length} tokens); truncate the input (max_length={config.max_length})"
        )
    for name, ids, size in (
        ("input_ids", input_ids, config.vocab_size),
        ("token_type_ids", token_type_ids, config.type_vocab_size),
    ):
        if ids is None or isinstance(ids, jax.core.Tracer):
            continue
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{name} must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= size):
            bad = ids[(ids < 0) | (ids >= size)]
            raise ValueError(
                f"{name} holds ids outside [0, {size}): e.g. {bad[:5].tolist()}; "
                "was the text tokenized with this model's tokenizer?"
            )


def position_ids(config: TextConfig, input_ids):
    """Position ids as HF builds them: 0..seq-1, or RoBERTa's padding-offset cumsum."""
    batch, seq = input_ids.shape
    if config.family in ("roberta", "xlm-roberta"):
        not_pad = (input_ids != config.pad_token_id).astype(jnp.int32)
        return jnp.cumsum(not_pad, axis=1) * not_pad + config.pad_token_id
    return jnp.broadcast_to(jnp.arange(seq, dtype=jnp.int32), (batch, seq))


def _lookup(table, ids):
    # Ids were validated on the host; "clip" keeps a traced out-of-range id from
    # becoming NaN (jnp.take's default fill) in code that skipped validation.
    return jnp.take(table, ids, axis=0, mode="clip")


def text_encoder(config: TextConfig) -> Encoder:
    """Builds the pure functions of a text encoder.

    Args:
      config: a :class:`TextConfig`.

    Returns:
      An :class:`Encoder`. ``apply`` validates its inputs (see
      :func:`validate_text_inputs`) then runs ``embed`` and ``encode``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from smat.models import TextConfig, text_encoder
      >>> cfg = TextConfig(vocab_size=50, hidden_size=8, num_layers=2, num_heads=2,
      ...                  intermediate_size=16, max_position_embeddings=16)
      >>> enc = text_encoder(cfg)
      >>> params = enc.init(jax.random.key(0))
      >>> out = enc.apply(params, jnp.ones((1, 5), jnp.int32), jnp.ones((1, 5), jnp.int32))
      >>> out.hidden_states.shape, out.head_scores.shape
      ((3, 1, 5, 8), (1, 2, 2, 5))
    """
    c = config
    width = c.embedding_width
    block_kwargs = dict(
        pre_norm=False, num_heads=c.num_heads, act=c.hidden_act, eps=c.layer_norm_eps,
        hidden_dropout=c.hidden_dropout, attention_dropout=c.attention_dropout,
        uniform_attention=c.uniform_attention,
    )
    head_dropout = c.hidden_dropout if c.classifier_dropout is None else c.classifier_dropout

    def init(key, only=None) -> Params:
        k_word, k_pos, k_type, k_proj, k_layers, k_pool, k_head = jax.random.split(key, 7)
        params = {}
        if only is None or "embeddings" in only:
            emb = {
                "word": layers.embedding_init(k_word, c.vocab_size, width),
                "position": layers.embedding_init(k_pos, c.max_position_embeddings, width),
                "norm": layers.norm_init(width),
            }
            if c.type_vocab_size:
                emb["token_type"] = layers.embedding_init(k_type, c.type_vocab_size, width)
            if width != c.hidden_size:
                emb["project"] = layers.dense_init(k_proj, width, c.hidden_size)
            params["embeddings"] = emb
        if only is None or "layers" in only:
            block_keys = jax.random.split(k_layers, c.num_layers)
            params["layers"] = jax.vmap(lambda k: layers.block_init(k, c.hidden_size, c.intermediate_size))(block_keys)
        if c.pooler and (only is None or "pooler" in only):
            params["pooler"] = layers.dense_init(k_pool, c.hidden_size, c.hidden_size)
        if c.head is not None and (only is None or "head" in only):
            params["head"] = _head_init(k_head, c)
        return params

    def embed(params, input_ids, token_type_ids=None, *, key=None, train=False):
        check_token_ids(c, input_ids, token_type_ids)
        emb = params["embeddings"]
        x = _lookup(emb["word"], input_ids) + _lookup(emb["position"], position_ids(c, input_ids))
        if "token_type" in emb:
            types = jnp.zeros_like(input_ids) if token_type_ids is None else token_type_ids
            x = x + _lookup(emb["token_type"], types)
        x = layers.layer_norm(emb["norm"], x, c.layer_norm_eps)
        x = layers.dropout(x, c.hidden_dropout, key, train)
        if "project" in emb:
            x = layers.dense(emb["project"], x)
        return x

    def encode(params, embeddings, attention_mask, *, key=None, train=False, output_attentions=False):
        k_stack, k_head = layers.split_or_none(key, 2)
        stack = layers.run_stack(
            params["layers"], embeddings, attention_mask, num_layers=c.num_layers,
            mask_bias=c.mask_bias, key=k_stack, train=train, output_attentions=output_attentions,
            **block_kwargs,
        )
        last = stack.hidden_states[-1]
        pooled = jnp.tanh(layers.dense(params["pooler"], last[:, 0])) if "pooler" in params else None
        logits = None
        if "head" in params:
            logits = _head_apply(c, params["head"], last, pooled, head_dropout, k_head, train)
        return EncoderOutput(
            last_hidden_state=last, hidden_states=stack.hidden_states, head_scores=stack.head_scores,
            attentions=stack.attentions, attention_logits=stack.attention_logits,
            pooled=pooled, logits=logits,
        )

    def apply(params, input_ids, attention_mask, token_type_ids=None, *, key=None, train=False,
              output_attentions=False):
        _check_shapes(c, input_ids, attention_mask, token_type_ids)  # embed() checks the ids
        k_embed, k_encode = layers.split_or_none(key, 2)
        x = embed(params, input_ids, token_type_ids, key=k_embed, train=train)
        return encode(params, x, attention_mask, key=k_encode, train=train, output_attentions=output_attentions)

    return Encoder(config=c, init=init, embed=embed, encode=encode, apply=apply)


# ---------------------------------------------------------------- classification heads


def _head_init(key, c: TextConfig) -> Params:
    k1, k2 = jax.random.split(key)
    h = c.hidden_size
    if c.head == "bert":  # dropout -> linear on the pooler output
        return {"out": layers.dense_init(k2, h, c.num_labels)}
    # electra / roberta / distilbert: dense -> act -> linear on [CLS]
    return {"dense": layers.dense_init(k1, h, h), "out": layers.dense_init(k2, h, c.num_labels)}


_HEAD_ACTIVATION = {"electra": "gelu", "roberta": "tanh", "distilbert": "relu"}


def _head_apply(c: TextConfig, params, last_hidden, pooled, rate, key, train):
    k1, k2 = layers.split_or_none(key, 2)
    if c.head == "bert":
        if pooled is None:
            raise ValueError("the BERT classification head needs the pooler params")
        return layers.dense(params["out"], layers.dropout(pooled, rate, k1, train))
    x = last_hidden[:, 0]
    if c.head != "distilbert":  # DistilBERT applies no dropout before pre_classifier
        x = layers.dropout(x, rate, k1, train)
    x = layers.activation(_HEAD_ACTIVATION[c.head])(layers.dense(params["dense"], x))
    x = layers.dropout(x, rate, k2, train)
    return layers.dense(params["out"], x)
