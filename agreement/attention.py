"""Attention-based explanations of transformers: rollout and flow (Abnar & Zuidema 2020).

Inputs are attention probabilities ``[layers, batch, heads, seq, seq]`` (query rows, key
columns), the layout of ``smat.models.EncoderOutput.attentions`` (``encode(...,
output_attentions=True)``); a Hugging Face tuple of ``[batch, heads, seq, seq]`` becomes
the same with ``jnp.stack``. ``mask`` [batch, seq] is 1 on real tokens (special tokens
included), 0 on padding.

Both methods start from the per-layer residual-augmented attention of
:func:`residual_attention`: the head mean ``A``, then ``A' = 0.5 A + 0.5 I`` restricted to
the real tokens with rows renormalised (court-of-xai computes ``L1-normalise(A + I)``,
the same for softmax rows).

- :func:`rollout`: ``R = A'_L ... A'_1``; the explanation is the [CLS] row of ``R``
  (``query=0``), a distribution over the real tokens, [CLS] and [SEP] included. Batched
  and jittable (a ``lax.scan`` over layers).
- :func:`attention_flow`: the layered graph with capacity ``A'_l[i, j]`` on the edge from
  token i at layer l to token j at layer l - 1; the score of token j is the maximum flow
  from ([CLS], top layer) to (j, input layer), one max-flow problem per token, normalised
  to sum to 1 (court-of-xai). Solved with networkx (``maximum_flow_value``, preflow-push
  by default) per instance, outside jit, on the CPU: O(seq) max-flow problems on a graph
  of ``(layers + 1) * seq`` nodes and ``layers * seq^2`` edges per instance, which is why
  the reference skipped it on IMDb. The residual attention itself is computed batched in JAX.

References:
  Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020.
  Neely et al. 2022, Section 3.2 (rollout, flow; court-of-xai ``AttentionRollout``,
  ``AttentionFlow``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["residual_attention", "rollout_matrix", "rollout", "attention_flow"]

Array = jax.Array


def residual_attention(attentions: Array, mask: Array | None = None, *, residual: float = 0.5) -> Array:
    """Head-averaged attention with the residual connection, per layer.

    ``A'_l = (1 - residual) mean_h A_lh + residual I`` on the real tokens (rows and columns
    of padding are zero), rows renormalised to sum to 1.

    Args:
      attentions: [layers, batch, heads, seq, seq] attention probabilities.
      mask: [batch, seq] 1 on real tokens; default all.
      residual: the weight of the identity (0.5 in Abnar & Zuidema).

    Returns:
      [layers, batch, seq, seq], row-stochastic on the real tokens.
    """
    attentions = jnp.asarray(attentions)
    dtype = attentions.dtype if jnp.issubdtype(attentions.dtype, jnp.floating) else jnp.float32
    mean = jnp.mean(attentions.astype(dtype), axis=2)
    seq = mean.shape[-1]
    valid = jnp.ones(mean.shape[1:3], bool) if mask is None else jnp.asarray(mask).astype(bool)
    pair = (valid[:, :, None] & valid[:, None, :])[None]
    mixed = (1 - residual) * mean + residual * jnp.eye(seq, dtype=dtype)
    mixed = jnp.where(pair, mixed, jnp.zeros((), dtype))
    total = jnp.sum(mixed, axis=-1, keepdims=True)
    return mixed / jnp.where(total > 0, total, jnp.ones((), dtype))


def rollout_matrix(attentions: Array, mask: Array | None = None, *, residual: float = 0.5) -> Array:
    """Attention rollout ``A'_L ... A'_1`` (later layers on the left): [batch, seq, seq].

    Row i is how much token i at the top layer draws on each input token.
    """
    layers = residual_attention(attentions, mask, residual=residual)

    def step(total, layer):
        return jnp.einsum("bij,bjk->bik", layer, total), None

    total, _ = jax.lax.scan(step, layers[0], layers[1:])
    return total


def rollout(attentions: Array, mask: Array | None = None, *, query: int = 0, residual: float = 0.5) -> Array:
    """Attention rollout explanation: row ``query`` ([CLS]) of :func:`rollout_matrix`.

    Args:
      attentions: [layers, batch, heads, seq, seq].
      mask: [batch, seq] 1 on real tokens; default all.
      query: the position explained (0: [CLS]).
      residual: the weight of the identity.

    Returns:
      [batch, seq], summing to 1 over the real tokens, zero on padding.

    Example:
      >>> attn = jnp.full((2, 1, 1, 2, 2), 0.5)
      >>> rollout(attn).tolist()
      [[0.625, 0.375]]
    """
    return rollout_matrix(attentions, mask, residual=residual)[:, query]


def attention_flow(attentions: Array, mask: Array | None = None, *, query: int = 0, residual: float = 0.5,
                   normalize: bool = True, flow_func=None) -> np.ndarray:
    """Attention flow per instance with networkx max-flow (outside jit).

    Args:
      attentions: [layers, batch, heads, seq, seq].
      mask: [batch, seq] 1 on real tokens; default all.
      query: the top-layer token the flow starts from (0: [CLS]).
      residual: the weight of the identity in :func:`residual_attention`.
      normalize: divide each row by its sum (court-of-xai); False gives raw flow values.
      flow_func: a networkx max-flow algorithm (default: networkx's, preflow-push).

    Returns:
      numpy [batch, seq]: the (normalised) max-flow from (``query``, top layer) to each
      real input token, zero on padding.
    """
    import networkx as nx

    layers = np.asarray(jax.jit(residual_attention, static_argnames="residual")(attentions, mask,
                                                                                residual=residual), np.float64)
    num_layers, batch, seq, _ = layers.shape
    valid = np.ones((batch, seq), bool) if mask is None else np.asarray(mask).astype(bool)
    flows = np.zeros((batch, seq), np.float64)
    for b in range(batch):
        tokens = np.flatnonzero(valid[b])
        graph = nx.DiGraph()
        for layer in range(1, num_layers + 1):
            weights = layers[layer - 1, b]
            graph.add_edges_from(((layer, i), (layer - 1, j), {"capacity": float(weights[i, j])})
                                 for i in tokens for j in tokens if weights[i, j] > 0)
        source = (num_layers, query)
        for j in tokens:
            sink = (0, int(j))
            if source not in graph or sink not in graph:
                continue
            flows[b, j] = nx.maximum_flow_value(graph, source, sink, capacity="capacity", flow_func=flow_func)
        if normalize:
            total = flows[b].sum()
            flows[b] = flows[b] / total if total > 0 else flows[b]
    return flows
