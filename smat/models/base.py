"""The encoder protocol: a NamedTuple of pure functions over a params pytree."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

Params = dict[str, Any]
Array = jax.Array


class EncoderOutput(NamedTuple):
    """What every encoder returns. Dimension names: batch, seq, layers, heads, hidden.

    Attributes:
      last_hidden_state: [batch, seq, hidden] (ViT: after the final LayerNorm, as HF).
      hidden_states: [layers + 1, batch, seq, hidden]: the embedding output, then every layer.
      head_scores: [batch, layers, heads, seq]: per-head row-mean attention logits
        s^h_j = mean over non-pad queries i of (q_i . k_j / sqrt(head_dim) + mask bias_j),
        computed as (mean query) . k_j without forming the seq x seq matrix
        (Fernandes et al. 2022, Eq. 11 with the reference's scaling and mask).
      attentions: [layers, batch, heads, seq, seq] attention probabilities, or None
        unless ``output_attentions=True``.
      attention_logits: the pre-softmax logits (same shape), or None likewise.
      pooled: [batch, hidden] BERT pooler output when the params carry a pooler, else None.
      logits: [batch, num_labels] when the params carry a classification head, else None.
    """

    last_hidden_state: Array
    hidden_states: Array
    head_scores: Array
    attentions: Array | None = None
    attention_logits: Array | None = None
    pooled: Array | None = None
    logits: Array | None = None


class Encoder(NamedTuple):
    """Pure functions of one architecture; static config captured by the factory.

    Text encoders:
      init(key, only=None) -> params; ``only``: the top-level entries to draw (e.g.
        ``("head", "pooler")``), each equal to the full init's (every entry has its own key)
      embed(params, input_ids, token_type_ids=None, *, key=None, train=False) -> [batch, seq, hidden]
      encode(params, embeddings, attention_mask, *, key=None, train=False, output_attentions=False)
        -> EncoderOutput (head applied when params carry one)
      apply(params, input_ids, attention_mask, token_type_ids=None, *, key=None, train=False,
        output_attentions=False) -> EncoderOutput
    ViT: the same with ``pixel_values`` [batch, height, width, channels] in place of ids
    and no mask (``attention_mask`` may be None).
    """

    config: Any
    init: Callable[..., Params]
    embed: Callable[..., Array]
    encode: Callable[..., EncoderOutput]
    apply: Callable[..., EncoderOutput]
