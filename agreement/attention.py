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
  to sum to 1 (court-of-xai). O(seq) max-flow problems on a graph of ``(layers + 1) * seq``
  nodes and ``layers * seq^2`` edges per instance, outside jit, on the CPU; the residual
  attention itself is computed batched in JAX. Solved by scipy's Dinic
  (``scipy.sparse.csgraph.maximum_flow``) on capacities rounded to multiples of 2^-30 by
  default, or by networkx (``solver="networkx"``, the reference's library, which is why the
  reference skipped flow on IMDb): 0.026 s against 12.5 s per 60-token, 6 x 12-head instance,
  1.6 s per 240-token one (``python -m experiments.benchmarks.agreement --skip ig --skip tau``,
  2-core CPU, 2026-12-02; the same flows to 3.7e-9).

References:
  Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020.
  Neely et al. 2022, Section 3.2 (rollout, flow; court-of-xai ``AttentionRollout``,
  ``AttentionFlow``).
"""

from __future__ import annotations

import functools

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
                   normalize: bool = True, solver: str = "scipy", flow_func=None) -> np.ndarray:
    """Attention flow per instance, outside jit.

    Args:
      attentions: [layers, batch, heads, seq, seq].
      mask: [batch, seq] 1 on real tokens; default all.
      query: the top-layer token the flow starts from (0: [CLS]).
      residual: the weight of the identity in :func:`residual_attention`.
      normalize: divide each row by its sum (court-of-xai); False gives raw flow values.
      solver: ``"scipy"`` (Dinic's algorithm in ``scipy.sparse.csgraph.maximum_flow``, which takes
        int32 capacities: each capacity is rounded to a multiple of 2^-30, so a flow is off by at
        most 2^-31 per edge of its minimum cut) or ``"networkx"`` (float capacities).
      flow_func: with ``solver="networkx"``, its max-flow algorithm (default: preflow-push).

    Returns:
      numpy [batch, seq]: the (normalised) max-flow from (``query``, top layer) to each
      real input token, zero on padding.
    """
    if solver not in ("scipy", "networkx"):
        raise ValueError(f"unknown max-flow solver {solver!r}; known: 'scipy', 'networkx'")
    if flow_func is not None and solver != "networkx":
        raise ValueError("flow_func is a networkx algorithm: pass solver='networkx' with it")
    layers = np.asarray(jax.jit(residual_attention, static_argnames="residual")(attentions, mask,
                                                                                residual=residual), np.float64)
    num_layers, batch, seq, _ = layers.shape
    valid = np.ones((batch, seq), bool) if mask is None else np.asarray(mask).astype(bool)
    flows = np.zeros((batch, seq), np.float64)
    solve = _flows_scipy if solver == "scipy" else functools.partial(_flows_networkx, flow_func=flow_func)
    for b in range(batch):
        tokens = np.flatnonzero(valid[b])
        if query in tokens:
            flows[b, tokens] = solve(layers[:, b], tokens, query)
        if normalize:
            total = flows[b].sum()
            flows[b] = flows[b] / total if total > 0 else flows[b]
    return flows


_FLOW_SCALE = 2**30  # int32 capacities: a row of A' sums to 1, so no flow exceeds 2^30 (+ rounding)


def _flows_scipy(layers: np.ndarray, tokens: np.ndarray, query: int) -> np.ndarray:
    """Max-flow from (query, top) to every (j, 0), j in ``tokens``; node (l, i) is ``l * seq + i``."""
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import maximum_flow

    num_layers, seq, _ = layers.shape
    rows, cols, caps = [], [], []
    for layer in range(1, num_layers + 1):
        weights = layers[layer - 1][np.ix_(tokens, tokens)]
        i, j = np.nonzero(weights > 0)
        rows.append(layer * seq + tokens[i])
        cols.append((layer - 1) * seq + tokens[j])
        caps.append(np.rint(weights[i, j] * _FLOW_SCALE))
    rows, cols, caps = np.concatenate(rows), np.concatenate(cols), np.concatenate(caps)
    # scipy casts wider integers to int32 silently (2^40 becomes 0): keep every sum below 2^31.
    if caps.size and np.bincount(rows, caps, minlength=(num_layers + 1) * seq).max() >= 2**31:
        raise ValueError("attention rows must sum to at most 1 for the int32 max-flow capacities")
    graph = csr_array((caps.astype(np.int32), (rows, cols)), shape=((num_layers + 1) * seq,) * 2)
    source = num_layers * seq + query
    return np.array([maximum_flow(graph, source, int(j), method="dinic").flow_value for j in tokens],
                    np.float64) / _FLOW_SCALE


def _flows_networkx(layers: np.ndarray, tokens: np.ndarray, query: int, *, flow_func=None) -> np.ndarray:
    import networkx as nx

    num_layers = layers.shape[0]
    graph = nx.DiGraph()
    for layer in range(1, num_layers + 1):
        weights = layers[layer - 1]
        graph.add_edges_from(((layer, i), (layer - 1, j), {"capacity": float(weights[i, j])})
                             for i in tokens for j in tokens if weights[i, j] > 0)
    source = (num_layers, query)
    return np.array([nx.maximum_flow_value(graph, source, (0, int(j)), capacity="capacity", flow_func=flow_func)
                     if source in graph and (0, int(j)) in graph else 0.0 for j in tokens], np.float64)
