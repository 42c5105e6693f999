"""baselines.models against float64 numpy oracles, packed-sequence semantics, and PyTorch's nn.LSTM."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from baselines import models
from baselines.models import BiLSTMConfig, LSTMState, bilstm_classifier

E, H, A = 5, 4, 3  # embedding_dim, hidden_size, attention_hidden
ATOL = 2e-5  # float32 code vs float64 oracle
BILSTM = jax.jit(models.bilstm)  # jitted once per shape: eager mode compiles every primitive


# ---------------------------------------------------------------- numpy oracles (float64)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def random_lstm_params(rng, input_size, hidden):
    """PyTorch-shaped (weight_ih [4H, in], weight_hh [4H, H], b_ih, b_hh), float64."""
    return {"w_ih": rng.normal(0, 0.5, (4 * hidden, input_size)), "w_hh": rng.normal(0, 0.5, (4 * hidden, hidden)),
            "b_ih": rng.normal(0, 0.5, 4 * hidden), "b_hh": rng.normal(0, 0.5, 4 * hidden)}


def to_jax_lstm(p):
    """Our layout is PyTorch's transposed."""
    return {"input_kernel": jnp.asarray(p["w_ih"].T, jnp.float32),
            "hidden_kernel": jnp.asarray(p["w_hh"].T, jnp.float32),
            "input_bias": jnp.asarray(p["b_ih"], jnp.float32), "hidden_bias": jnp.asarray(p["b_hh"], jnp.float32)}


def from_jax_lstm(q):
    """Our (float64-cast) parameters back in PyTorch's layout, for the numpy oracle."""
    return {"w_ih": q["input_kernel"].T, "w_hh": q["hidden_kernel"].T,
            "b_ih": q["input_bias"], "b_hh": q["hidden_bias"]}


def np_lstm_step(p, x, h, c):
    """PyTorch's documented LSTM equations, gate order (i, f, g, o)."""
    hidden = h.shape[-1]
    z = x @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]
    i, f, g, o = (z[..., k * hidden:(k + 1) * hidden] for k in range(4))
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def np_lstm(p, x):
    """One direction over an unpadded [seq, in] sequence: outputs [seq, H], final (h, c)."""
    hidden = p["w_hh"].shape[1]
    h = c = np.zeros(hidden)
    outs = []
    for x_t in x:
        h, c = np_lstm_step(p, x_t, h, c)
        outs.append(h)
    return np.stack(outs), (h, c)


def np_bilstm(p_fwd, p_bwd, x):
    fwd, (h_f, _) = np_lstm(p_fwd, x)
    bwd, (h_b, _) = np_lstm(p_bwd, x[::-1])
    return np.concatenate([fwd, bwd[::-1]], -1), np.concatenate([h_f, h_b])


def np_masked_softmax(s, valid):
    out = np.zeros_like(s)
    e = np.exp(s[valid] - s[valid].max())
    out[valid] = e / e.sum()
    return out


def np_additive_attention(w1, b1, w2, hidden, valid, wq=None, bq=None, q=None):
    pre = hidden @ w1 + b1
    if q is not None:
        pre = pre + q @ wq + bq
    s = np.tanh(pre) @ w2
    return np_masked_softmax(s, valid), s


def f64(x):
    return np.asarray(x, np.float64)


# ----------------------------------------------------------------------------- fixtures

LENGTHS = (7, 4, 3)  # real tokens per row, <SOS>/<EOS> included; the first row is unpadded
SEQ = 7


def make_batch(rng, vocab, lengths=LENGTHS, seq=SEQ):
    """<SOS> w... <EOS> then pads (id 0); word ids are >= 4."""
    ids = np.zeros((len(lengths), seq), np.int32)
    for b, n in enumerate(lengths):
        ids[b, :n] = [2] + list(rng.integers(4, vocab, n - 2)) + [3]
    mask = (np.arange(seq)[None] < np.asarray(lengths)[:, None]).astype(np.int32)
    return {"input_ids": jnp.asarray(ids), "attention_mask": jnp.asarray(mask)}


@pytest.fixture(scope="module")
def model():
    return bilstm_classifier(BiLSTMConfig(vocab_size=20, embedding_dim=E, hidden_size=H, attention_hidden=A))


@pytest.fixture(scope="module")
def params(model):
    return model.init(jax.random.key(0))


@pytest.fixture(scope="module")
def batch():
    return make_batch(np.random.default_rng(1), 20)


@pytest.fixture(scope="module")
def apply_jit(model):
    return jax.jit(model.apply)


# -------------------------------------------------------------------------------- LSTM


def test_lstm_cell_matches_numpy():
    rng = np.random.default_rng(0)
    p = random_lstm_params(rng, E, H)
    x, h, c = rng.normal(size=(3, E)), rng.normal(size=(3, H)), rng.normal(size=(3, H))
    want_h, want_c = np_lstm_step(p, x, h, c)
    got = models.lstm_cell(to_jax_lstm(p), jnp.asarray(x, jnp.float32),
                           LSTMState(jnp.asarray(h, jnp.float32), jnp.asarray(c, jnp.float32)))
    np.testing.assert_allclose(f64(got.hidden), want_h, atol=ATOL)
    np.testing.assert_allclose(f64(got.cell), want_c, atol=ATOL)


@pytest.mark.parametrize("reverse", [False, True])
def test_lstm_layer_unpadded_matches_numpy(reverse):
    rng = np.random.default_rng(1)
    p = random_lstm_params(rng, E, H)
    x = rng.normal(size=(6, E))
    want, (want_h, want_c) = np_lstm(p, x[::-1] if reverse else x)
    want = want[::-1] if reverse else want
    out, final = jax.jit(models.lstm_layer, static_argnames="reverse")(
        to_jax_lstm(p), jnp.asarray(x[None], jnp.float32), jnp.ones((1, 6), jnp.int32), reverse=reverse)
    np.testing.assert_allclose(f64(out[0]), want, atol=ATOL)
    np.testing.assert_allclose(f64(final.hidden[0]), want_h, atol=ATOL)
    np.testing.assert_allclose(f64(final.cell[0]), want_c, atol=ATOL)


def test_reverse_index_flips_within_each_length():
    idx = models.reverse_index(jnp.asarray([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]))
    np.testing.assert_array_equal(np.asarray(idx), [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]])


def test_bilstm_padded_batch_equals_each_sequence_alone():
    """Packed semantics: pads never enter the state, the backward pass starts at the true last token."""
    rng = np.random.default_rng(2)
    p_fwd, p_bwd = random_lstm_params(rng, E, H), random_lstm_params(rng, E, H)
    params = {"forward": to_jax_lstm(p_fwd), "backward": to_jax_lstm(p_bwd)}
    lengths = np.array([7, 4, 1])
    x = rng.normal(size=(3, SEQ, E)) * 10  # garbage in the pads as well: it must not matter
    mask = (np.arange(SEQ)[None] < lengths[:, None]).astype(np.int32)
    run = BILSTM
    hidden, final = run(params, jnp.asarray(x, jnp.float32), jnp.asarray(mask))
    assert hidden.shape == (3, SEQ, 2 * H) and final.shape == (3, 2 * H)
    for b, n in enumerate(lengths):
        want, want_final = np_bilstm(p_fwd, p_bwd, x[b, :n])
        np.testing.assert_allclose(f64(hidden[b, :n]), want, atol=ATOL)
        np.testing.assert_allclose(f64(final[b]), want_final, atol=ATOL)
        assert np.all(np.asarray(hidden[b, n:]) == 0.0)
        # the same code on the row alone, unpadded
        alone, alone_final = run(params, jnp.asarray(x[b:b + 1, :n], jnp.float32), jnp.ones((1, n), jnp.int32))
        np.testing.assert_allclose(np.asarray(hidden[b, :n]), np.asarray(alone[0]), atol=1e-6)
        np.testing.assert_allclose(np.asarray(final[b]), np.asarray(alone_final[0]), atol=1e-6)


@pytest.mark.parity
def test_bilstm_matches_pytorch_packed_lstm():
    """The reference's exact encoder: nn.LSTM(bidirectional) on pack_padded_sequence(enforce_sorted=False)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(E, H, batch_first=True, bidirectional=True).double()
    sd = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    params = {direction: {"input_kernel": jnp.asarray(sd[f"weight_ih_l0{s}"].T, jnp.float32),
                          "hidden_kernel": jnp.asarray(sd[f"weight_hh_l0{s}"].T, jnp.float32),
                          "input_bias": jnp.asarray(sd[f"bias_ih_l0{s}"], jnp.float32),
                          "hidden_bias": jnp.asarray(sd[f"bias_hh_l0{s}"], jnp.float32)}
              for direction, s in (("forward", ""), ("backward", "_reverse"))}
    lengths = [3, 7, 5]
    x = np.random.default_rng(3).normal(size=(3, SEQ, E))
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), batch_first=True,
                                                     enforce_sorted=False)
    with torch.no_grad():
        out, (h_n, _) = lstm(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, padding_value=0.0, total_length=SEQ)
    mask = (np.arange(SEQ)[None] < np.asarray(lengths)[:, None]).astype(np.int32)
    hidden, final = BILSTM(params, jnp.asarray(x, jnp.float32), jnp.asarray(mask))
    np.testing.assert_allclose(f64(hidden), out.numpy(), atol=ATOL)
    np.testing.assert_allclose(f64(final), torch.cat([h_n[0], h_n[1]], -1).numpy(), atol=ATOL)


# --------------------------------------------------------------------------- attention


def test_additive_attention_matches_numpy():
    rng = np.random.default_rng(4)
    w1, b1, w2 = rng.normal(size=(2 * H, A)), rng.normal(size=A), rng.normal(size=(A, 1))
    hidden = rng.normal(size=(2, 6, 2 * H))
    valid = np.array([[0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0]], bool)
    params = {"proj": {"kernel": jnp.asarray(w1, jnp.float32), "bias": jnp.asarray(b1, jnp.float32)},
              "score": {"kernel": jnp.asarray(w2, jnp.float32)}}
    weights, scores = models.additive_attention(params, jnp.asarray(hidden, jnp.float32), jnp.asarray(valid))
    for b in range(2):
        want_w, want_s = np_additive_attention(w1, b1, w2[:, 0], hidden[b], valid[b])
        np.testing.assert_allclose(f64(scores[b]), want_s, atol=ATOL)
        np.testing.assert_allclose(f64(weights[b]), want_w, atol=ATOL)
    assert np.all(np.asarray(weights)[~valid] == 0.0)


def test_query_attention_matches_numpy():
    rng = np.random.default_rng(5)
    w1, b1, w2 = rng.normal(size=(2 * H, A)), rng.normal(size=A), rng.normal(size=(A, 1))
    wq, bq = rng.normal(size=(2 * H, A)), rng.normal(size=A)
    hidden, q = rng.normal(size=(2, 6, 2 * H)), rng.normal(size=(2, 2 * H))
    valid = np.array([[0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0]], bool)
    params = {"proj": {"kernel": jnp.asarray(w1, jnp.float32), "bias": jnp.asarray(b1, jnp.float32)},
              "query": {"kernel": jnp.asarray(wq, jnp.float32), "bias": jnp.asarray(bq, jnp.float32)},
              "score": {"kernel": jnp.asarray(w2, jnp.float32)}}
    weights, _ = models.additive_attention(params, jnp.asarray(hidden, jnp.float32), jnp.asarray(valid),
                                           jnp.asarray(q, jnp.float32))
    for b in range(2):
        want_w, _ = np_additive_attention(w1, b1, w2[:, 0], hidden[b], valid[b], wq, bq, q[b])
        np.testing.assert_allclose(f64(weights[b]), want_w, atol=ATOL)


def test_attention_is_exactly_zero_on_special_and_pad_tokens(model, params, batch, apply_jit):
    _, aux = apply_jit(params, batch)
    attention = np.asarray(aux["attention"])
    ids, real = np.asarray(batch["input_ids"]), np.asarray(batch["attention_mask"]).astype(bool)
    content = real & (ids != 2) & (ids != 3)
    assert np.all(attention[~content] == 0.0)  # SOS, EOS, pads: exactly zero
    assert np.all(attention[content] > 0.0)
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(aux["mask"]), content)


def test_special_mask_key_matches_special_ids(model, params, batch, apply_jit):
    ids = np.asarray(batch["input_ids"])
    explicit = {**batch, "special_mask": jnp.asarray((ids == 2) | (ids == 3), jnp.int32)}
    logits_ids, aux_ids = apply_jit(params, batch)
    logits_mask, aux_mask = apply_jit(params, explicit)
    np.testing.assert_array_equal(np.asarray(aux_ids["attention"]), np.asarray(aux_mask["attention"]))
    np.testing.assert_array_equal(np.asarray(logits_ids), np.asarray(logits_mask))
    # a special_mask that marks nothing lets attention reach <SOS> / <EOS>
    _, aux_none = apply_jit(params, {**batch, "special_mask": jnp.zeros_like(batch["input_ids"])})
    assert np.all(np.asarray(aux_none["attention"])[:, 0] > 0.0)


def test_uniform_attention_is_uniform_over_content_tokens(batch):
    config = BiLSTMConfig(vocab_size=20, embedding_dim=E, hidden_size=H, attention_hidden=A, attention="uniform")
    model = bilstm_classifier(config)
    params = model.init(jax.random.key(1))
    assert "attention" not in params  # nothing to train, nothing to decay
    logits, aux = jax.jit(model.apply)(params, batch)
    for b, n in enumerate(LENGTHS):
        want = np.zeros(SEQ)
        want[1:n - 1] = 1.0 / (n - 2)  # 1/(len-2) on words, 0 on SOS, EOS, pads
        np.testing.assert_allclose(f64(aux["attention"][b]), want, rtol=1e-6)
        assert np.all(np.asarray(aux["attention"][b])[want == 0] == 0.0)
    # the decoder on the mean of the word states (numpy)
    hidden = f64(aux["hidden"])
    context = np.stack([hidden[b, 1:n - 1].mean(0) for b, n in enumerate(LENGTHS)])
    want_logits = context @ f64(params["decoder"]["kernel"]) + f64(params["decoder"]["bias"])
    np.testing.assert_allclose(f64(logits), want_logits, atol=ATOL)


# ------------------------------------------------------------------------ full model


def test_full_apply_matches_numpy(model, params, batch, apply_jit):
    """End to end from the embedding table: embed -> BiLSTM -> attention -> linear."""
    logits, aux = apply_jit(params, batch)
    assert logits.shape == (3, 1)
    p = jax.tree.map(f64, params)
    ids = np.asarray(batch["input_ids"])
    for b, n in enumerate(LENGTHS):
        enc = p["encoder"]
        hidden, _ = np_bilstm(from_jax_lstm(enc["forward"]), from_jax_lstm(enc["backward"]), p["embedding"][ids[b, :n]])
        valid = np.zeros(n, bool)
        valid[1:-1] = True
        att = p["attention"]
        weights, _ = np_additive_attention(att["proj"]["kernel"], att["proj"]["bias"], att["score"]["kernel"][:, 0],
                                           hidden, valid)
        want = (weights @ hidden) @ p["decoder"]["kernel"] + p["decoder"]["bias"]
        np.testing.assert_allclose(f64(aux["attention"][b, :n]), weights, atol=ATOL)
        np.testing.assert_allclose(f64(logits[b]), want, atol=ATOL)


def test_attention_override_is_honoured(model, params, batch, apply_jit):
    logits, aux = apply_jit(params, batch)
    same, _ = apply_jit(params, batch, attention_override=aux["attention"])
    np.testing.assert_allclose(np.asarray(same), np.asarray(logits), rtol=1e-6, atol=1e-7)
    # the decoder alone on the stored hidden states, also with a stack of K = 2 attentions
    np.testing.assert_allclose(np.asarray(model.decode(params, aux, aux["attention"])), np.asarray(logits),
                               rtol=1e-6, atol=1e-7)
    assert model.decode(params, aux, jnp.stack([aux["attention"]] * 2)).shape == (2, 3, 1)
    # a different distribution: all mass on <SOS>, where the model's own attention is zero
    one_hot = jnp.zeros_like(aux["attention"]).at[:, 0].set(1.0)
    other, other_aux = apply_jit(params, batch, attention_override=one_hot)
    assert np.all(np.abs(np.asarray(other) - np.asarray(logits)) > 1e-6)
    np.testing.assert_array_equal(np.asarray(other_aux["attention"]), np.asarray(one_hot))
    want = f64(aux["hidden"][:, 0]) @ f64(params["decoder"]["kernel"]) + f64(params["decoder"]["bias"])
    np.testing.assert_allclose(f64(other), want, atol=ATOL)


def test_embeddings_entry_point_and_pad_gradients(model, params, batch, apply_jit):
    embeddings = model.embed(params, batch)
    assert embeddings.shape == (3, SEQ, E)
    logits, _ = apply_jit(params, batch)
    again, _ = apply_jit(params, batch, embeddings=embeddings)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(logits))

    def total(emb):
        return apply_jit(params, batch, embeddings=emb)[0].sum()

    grad = np.asarray(jax.jit(jax.grad(total))(embeddings))
    real = np.asarray(batch["attention_mask"]).astype(bool)
    assert np.all(grad[~real] == 0.0)  # pads never reach the output
    assert np.all(np.abs(grad[real]).sum(-1) > 0.0)  # SOS / EOS do, through the LSTM
    # central finite difference on one real coordinate (float32, loose)
    eps = 1e-2
    bump = jnp.zeros_like(embeddings).at[1, 2, 0].set(eps)
    fd = (float(total(embeddings + bump)) - float(total(embeddings - bump))) / (2 * eps)
    np.testing.assert_allclose(grad[1, 2, 0], fd, rtol=2e-2, atol=1e-4)


def test_init_follows_pytorch_defaults_and_pretrained_table():
    model = bilstm_classifier(BiLSTMConfig(vocab_size=20, embedding_dim=E, hidden_size=H, attention_hidden=A))
    table = np.random.default_rng(6).normal(size=(20, E))
    params = model.init(jax.random.key(2), embeddings=table)
    assert params["embedding"].dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(params["embedding"])[1:], table[1:].astype(np.float32))
    assert np.all(np.asarray(params["embedding"])[0] == 0.0)  # padding_idx=0
    fresh = model.init(jax.random.key(2))
    assert np.all(np.asarray(fresh["embedding"])[0] == 0.0) and np.asarray(fresh["embedding"]).std() > 0.5
    kept = bilstm_classifier(BiLSTMConfig(vocab_size=20, embedding_dim=E, hidden_size=H, attention_hidden=A,
                                          zero_pad_row=False)).init(jax.random.key(2), embeddings=table)
    np.testing.assert_array_equal(np.asarray(kept["embedding"]), table.astype(np.float32))  # court's random pad row
    for direction in ("forward", "backward"):
        for name, leaf in params["encoder"][direction].items():
            assert np.abs(np.asarray(leaf)).max() <= 1 / np.sqrt(H), name
            assert np.abs(np.asarray(leaf)).max() > 0.5 / np.sqrt(H), name  # not a tiny-std init
    assert params["encoder"]["forward"]["input_kernel"].shape == (E, 4 * H)
    assert params["encoder"]["forward"]["hidden_kernel"].shape == (H, 4 * H)
    assert np.abs(np.asarray(params["attention"]["proj"]["kernel"])).max() <= 1 / np.sqrt(2 * H)
    assert np.abs(np.asarray(params["attention"]["score"]["kernel"])).max() <= 1 / np.sqrt(A)
    assert set(params["attention"]["score"]) == {"kernel"}  # w2 has no bias
    assert params["decoder"]["kernel"].shape == (2 * H, 1)
    with pytest.raises(ValueError, match="shape"):
        model.init(jax.random.key(0), embeddings=table[:, :-1])
    with pytest.raises(ValueError, match="attention"):
        BiLSTMConfig(vocab_size=3, attention="dot")


# ------------------------------------------------------------------------- pair model


def test_pair_model_matches_numpy():
    config = BiLSTMConfig(vocab_size=20, embedding_dim=E, hidden_size=H, attention_hidden=A, num_classes=3, pair=True)
    model = bilstm_classifier(config)
    params = model.init(jax.random.key(3))
    rng = np.random.default_rng(7)
    batch = {"premise": make_batch(rng, 20), "hypothesis": make_batch(rng, 20, lengths=(3, 5, 4), seq=5)}
    logits, aux = jax.jit(model.apply)(params, batch)
    assert logits.shape == (3, 3)
    assert not np.array_equal(np.asarray(params["premise"]["embedding"]), np.asarray(params["hypothesis"]["embedding"]))
    p = jax.tree.map(f64, params)

    def encode(part, ids):
        enc = p[part]["encoder"]
        return np_bilstm(from_jax_lstm(enc["forward"]), from_jax_lstm(enc["backward"]), p[part]["embedding"][ids])

    prem_ids, hyp_ids = np.asarray(batch["premise"]["input_ids"]), np.asarray(batch["hypothesis"]["input_ids"])
    att, dec = p["attention"], p["decoder"]
    for b, (n, m) in enumerate(zip(LENGTHS, (3, 5, 4))):
        hidden, _ = encode("premise", prem_ids[b, :n])
        _, q = encode("hypothesis", hyp_ids[b, :m])
        valid = np.zeros(n, bool)
        valid[1:-1] = True
        weights, _ = np_additive_attention(att["proj"]["kernel"], att["proj"]["bias"], att["score"]["kernel"][:, 0],
                                           hidden, valid, att["query"]["kernel"], att["query"]["bias"], q)
        context = weights @ hidden
        pre = context @ dec["proj"]["kernel"] + dec["proj"]["bias"] + q @ dec["query"]["kernel"] + dec["query"]["bias"]
        want = np.tanh(pre) @ dec["out"]["kernel"] + dec["out"]["bias"]
        np.testing.assert_allclose(f64(aux["attention"][b, :n]), weights, atol=ATOL)
        assert np.all(np.asarray(aux["attention"][b])[n:] == 0.0)
        np.testing.assert_allclose(f64(logits[b]), want, atol=ATOL)
    same, _ = jax.jit(model.apply)(params, batch, attention_override=aux["attention"])
    np.testing.assert_allclose(np.asarray(same), np.asarray(logits), rtol=1e-6, atol=1e-7)


def test_docstring_examples():
    failures, _ = doctest.testmod(models, optionflags=doctest.ELLIPSIS)
    assert failures == 0


def test_flat_pair_equals_the_nested_pair_model():
    """One flat row per pair ([SOS] p [EOS] [SOS] h [EOS] pad) gives the nested model's logits,
    its attention on the premise positions and zero on the hypothesis; embeddings round-trip."""
    config = BiLSTMConfig(vocab_size=20, embedding_dim=E, hidden_size=H, attention_hidden=A, num_classes=3, pair=True)
    nested_model = bilstm_classifier(config)
    flat = models.flat_pair(nested_model)
    params = nested_model.init(jax.random.key(4))
    rng = np.random.default_rng(8)
    premise, hypothesis = make_batch(rng, 20), make_batch(rng, 20, lengths=(3, 5, 4), seq=5)
    want, want_aux = nested_model.apply(params, {"premise": premise, "hypothesis": hypothesis})
    width = SEQ + 5
    ids = np.zeros((3, width), np.int32)
    segments = np.zeros((3, width), np.int32)
    for b, (n, m) in enumerate(zip(LENGTHS, (3, 5, 4))):
        ids[b, :n + m] = np.concatenate([np.asarray(premise["input_ids"][b, :n]),
                                         np.asarray(hypothesis["input_ids"][b, :m])])
        segments[b, n:n + m] = 1
    lengths = np.asarray(LENGTHS) + np.asarray((3, 5, 4))
    batch = {"input_ids": jnp.asarray(ids), "segment_ids": jnp.asarray(segments),
             "attention_mask": jnp.asarray((np.arange(width)[None] < lengths[:, None]).astype(np.int32))}
    logits, aux = jax.jit(flat.apply)(params, batch)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(want), rtol=1e-6, atol=1e-6)
    for b, n in enumerate(LENGTHS):
        np.testing.assert_allclose(np.asarray(aux["attention"][b, :n]), np.asarray(want_aux["attention"][b, :n]),
                                   atol=1e-7)
        assert np.all(np.asarray(aux["attention"][b, n:]) == 0.0)
    emb = flat.embed(params, batch)
    assert emb.shape == (3, width, E)
    np.testing.assert_array_equal(np.asarray(emb[0, LENGTHS[0]]),
                                  np.asarray(params["hypothesis"]["embedding"][ids[0, LENGTHS[0]]]))
    again, _ = flat.apply(params, batch, embeddings=emb)
    np.testing.assert_allclose(np.asarray(again), np.asarray(logits), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="pair"):
        models.flat_pair(bilstm_classifier(BiLSTMConfig(vocab_size=20)))
