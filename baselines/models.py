"""BiLSTM + additive attention classifiers of Jain & Wallace (2019) and Wiegreffe & Pinter (2019).

The base model of both papers (J&W ``EncoderRNN`` + ``TanhAttention`` + ``AttnDecoder``,
reused unchanged by W&P): embeddings -> one-layer BiLSTM (``hidden_size`` per direction,
reads ``<SOS>``/``<EOS>``, never consumes padding) -> additive attention
``s_t = w2^T tanh(W1 h_t + b1)`` with a masked softmax over the real tokens only (``<SOS>``,
``<EOS>`` and padding get exactly zero weight) -> ``Linear(2 * hidden_size, classes)`` on the
attention-weighted context. With ``classes = 1`` the logit feeds a sigmoid, as in the
reference's binary tasks. ``attention="uniform"`` is W&P's frozen baseline (Section 3.2,
Table 2): alpha_t = 1 / (#real tokens) on the real tokens, at train and test time.

``pair=True`` is J&W's pair-sequence model (SNLI / QA, their Section 3): separate premise
and hypothesis encoders (each with its own embedding table), attention over the premise
conditioned on the hypothesis' final BiLSTM state ``q``:
``s_t = w2^T tanh(W1p h_t + b1p + W1q q + b1q)``, and the decoder
``W2 tanh(W1p' c + b1p' + W1q' q + b1q') + b2``. (J&W's invalid-entity mask for CNN / bAbI
is not implemented: every class is valid, as for SNLI.)

Conventions:
  * Inputs are batch-first and right-padded: ``attention_mask`` is 1 on a prefix of each row
    (the real tokens, ``<SOS>``/``<EOS>`` included) and 0 after it.
  * Attention is over the *content* tokens: ``attention_mask`` minus the special tokens.
    The special positions come from ``batch["special_mask"]`` (1 on ``<SOS>``/``<EOS>``)
    when the batch has one, otherwise from ``config.special_ids`` (ids 2 and 3, the
    reference vocabulary's ``<SOS>`` and ``<EOS>``) -- the reference's mask
    ``[1] + [0] * (len - 2) + [1] * (pad + 1)`` in either case.
  * LSTM parameters follow PyTorch's ``nn.LSTM``: gate order (i, f, g, o), two bias
    vectors, stored transposed (``input_kernel = weight_ih_l0.T``) so a PyTorch state dict
    loads by transposition. Every initialisation is PyTorch's default, as the reference
    used: U(+-1/sqrt(hidden_size)) for the LSTM, U(+-1/sqrt(fan_in)) for linear weights and
    biases, N(0, 1) embeddings with the pad row zeroed when no pretrained table is given.
  * There is no dropout in the reference; ``key`` and ``train`` are accepted for the shared
    component protocol and ignored.

References:
  Jain & Wallace, "Attention is not Explanation", NAACL 2019, Section 3 (models).
  Wiegreffe & Pinter, "Attention is not not Explanation", EMNLP 2019, Sections 3.1-3.2.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from smat import simplex

__all__ = [
    "BiLSTMConfig", "LSTMState", "Model", "additive_attention", "additive_attention_init", "bilstm",
    "bilstm_init", "bilstm_classifier", "content_mask", "flat_pair", "lstm_cell", "lstm_init", "lstm_layer",
    "reverse_index", "uniform_attention",
]

Array = jax.Array
Params = dict[str, Any]

PAD_ID, UNK_ID, SOS_ID, EOS_ID = 0, 1, 2, 3  # the reference vocabulary's reserved ids
ATTENTION_KINDS = ("additive", "uniform")


@dataclasses.dataclass(frozen=True)
class BiLSTMConfig:
    """Static configuration of :func:`bilstm_classifier`.

    Attributes:
      vocab_size: rows of the embedding table (reserved ids included).
      embedding_dim: 300 in the papers (fastText / word2vec); GloVe-50 offline.
      hidden_size: LSTM units per direction (the BiLSTM output is ``2 * hidden_size``).
      attention_hidden: width of the tanh layer of the attention (``2 * hidden_size // 2``
        in the reference); also the width of the pair decoder's tanh layer.
      num_classes: 1 for the reference's binary sigmoid output; 3 for SNLI.
      attention: "additive" (learned tanh attention) or "uniform" (W&P's frozen baseline).
      pair: the premise / hypothesis model of J&W (attention over the premise only).
      special_ids: token ids that get zero attention when the batch has no ``special_mask``.
      pad_id: the padding id; its embedding row is zeroed at init (``padding_idx=0``).
      zero_pad_row: False keeps the pad row of the given embeddings as it is (court-of-xai's
        AllenNLP embedding had no padding index: its pad row was a random draw).
    """

    vocab_size: int
    embedding_dim: int = 300
    hidden_size: int = 128
    attention_hidden: int = 128
    num_classes: int = 1
    attention: str = "additive"
    pair: bool = False
    special_ids: tuple[int, ...] = (SOS_ID, EOS_ID)
    pad_id: int = PAD_ID
    zero_pad_row: bool = True

    def __post_init__(self):
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        for name in ("vocab_size", "embedding_dim", "hidden_size", "attention_hidden", "num_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id {self.pad_id} is outside the vocabulary of {self.vocab_size}")


class LSTMState(NamedTuple):
    hidden: Array  # [batch, hidden]
    cell: Array  # [batch, hidden]


class Model(NamedTuple):
    """Pure functions of an attention classifier.

    Attributes:
      init: ``(key, embeddings=None) -> params``. ``embeddings`` is an optional
        [vocab, embedding_dim] array that initialises the (trainable) table.
      apply: ``(params, batch, *, key=None, train=False, attention_override=None,
        embeddings=None) -> (logits [batch, classes], aux)``.
      embed: ``(params, batch) -> embeddings``, the lookup that ``apply(embeddings=...)``
        skips (gradient explainers differentiate with respect to its output).
      decode: ``(params, aux, attention) -> logits``: the decoder on the hidden states held
        in ``aux`` with any attention [..., batch, seq] (J&W's adversary, permutations).
      config: the static :class:`BiLSTMConfig`.
    """

    init: Callable[..., Params]
    apply: Callable[..., tuple[Array, dict]]
    embed: Callable[..., Any]
    decode: Callable[..., Array]
    config: BiLSTMConfig


# ----------------------------------------------------------------------------- init


def _uniform(key, shape, bound: float) -> Array:
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _linear_init(key, fan_in: int, fan_out: int, *, bias: bool = True) -> Params:
    """PyTorch ``nn.Linear`` default: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)), same bias bound."""
    bound = 1.0 / math.sqrt(fan_in)
    k_w, k_b = jax.random.split(key)
    params = {"kernel": _uniform(k_w, (fan_in, fan_out), bound)}
    if bias:
        params["bias"] = _uniform(k_b, (fan_out,), bound)
    return params


def _linear(params: Params, x: Array) -> Array:
    y = x @ params["kernel"].astype(x.dtype)
    if "bias" in params:
        y = y + params["bias"].astype(x.dtype)
    return y


def lstm_init(key, input_size: int, hidden_size: int) -> Params:
    """One LSTM direction, PyTorch layout (gates i, f, g, o) transposed, U(+-1/sqrt(hidden)).

    Returns:
      ``{"input_kernel": [input, 4 * hidden], "hidden_kernel": [hidden, 4 * hidden],
      "input_bias": [4 * hidden], "hidden_bias": [4 * hidden]}``.
    """
    bound = 1.0 / math.sqrt(hidden_size)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    return {
        "input_kernel": _uniform(k1, (input_size, 4 * hidden_size), bound),
        "hidden_kernel": _uniform(k2, (hidden_size, 4 * hidden_size), bound),
        "input_bias": _uniform(k3, (4 * hidden_size,), bound),
        "hidden_bias": _uniform(k4, (4 * hidden_size,), bound),
    }


def bilstm_init(key, input_size: int, hidden_size: int) -> Params:
    k_fwd, k_bwd = jax.random.split(key)
    return {"forward": lstm_init(k_fwd, input_size, hidden_size),
            "backward": lstm_init(k_bwd, input_size, hidden_size)}


def additive_attention_init(key, input_size: int, attention_hidden: int, *, query_size: int | None = None) -> Params:
    """``proj``: input -> attention_hidden; ``score``: attention_hidden -> 1 without bias;
    ``query`` (pair model only): query_size -> attention_hidden."""
    k_proj, k_score, k_query = jax.random.split(key, 3)
    params = {"proj": _linear_init(k_proj, input_size, attention_hidden),
              "score": _linear_init(k_score, attention_hidden, 1, bias=False)}
    if query_size is not None:
        params["query"] = _linear_init(k_query, query_size, attention_hidden)
    return params


def _embedding_init(key, config, embeddings, zero_pad: bool = True) -> Array:
    """The embedding table of a BiLSTM / guided-MLP config (``vocab_size``, ``embedding_dim``, ``pad_id``)."""
    shape = (config.vocab_size, config.embedding_dim)
    if embeddings is None:
        table = jax.random.normal(key, shape, jnp.float32)  # nn.Embedding's default N(0, 1)
    else:
        table = jnp.asarray(embeddings, jnp.float32)
        if table.shape != shape:
            raise ValueError(f"embeddings have shape {table.shape}, the config asks for {shape}")
    if not zero_pad:
        return table
    return table.at[config.pad_id].set(0.0)  # padding_idx: the reference zeroes the pad row


# ---------------------------------------------------------------------------- LSTM


def _gates_to_state(gates: Array, state: LSTMState) -> LSTMState:
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    cell = jax.nn.sigmoid(f) * state.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
    return LSTMState(jax.nn.sigmoid(o) * jnp.tanh(cell), cell)


def lstm_cell(params: Params, x: Array, state: LSTMState) -> LSTMState:
    """One step of PyTorch's LSTM.

    ``gates = x W_ih^T + b_ih + h W_hh^T + b_hh`` split as (i, f, g, o);
    ``c' = sigmoid(f) c + sigmoid(i) tanh(g)``, ``h' = sigmoid(o) tanh(c')``.

    Args:
      params: from :func:`lstm_init`.
      x: [batch, input].
      state: the previous (hidden, cell), each [batch, hidden].

    Returns:
      The next :class:`LSTMState`.
    """
    dtype = x.dtype
    gates = (x @ params["input_kernel"].astype(dtype) + params["input_bias"].astype(dtype)
             + state.hidden @ params["hidden_kernel"].astype(dtype) + params["hidden_bias"].astype(dtype))
    return _gates_to_state(gates, state)


def reverse_index(mask: Array) -> Array:
    """Per-row index that reverses each sequence within its own length and keeps pads in place.

    Args:
      mask: [batch, seq], nonzero on a prefix of each row (right padding).

    Returns:
      [batch, seq] int32 ``idx`` with ``idx[b, t] = len_b - 1 - t`` for ``t < len_b`` and
      ``t`` otherwise. It is an involution: gathering twice restores the order.
    """
    seq = mask.shape[-1]
    lengths = jnp.sum(mask.astype(bool), axis=-1, dtype=jnp.int32)[:, None]
    positions = jnp.arange(seq, dtype=jnp.int32)[None, :]
    return jnp.where(positions < lengths, lengths - 1 - positions, positions)


def lstm_layer(params: Params, x: Array, mask: Array, *, reverse: bool = False,
               initial_state: LSTMState | None = None) -> tuple[Array, LSTMState]:
    """One LSTM direction over a right-padded batch, with packed-sequence semantics.

    A padded step leaves the state unchanged and outputs zeros, so the forward final state
    is the state at each row's last real token. ``reverse=True`` runs each row backwards
    from its own last real token (a per-row index flip, not a flip of the padded array),
    as PyTorch's ``pack_padded_sequence``.

    Args:
      params: from :func:`lstm_init`.
      x: [batch, seq, input].
      mask: [batch, seq], nonzero on a prefix of each row.
      reverse: run right-to-left within each row.
      initial_state: defaults to zeros.

    Returns:
      (outputs [batch, seq, hidden] aligned with ``x``, zero on padding; the final
      :class:`LSTMState`, i.e. after the last real token read in this direction).
    """
    batch, _, _ = x.shape
    hidden = params["hidden_kernel"].shape[0]
    dtype = x.dtype
    valid = mask.astype(bool)
    if reverse:
        index = reverse_index(valid)
        x = jnp.take_along_axis(x, index[:, :, None], axis=1)  # valid is invariant under the flip
    if initial_state is None:
        initial_state = LSTMState(jnp.zeros((batch, hidden), dtype), jnp.zeros((batch, hidden), dtype))
    # The input projection of every step is one matmul outside the recurrence.
    x_gates = x @ params["input_kernel"].astype(dtype) + (params["input_bias"] + params["hidden_bias"]).astype(dtype)
    hidden_kernel = params["hidden_kernel"].astype(dtype)

    def step(state, inputs):
        gates_t, valid_t = inputs
        new = _gates_to_state(gates_t + state.hidden @ hidden_kernel, state)
        keep = valid_t[:, None]
        state = LSTMState(jnp.where(keep, new.hidden, state.hidden), jnp.where(keep, new.cell, state.cell))
        return state, jnp.where(keep, new.hidden, jnp.zeros((), dtype))

    final, outputs = jax.lax.scan(step, initial_state, (jnp.swapaxes(x_gates, 0, 1), jnp.swapaxes(valid, 0, 1)))
    outputs = jnp.swapaxes(outputs, 0, 1)
    if reverse:
        outputs = jnp.take_along_axis(outputs, index[:, :, None], axis=1)
    return outputs, final


def bilstm(params: Params, x: Array, mask: Array) -> tuple[Array, Array]:
    """Bidirectional LSTM, one layer, packed-sequence semantics.

    Args:
      params: from :func:`bilstm_init`.
      x: [batch, seq, input].
      mask: [batch, seq], nonzero on a prefix of each row.

    Returns:
      (hidden [batch, seq, 2 * hidden] = [forward; backward], zero on padding;
      final [batch, 2 * hidden] = [forward state after the last real token; backward state
      after the first], J&W's ``last_hidden``).
    """
    fwd, fwd_final = lstm_layer(params["forward"], x, mask)
    bwd, bwd_final = lstm_layer(params["backward"], x, mask, reverse=True)
    return jnp.concatenate([fwd, bwd], axis=-1), jnp.concatenate([fwd_final.hidden, bwd_final.hidden], axis=-1)


# ------------------------------------------------------------------------ attention


def content_mask(batch: dict, special_ids: tuple[int, ...] = (SOS_ID, EOS_ID)) -> Array:
    """The positions attention may look at: real tokens that are not ``<SOS>``/``<EOS>``.

    Args:
      batch: ``attention_mask`` [batch, seq] (1 on real tokens, special ones included) and
        either ``special_mask`` [batch, seq] (1 on special tokens) or ``input_ids``.
      special_ids: used only when ``special_mask`` is absent.

    Returns:
      [batch, seq] bool.
    """
    real = batch["attention_mask"].astype(bool)
    if "special_mask" in batch:
        special = batch["special_mask"].astype(bool)
    else:
        ids = batch["input_ids"]
        special = jnp.zeros(ids.shape, bool)
        for token in special_ids:
            special = special | (ids == token)
    return real & ~special


def additive_attention(params: Params, hidden: Array, mask: Array, query: Array | None = None) -> tuple[Array, Array]:
    """Additive (tanh) attention without a query (J&W ``TanhAttention``) or with one (``TanhQAAttention``).

    ``s_t = w2^T tanh(W1 h_t + b1 [+ Wq q + bq])``, ``alpha = softmax(s)`` over ``mask``.

    Args:
      params: from :func:`additive_attention_init`.
      hidden: [batch, seq, input].
      mask: [batch, seq], nonzero where attention may go.
      query: [batch, query_size] for the pair model (needs ``params["query"]``).

    Returns:
      (weights [batch, seq], exactly zero where ``mask`` is 0 and summing to 1 elsewhere;
      scores [batch, seq], the pre-softmax ``s``).
    """
    projected = _linear(params["proj"], hidden)
    if query is not None:
        projected = projected + _linear(params["query"], query)[:, None, :]
    scores = _linear(params["score"], jnp.tanh(projected))[..., 0]
    return simplex.softmax(scores, mask=mask), scores


def uniform_attention(mask: Array, dtype=jnp.float32) -> Array:
    """W&P's frozen attention: 1 / (#valid) on the valid positions, 0 elsewhere (all zero if none)."""
    weights = mask.astype(dtype)
    total = jnp.sum(weights, axis=-1, keepdims=True)
    return weights / jnp.maximum(total, jnp.ones((), dtype))


# ------------------------------------------------------------------------ classifier


def bilstm_classifier(config: BiLSTMConfig) -> Model:
    """The J&W / W&P attention classifier as pure functions.

    Args:
      config: a :class:`BiLSTMConfig`.

    Returns:
      A :class:`Model`. Parameters are a plain dict:
      ``{"embedding": [vocab, embedding_dim], "encoder": bilstm params,
      "attention": {"proj", "score"} (additive only), "decoder": {"kernel", "bias"}}``;
      with ``pair=True``: ``{"premise": {"embedding", "encoder"}, "hypothesis": {...},
      "attention": {"proj", "query", "score"} (additive only), "decoder": {"proj",
      "query", "out"}}``. Optimiser masks can key on ``"attention"`` (no weight decay in the
      reference).

      ``batch`` is ``{"input_ids", "attention_mask"[, "special_mask"]}`` ([batch, seq] each),
      or with ``pair=True`` ``{"premise": <that>, "hypothesis": <that>}``. ``aux`` holds
      ``attention`` [batch, seq] (the weights that made the logits, the override if given),
      ``scores`` (additive only, pre-softmax), ``hidden`` [batch, seq, 2 * hidden_size],
      ``final`` [batch, 2 * hidden_size], ``context`` [batch, 2 * hidden_size], ``mask``
      [batch, seq] (where attention may go), ``embeddings`` (as :attr:`Model.embed`), and
      with ``pair=True`` ``query`` [batch, 2 * hidden_size] (the hypothesis' ``final``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = bilstm_classifier(BiLSTMConfig(vocab_size=20, embedding_dim=5, hidden_size=4,
      ...                                        attention_hidden=3))
      >>> params = model.init(jax.random.key(0))
      >>> batch = {"input_ids": jnp.array([[2, 5, 6, 3, 0]]), "attention_mask": jnp.array([[1, 1, 1, 1, 0]])}
      >>> logits, aux = jax.jit(model.apply)(params, batch)
      >>> logits.shape, aux["attention"][0, 0].item(), aux["attention"][0, 4].item()
      ((1, 1), 0.0, 0.0)
    """
    hidden2 = 2 * config.hidden_size
    additive = config.attention == "additive"

    def init_encoder(key, embeddings) -> Params:
        k_emb, k_lstm = jax.random.split(key)
        return {"embedding": _embedding_init(k_emb, config, embeddings, config.zero_pad_row),
                "encoder": bilstm_init(k_lstm, config.embedding_dim, config.hidden_size)}

    def init(key, embeddings=None) -> Params:
        k_enc, k_hyp, k_attn, k_dec = jax.random.split(key, 4)
        query_size = hidden2 if config.pair else None
        if config.pair:
            k_proj, k_query, k_out = jax.random.split(k_dec, 3)
            params = {"premise": init_encoder(k_enc, embeddings), "hypothesis": init_encoder(k_hyp, embeddings),
                      "decoder": {"proj": _linear_init(k_proj, hidden2, config.attention_hidden),
                                  "query": _linear_init(k_query, hidden2, config.attention_hidden),
                                  "out": _linear_init(k_out, config.attention_hidden, config.num_classes)}}
        else:
            params = {**init_encoder(k_enc, embeddings), "decoder": _linear_init(k_dec, hidden2, config.num_classes)}
        if additive:
            params["attention"] = additive_attention_init(k_attn, hidden2, config.attention_hidden,
                                                          query_size=query_size)
        return params

    def embed(params, batch):
        if config.pair:
            return {part: params[part]["embedding"][batch[part]["input_ids"]] for part in ("premise", "hypothesis")}
        return params["embedding"][batch["input_ids"]]

    def head(params, context, query):
        dec = params["decoder"]
        if config.pair:
            return _linear(dec["out"], jnp.tanh(_linear(dec["proj"], context) + _linear(dec["query"], query)))
        return _linear(dec, context)

    def decode(params, aux, attention):
        """Logits from attention weights [..., batch, seq] over ``aux["hidden"]``."""
        context = jnp.einsum("...bs,bsh->...bh", attention.astype(aux["hidden"].dtype), aux["hidden"])
        return head(params, context, aux.get("query"))

    def apply(params, batch, *, key=None, train=False, attention_override=None, embeddings=None):
        del key, train  # no dropout in the reference
        if embeddings is None:
            embeddings = embed(params, batch)
        aux: dict[str, Any] = {"embeddings": embeddings}
        if config.pair:
            premise, hypothesis = batch["premise"], batch["hypothesis"]
            hidden, final = bilstm(params["premise"]["encoder"], embeddings["premise"], premise["attention_mask"])
            _, query = bilstm(params["hypothesis"]["encoder"], embeddings["hypothesis"],
                              hypothesis["attention_mask"])
            aux["query"] = query
            mask = content_mask(premise, config.special_ids)
        else:
            hidden, final = bilstm(params["encoder"], embeddings, batch["attention_mask"])
            query = None
            mask = content_mask(batch, config.special_ids)
        aux.update(hidden=hidden, final=final, mask=mask)
        if additive:
            weights, aux["scores"] = additive_attention(params["attention"], hidden, mask, query)
        else:
            weights = uniform_attention(mask, hidden.dtype)
        if attention_override is not None:
            weights = attention_override.astype(hidden.dtype)  # imposed as given (guides, adversaries)
        aux["attention"] = weights
        aux["context"] = jnp.einsum("bs,bsh->bh", weights, hidden)
        return head(params, aux["context"], query), aux

    return Model(init, apply, embed, decode, config)


# ------------------------------------------------------------------ flat pair inputs


def _segment(values: Array, start: Array, length: Array) -> Array:
    """Rows ``values[b, start[b] : start[b] + length[b]]`` left-aligned, zero after, same width."""
    width = values.shape[1]
    index = jnp.minimum(start[:, None] + jnp.arange(width)[None, :], width - 1)
    extra = (1,) * (values.ndim - 2)
    rows = jnp.take_along_axis(values, index.reshape(*index.shape, *extra), axis=1)
    keep = (jnp.arange(width)[None, :] < length[:, None]).reshape(*index.shape, *extra)
    return jnp.where(keep, rows, jnp.zeros((), values.dtype))


def flat_pair(model: Model) -> Model:
    """A pair model (``pair=True``) that reads one flat sequence per example.

    The flat batch is ``{"input_ids", "attention_mask", "segment_ids"}`` [batch, seq]: the
    premise ``[SOS] p [EOS]`` first (segment 0), then the hypothesis ``[SOS] h [EOS]``
    (segment 1), then padding (see :func:`baselines.train.encode_pairs`). ``embed`` returns
    one [batch, seq, dim] array (each token looked up in its own segment's table), and
    ``apply(embeddings=...)`` splits it again, so attribution methods see one input and rank
    both sequences in one vector, every token its own feature. ``aux["attention"]`` is laid
    out on the flat positions: J&W's attention is over the premise (a prefix), so it is zero
    on the hypothesis. Training, prediction and the adversaries use it like a single-sequence
    model; the result equals ``model`` on the nested batch.
    """
    config = model.config
    if not config.pair:
        raise ValueError("flat_pair wraps a pair model (BiLSTMConfig(pair=True))")

    def split(batch, values):
        real = batch["attention_mask"].astype(bool)
        first = real & (batch["segment_ids"] == 0)
        premise_len = first.sum(-1)
        hypothesis_len = (real & (batch["segment_ids"] == 1)).sum(-1)
        zero = jnp.zeros_like(premise_len)
        return (_segment(values, zero, premise_len), _segment(values, premise_len, hypothesis_len),
                premise_len, hypothesis_len)

    def nested(batch):
        width = batch["input_ids"].shape[1]
        premise_ids, hypothesis_ids, premise_len, hypothesis_len = split(batch, batch["input_ids"])
        positions = jnp.arange(width)[None, :]
        def part(ids, length):
            return {"input_ids": ids, "attention_mask": (positions < length[:, None]).astype(jnp.int32)}

        return {"premise": part(premise_ids, premise_len), "hypothesis": part(hypothesis_ids, hypothesis_len)}

    def embed(params, batch):
        ids = batch["input_ids"]
        first = (batch["segment_ids"] == 0)[..., None]
        return jnp.where(first, params["premise"]["embedding"][ids], params["hypothesis"]["embedding"][ids])

    def apply(params, batch, *, key=None, train=False, attention_override=None, embeddings=None):
        if embeddings is None:
            embeddings = embed(params, batch)
        premise_emb, hypothesis_emb, _, _ = split(batch, embeddings)
        logits, aux = model.apply(params, nested(batch), key=key, train=train, attention_override=attention_override,
                                  embeddings={"premise": premise_emb, "hypothesis": hypothesis_emb})
        return logits, aux | {"embeddings": embeddings}

    return Model(model.init, apply, embed, model.decode, config)
