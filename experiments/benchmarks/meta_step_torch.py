"""The SMaT meta step in plain PyTorch (``torch.func``), the peer of ``experiments/benchmarks/meta_step.py``.

One function per piece of ``smat``, computing the same numbers as
``smat.metalearn.make_trainer(student, explainer, explainer, MetaConfig(mode="exact")).meta_step``
with a ``make_student`` BERT student and the ``attention`` explainer (sparsemax head coefficients)
as student and teacher explainer (Fernandes et al. 2022, Eqs. 6-9):

1. inner step: (theta, phi_S) <- clip -> coupled weight decay -> -lr applied to
   grad L_student = L_sim + beta * KL(E_T || E_S), with E_T from phi_T and the cached
   teacher head scores;
2. pilot step: from the updated student, one more inner step on the same train batch as a
   function of phi_T, then L_sim of the pilot student on the valid batch (no dropout);
   ``torch.func.grad`` of that with respect to phi_T, nested over the inner
   ``torch.func.grad`` (reverse over reverse, as ``mode="exact"``);
3. phi_T <- clip -> Adam (eps_root 1e-8) -> -meta_lr.

Params are a flat ``{name: tensor}`` dict named as the flattened JAX pytree, with the
stacked layer axis unrolled (``student.encoder.layers.0.query.kernel``); kernels keep the
JAX ``[in, out]`` layout. :func:`params_from_jax` converts a JAX student or explainer pytree.

Attention is materialized (``softmax(q k^T + bias) v``): PyTorch's fused SDPA kernels
(flash / memory-efficient / cuDNN) have no double backward, which the meta-gradient needs.
Dropout draws from torch's global RNG (``smat`` uses explicit JAX keys), so the two agree
number for number only with every dropout rate at zero. Only the BERT family, exact GELU,
no ``embedding_size`` projection and float32 / float64 are mirrored.

  python experiments/benchmarks/meta_step_torch.py                      # MiniLM size, float32
  python experiments/benchmarks/meta_step_torch.py --shapes minilm base --compile
  python experiments/benchmarks/meta_step_torch.py --shapes tiny --repeats 2   # a dry run in seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import gc
import platform
import statistics
import time
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]
Batch = dict[str, torch.Tensor]

PAD_BIAS = -1e10  # smat.explainers.PAD_BIAS
KL_CLIP = 1e-7  # smat.simplex.KL_CLIP
ADAM_B1, ADAM_B2, ADAM_EPS, ADAM_EPS_ROOT = 0.9, 0.999, 1e-8, 1e-8  # smat.metalearn.meta_optimizer
QKV = ("query", "key", "value")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The student: ``smat.models.TextConfig`` (BERT family) plus ``make_student``'s head settings."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    mask_bias: float = -1e10
    head_dropout: float = 0.0
    num_outputs: int = 2

    @classmethod
    def from_text_config(cls, config: Any, *, num_outputs: int, head_dropout: float) -> ModelConfig:
        """The same student as ``make_student(build(config), num_outputs, head_dropout=head_dropout)``.

        Raises:
          ValueError: for a ``TextConfig`` feature this peer does not mirror.
        """
        unsupported = {"family": "bert", "hidden_act": "gelu", "embedding_size": None, "uniform_attention": False}
        wrong = {k: getattr(config, k) for k, v in unsupported.items() if getattr(config, k) != v}
        if wrong:
            raise ValueError(f"the torch peer mirrors only {unsupported}; got {wrong}")
        fields = [f.name for f in dataclasses.fields(cls) if f.name not in ("head_dropout", "num_outputs")]
        return cls(**{k: getattr(config, k) for k in fields}, head_dropout=head_dropout, num_outputs=num_outputs)


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """``smat.metalearn.MetaConfig`` in ``mode="exact"`` (same defaults)."""

    inner_lr: float = 5e-3
    inner_clip: float = 5.0
    inner_weight_decay: float = 0.01
    meta_lr: float = 5e-4
    meta_clip: float = 5.0
    beta: float = 5.0


class Shape(NamedTuple):
    config: ModelConfig
    batch: int
    seq: int


# The shapes of experiments/benchmarks/meta_step.py (TextConfig dropout defaults, head_dropout=0.0).
SHAPES = {
    "minilm": Shape(ModelConfig(30522, 384, 6, 12, 1536), 32, 256),
    "base": Shape(ModelConfig(30522, 768, 12, 12, 3072), 16, 256),
    "tiny": Shape(ModelConfig(30522, 64, 2, 4, 128), 4, 32),
}


class AdamState(NamedTuple):
    """``optax.scale_by_adam``'s state; the clip and scale around it carry none."""

    mu: Params
    nu: Params
    count: torch.Tensor


class TrainState(NamedTuple):
    """``smat.metalearn.TrainState`` less ``opt_state`` (the inner chain is stateless)."""

    student_params: Params  # "student.*" = theta, "explainer.head_coeffs" = phi_S
    teacher_expl_params: Params  # {"head_coeffs": phi_T}
    meta_opt_state: AdamState
    step: torch.Tensor


# ------------------------------------------------------------------------- params


def subtree(params: Params, prefix: str) -> Params:
    """The entries under ``prefix.``, with the prefix stripped (JAX's ``params[prefix]``)."""
    start = len(prefix) + 1
    return {k[start:]: v for k, v in params.items() if k.startswith(prefix + ".")}


def _flatten(tree: Any, prefix: str = ""):
    if isinstance(tree, Mapping):
        for name, child in tree.items():
            yield from _flatten(child, f"{prefix}{name}.")
    else:
        yield prefix[:-1], np.asarray(tree)


def params_from_jax(tree: Any, *, device: str | torch.device | None = None) -> Params:
    """A JAX params pytree (nested dicts) as a flat torch dict, dtypes kept.

    The encoder's ``layers`` subtree is stacked along a leading layer axis (for ``lax.scan``);
    it is split into ``layers.0``, ``layers.1``, ...

    Example:
      >>> import numpy as np
      >>> tree = {"encoder": {"layers": {"query": {"kernel": np.zeros((2, 4, 4))}}}, "mix": {"gamma": np.ones(())}}
      >>> sorted(params_from_jax(tree))
      ['encoder.layers.0.query.kernel', 'encoder.layers.1.query.kernel', 'mix.gamma']
    """
    params = {}
    for name, value in _flatten(tree):
        parts = name.split(".")
        if "layers" not in parts:
            params[name] = torch.tensor(np.array(value), device=device)
            continue
        at = parts.index("layers") + 1
        for layer, layer_value in enumerate(value):
            layer_name = ".".join(parts[:at] + [str(layer)] + parts[at:])
            params[layer_name] = torch.tensor(np.array(layer_value), device=device)
    return params


def init_state(config: ModelConfig, *, dtype: torch.dtype, device: str | torch.device, seed: int = 0) -> TrainState:
    """Random student (normal(0.02) weights as ``smat.models.layers``), uniform explainers, fresh Adam state."""
    gen = torch.Generator().manual_seed(seed)
    h, ffn = config.hidden_size, config.intermediate_size

    def normal(*shape):
        return (0.02 * torch.randn(shape, generator=gen, dtype=dtype)).to(device)

    def dense(name, fan_in, fan_out):
        return {f"{name}.kernel": normal(fan_in, fan_out),
                f"{name}.bias": torch.zeros(fan_out, dtype=dtype, device=device)}

    def norm(name, size):
        return {f"{name}.scale": torch.ones(size, dtype=dtype, device=device),
                f"{name}.bias": torch.zeros(size, dtype=dtype, device=device)}

    enc = "student.encoder"
    params = {f"{enc}.embeddings.word": normal(config.vocab_size, h),
              f"{enc}.embeddings.position": normal(config.max_position_embeddings, h),
              f"{enc}.embeddings.token_type": normal(config.type_vocab_size, h),
              **norm(f"{enc}.embeddings.norm", h)}
    for i in range(config.num_layers):
        layer = f"{enc}.layers.{i}"
        for name in (*QKV, "attn_out"):
            params.update(dense(f"{layer}.{name}", h, h))
        params.update(norm(f"{layer}.attn_norm", h) | dense(f"{layer}.ffn_in", h, ffn)
                      | dense(f"{layer}.ffn_out", ffn, h) | norm(f"{layer}.ffn_norm", h))
    params.update(dense("student.head.dense", h, h) | dense("student.head.out", h, config.num_outputs))
    params["student.mix.coeffs"] = torch.zeros(config.num_layers + 1, dtype=dtype, device=device)
    params["student.mix.gamma"] = torch.ones((), dtype=dtype, device=device)
    size = config.num_layers * config.num_heads
    params["explainer.head_coeffs"] = torch.full((size,), 1.0 / size, dtype=dtype, device=device)
    teacher = {"head_coeffs": torch.full((size,), 1.0 / size, dtype=dtype, device=device)}
    return TrainState(params, teacher, adam_init(teacher), torch.zeros((), dtype=torch.int32, device=device))


# ------------------------------------------------------------------------ encoder


def dense(params: Params, name: str, x: torch.Tensor) -> torch.Tensor:
    """``smat.models.layers.dense`` ([in, out] kernel)."""
    return x @ params[f"{name}.kernel"] + params[f"{name}.bias"]


def layer_norm(params: Params, name: str, x: torch.Tensor, eps: float) -> torch.Tensor:
    """``smat.models.layers.layer_norm`` (biased variance, eps inside the root)."""
    return F.layer_norm(x, x.shape[-1:], params[f"{name}.scale"], params[f"{name}.bias"], eps)


def dropout(x: torch.Tensor, rate: float, train: bool) -> torch.Tensor:
    """``smat.models.layers.dropout`` (inverted dropout), on torch's global RNG."""
    return F.dropout(x, rate, training=True) if train and rate > 0 else x


def embed(params: Params, input_ids: torch.Tensor, config: ModelConfig, train: bool) -> torch.Tensor:
    """``text_encoder.embed`` for BERT: LN(word + position + token type 0), then dropout."""
    seq = input_ids.shape[1]
    positions = torch.arange(seq, device=input_ids.device).expand_as(input_ids)
    x = F.embedding(input_ids, params["embeddings.word"]) + F.embedding(positions, params["embeddings.position"])
    x = x + F.embedding(torch.zeros_like(input_ids), params["embeddings.token_type"])
    x = layer_norm(params, "embeddings.norm", x, config.layer_norm_eps)
    return dropout(x, config.hidden_dropout, train)


def self_attention(params: Params, x: torch.Tensor, key_bias: torch.Tensor, query_weights: torch.Tensor,
                   config: ModelConfig, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``smat.models.layers.self_attention``'s materialized path: (output, head scores [batch, heads, seq]).

    Head scores s^h_j = (sum_i w_i q_i) . k_j * scale + key_bias_j, w the row-mean weights over valid queries.
    """
    batch, seq, hidden = x.shape
    heads = config.num_heads
    head_dim = hidden // heads
    scale = head_dim**-0.5
    kernel = torch.cat([params[f"{n}.kernel"] for n in QKV], dim=1)
    qkv = x @ kernel + torch.cat([params[f"{n}.bias"] for n in QKV])
    q, k, v = qkv.reshape(batch, seq, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    mean_query = torch.einsum("bhqd,bq->bhd", q, query_weights)
    head_scores = torch.einsum("bhd,bhkd->bhk", mean_query, k) * scale + key_bias[:, None, :]
    logits = (q * scale) @ k.transpose(-1, -2) + key_bias[:, None, None, :]
    probs = dropout(torch.softmax(logits, dim=-1), config.attention_dropout, train)
    context = (probs @ v).transpose(1, 2).reshape(batch, seq, hidden)
    return dense(params, "attn_out", context), head_scores


def transformer_block(params: Params, x: torch.Tensor, key_bias: torch.Tensor, query_weights: torch.Tensor,
                      config: ModelConfig, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``smat.models.layers.transformer_block`` post-LN: h = LN(x + Attn(x)); y = LN(h + FFN(h))."""
    attn, head_scores = self_attention(params, x, key_bias, query_weights, config, train)
    h = layer_norm(params, "attn_norm", x + dropout(attn, config.hidden_dropout, train), config.layer_norm_eps)
    ffn = dense(params, "ffn_out", F.gelu(dense(params, "ffn_in", h)))  # exact erf GELU
    y = layer_norm(params, "ffn_norm", h + dropout(ffn, config.hidden_dropout, train), config.layer_norm_eps)
    return y, head_scores


def encode(params: Params, input_ids: torch.Tensor, mask: torch.Tensor, config: ModelConfig,
           train: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``text_encoder.apply`` + ``layers.run_stack``: (hidden states incl. the embedding output, head scores).

    Returns:
      ([layers + 1] x [batch, seq, hidden], [batch, layers, heads, seq]).
    """
    x = embed(params, input_ids, config, train)
    valid = mask.to(x.dtype)
    key_bias = torch.where(valid > 0, 0.0, torch.full_like(valid, config.mask_bias))
    query_weights = valid / valid.sum(-1, keepdim=True).clamp(min=1.0)
    hidden_states, scores = [x], []
    for i in range(config.num_layers):
        x, head_scores = transformer_block(subtree(params, f"layers.{i}"), x, key_bias, query_weights, config, train)
        hidden_states.append(x)
        scores.append(head_scores)
    return hidden_states, torch.stack(scores, dim=1)


# ------------------------------------------------------------------------ student


def scalar_mix(params: Params, hidden_states: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """``smat.students.scalar_mix``: softmax(coeffs) x gamma over mask-mean-pooled hidden states."""
    m = mask.to(hidden_states[0].dtype)[:, :, None]
    count = m.sum(1).clamp(min=1.0)
    pooled = torch.stack([(h * m).sum(1) / count for h in hidden_states])  # [layers + 1, batch, hidden]
    weights = torch.softmax(params["coeffs"], dim=0) * params["gamma"]
    return torch.einsum("l,lbh->bh", weights, pooled)


def student_apply(params: Params, batch: Batch, config: ModelConfig,
                  train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``make_student(...).apply`` with the gelu head: (logits [batch, outputs], head scores)."""
    mask = batch["attention_mask"]
    hidden_states, head_scores = encode(subtree(params, "encoder"), batch["input_ids"], mask, config, train)
    x = scalar_mix(subtree(params, "mix"), hidden_states, mask)
    x = dropout(x, config.head_dropout, train)
    x = F.gelu(dense(params, "head.dense", x))
    x = dropout(x, config.head_dropout, train)
    return dense(params, "head.out", x), head_scores


# --------------------------------------------------------------------- explainers


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """``smat.simplex.sparsemax`` over the last axis (no mask).

    The support comes from the sorted scores without gradient; on that support the output
    z - (sum_S z - 1) / |S| is differentiated by autograd, giving the Jacobian
    diag(s) - s s^T / |S| and zero second derivative, as smat's custom JVP.
    """
    shifted = z.detach() - z.detach().amax(-1, keepdim=True)
    srt = torch.sort(shifted, dim=-1, descending=True).values
    cumsum = srt.cumsum(-1)
    rank = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype, device=z.device)
    size = (1 + rank * srt > cumsum).sum(-1, keepdim=True)
    support = shifted - (cumsum.gather(-1, size - 1) - 1) / size > 0
    s = support.to(z.dtype)
    tau = ((z * s).sum(-1, keepdim=True) - 1) / s.sum(-1, keepdim=True)
    return torch.where(support, z - tau, torch.zeros((), dtype=z.dtype, device=z.device))


def masked_softmax(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``smat.simplex.softmax`` over the last axis: masked entries exactly 0, no NaN in gradients."""
    valid = mask > 0
    top = torch.where(valid, x, -torch.inf).amax(-1, keepdim=True).detach()
    top = torch.where(torch.isfinite(top), top, 0.0)
    unnormalized = torch.where(valid, torch.exp(torch.where(valid, x - top, 0.0)), 0.0)
    total = unnormalized.sum(-1, keepdim=True)
    return unnormalized / torch.where(total > 0, total, 1.0)


def attention_explanation(head_coeffs: torch.Tensor, head_scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``explainers.attention_explainer(...).apply``: softmax_t(sum_k sparsemax(phi)_k s_kt), pads at 0.

    Args:
      head_coeffs: phi [layers * heads] (layer-major).
      head_scores: [batch, layers, heads, seq].
      mask: [batch, seq].
    """
    scores = head_scores.reshape(head_scores.shape[0], -1, head_scores.shape[-1])
    logits = torch.einsum("bkt,k->bt", scores, sparsemax(head_coeffs))
    biased = torch.where(mask > 0, logits, torch.full_like(logits, PAD_BIAS))  # explainers._to_simplex
    return masked_softmax(biased, mask)


# ------------------------------------------------------------------------- losses


def weighted_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``smat.losses._weighted_mean``: the mean over rows with ``valid`` weights."""
    if valid is None:
        return values.mean()
    valid = valid.to(values.dtype)
    return (values * valid).sum() / valid.sum().clamp(min=1.0)


def simulation_loss(outputs: torch.Tensor, teacher_outputs: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``losses.simulation_loss(outputs, losses.teacher_targets(teacher_outputs), valid)``."""
    if outputs.shape[-1] == 1:
        return weighted_mean(torch.square(outputs[..., 0] - teacher_outputs[..., 0]), valid)
    targets = teacher_outputs.argmax(-1, keepdim=True)
    ce = torch.logsumexp(outputs, dim=-1) - outputs.gather(-1, targets)[..., 0]
    return weighted_mean(ce, valid)


def kl(p: torch.Tensor, q: torch.Tensor, mask: torch.Tensor, eps: float = KL_CLIP) -> torch.Tensor:
    """``smat.simplex.kl``: sum_j p_j (log clip(p_j) - log clip(q_j)) over valid entries with p_j > 0."""
    active = (mask > 0) & (p > 0)
    log_p = torch.log(torch.where(active, p.clamp(eps, 1 - eps), 1.0))
    log_q = torch.log(torch.where(active, q.clamp(eps, 1 - eps), 1.0))
    return torch.where(active, p * (log_p - log_q), 0.0).sum(-1)


def explanation_loss(teacher_expl: torch.Tensor, student_expl: torch.Tensor, mask: torch.Tensor,
                     valid: torch.Tensor | None) -> torch.Tensor:
    """``smat.losses.explanation_loss``: batch mean of KL(E_T || E_S) over the valid tokens."""
    return weighted_mean(kl(teacher_expl, student_expl, mask), valid)


# ------------------------------------------------------------------- meta-learning


def student_loss(student_params: Params, teacher_expl_params: Params, batch: Batch, config: ModelConfig,
                 meta: MetaConfig, train: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``make_trainer``'s ``student_loss``: L_sim + beta * KL(E_T || E_S), E_T from phi_T and cached scores."""
    outputs, head_scores = student_apply(subtree(student_params, "student"), batch, config, train)
    mask = batch["attention_mask"]
    student_expl = attention_explanation(student_params["explainer.head_coeffs"], head_scores, mask)
    teacher_expl = attention_explanation(teacher_expl_params["head_coeffs"], batch["teacher_head_scores"], mask)
    valid = batch.get("valid")
    sim = simulation_loss(outputs, batch["teacher_outputs"], valid)
    expl = explanation_loss(teacher_expl, student_expl, mask, valid)
    return sim + meta.beta * expl, {"sim_loss": sim, "expl_loss": expl}


def valid_loss(student_params: Params, batch: Batch, config: ModelConfig) -> torch.Tensor:
    """``make_trainer``'s ``valid_loss``: L_sim of the student without dropout."""
    outputs, _ = student_apply(subtree(student_params, "student"), batch, config, train=False)
    return simulation_loss(outputs, batch["teacher_outputs"], batch.get("valid"))


def global_norm(tree: Params) -> torch.Tensor:
    """``optax.tree.norm``."""
    return torch.sqrt(sum(torch.sum(torch.square(t)) for t in tree.values()))


def clip_by_global_norm(tree: Params, max_norm: float) -> tuple[Params, torch.Tensor]:
    """``optax.clip_by_global_norm``: unchanged below ``max_norm``, else t / norm * max_norm."""
    norm = global_norm(tree)
    return {k: torch.where(norm < max_norm, t, t / norm * max_norm) for k, t in tree.items()}, norm


def inner_update(student_params: Params, teacher_expl_params: Params, batch: Batch, config: ModelConfig,
                 meta: MetaConfig) -> tuple[Params, dict[str, torch.Tensor]]:
    """``make_trainer``'s ``inner_update``: clip -> g + wd * theta (every student param, phi_S too) -> -lr."""
    grads, aux = torch.func.grad(student_loss, has_aux=True)(student_params, teacher_expl_params, batch, config, meta)
    grads, aux["grad_norm"] = clip_by_global_norm(grads, meta.inner_clip)
    updated = {k: p + (grads[k] + meta.inner_weight_decay * p) * -meta.inner_lr for k, p in student_params.items()}
    return updated, aux


def meta_gradient(student_params: Params, teacher_expl_params: Params, train_batch: Batch, valid_batch: Batch,
                  config: ModelConfig, meta: MetaConfig) -> Params:
    """``make_trainer``'s ``meta_gradient`` in exact mode: d L_val(pilot student) / d phi_T."""

    def outer(phi):
        pilot, _ = inner_update(student_params, phi, train_batch, config, meta)
        return valid_loss(pilot, valid_batch, config)

    return torch.func.grad(outer)(teacher_expl_params)


def adam_init(params: Params) -> AdamState:
    """``optax.scale_by_adam``'s init: zero moments (separate tensors: aliasing would retrigger torch.compile)."""
    device = next(iter(params.values())).device
    mu, nu = ({k: torch.zeros_like(p) for k, p in params.items()} for _ in range(2))
    return AdamState(mu, nu, torch.zeros((), dtype=torch.int32, device=device))


def meta_update(grads: Params, opt_state: AdamState, params: Params, meta: MetaConfig) -> tuple[Params, AdamState]:
    """``meta_optimizer`` then ``optax.apply_updates``: clip -> Adam(eps_root 1e-8) -> -meta_lr."""
    grads, _ = clip_by_global_norm(grads, meta.meta_clip)
    count = opt_state.count + 1
    mu = {k: (1 - ADAM_B1) * g + ADAM_B1 * opt_state.mu[k] for k, g in grads.items()}
    nu = {k: (1 - ADAM_B2) * g**2 + ADAM_B2 * opt_state.nu[k] for k, g in grads.items()}
    correction1 = 1 - ADAM_B1 ** count.to(torch.float64)
    correction2 = 1 - ADAM_B2 ** count.to(torch.float64)
    new = {}
    for k, p in params.items():
        mu_hat, nu_hat = mu[k] / correction1.to(p.dtype), nu[k] / correction2.to(p.dtype)
        new[k] = p + mu_hat / (torch.sqrt(nu_hat + ADAM_EPS_ROOT) + ADAM_EPS) * -meta.meta_lr
    return new, AdamState(mu, nu, count)


def meta_step(state: TrainState, train_batch: Batch, valid_batch: Batch, config: ModelConfig,
              meta: MetaConfig) -> tuple[TrainState, dict[str, torch.Tensor]]:
    """``make_trainer``'s ``meta_step``: the inner student step, then the pilot step and Adam on phi_T."""
    params, aux = inner_update(state.student_params, state.teacher_expl_params, train_batch, config, meta)
    meta_grads = meta_gradient(params, state.teacher_expl_params, train_batch, valid_batch, config, meta)
    teacher_expl_params, meta_opt_state = meta_update(meta_grads, state.meta_opt_state, state.teacher_expl_params, meta)
    aux["meta_grad_norm"] = global_norm(meta_grads)
    return TrainState(params, teacher_expl_params, meta_opt_state, state.step + 1), aux


# ---------------------------------------------------------------------- benchmark


def make_batch(config: ModelConfig, batch: int, seq: int, dtype: torch.dtype, rng: np.random.Generator,
               device: str | torch.device) -> Batch:
    """``meta_step.py``'s ``_batch`` (same draws from ``rng``): lengths in [seq/2, seq], random teacher cache."""
    lengths = rng.integers(seq // 2, seq + 1, batch)
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int64)
    arrays = {
        "input_ids": rng.integers(1000, 2000, (batch, seq)) * mask,
        "attention_mask": mask,
        "valid": np.ones((batch,)),
        "teacher_outputs": rng.normal(size=(batch, 2)),
        "teacher_head_scores": rng.normal(size=(batch, config.num_layers, config.num_heads, seq)),
    }
    return {k: torch.as_tensor(v, dtype=torch.int64 if v.dtype.kind == "i" else dtype, device=device)
            for k, v in arrays.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(shape: str, dtype: torch.dtype, repeats: int, device: torch.device,
          compile_step: bool) -> dict[str, Any]:
    """One row: median seconds per meta step after 2 warm-up steps, and the allocator's peak (CUDA)."""
    config, batch, seq = SHAPES[shape]
    state = init_state(config, dtype=dtype, device=device)
    rng = np.random.default_rng(0)
    train = make_batch(config, batch, seq, dtype, rng, device)
    valid = make_batch(config, batch, seq, dtype, rng, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step = functools.partial(meta_step, config=config, meta=MetaConfig())
    note = None
    if compile_step:
        try:
            compiled = torch.compile(step)
            state, _ = compiled(state, train, valid)  # compiles
            step = compiled
        except Exception as e:  # noqa: BLE001 (any failure: report it and time eager)
            note = f"{shape}: torch.compile failed, timed eager ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
    for _ in range(2):  # warm-up
        state, metrics = step(state, train, valid)
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, metrics = step(state, train, valid)
        _sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    finite = bool(torch.isfinite(metrics["sim_loss"]).item() and torch.isfinite(metrics["meta_grad_norm"]).item())
    return {"seconds": statistics.median(times), "peak_bytes": peak, "finite": finite, "note": note}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU ({torch.get_num_threads()} threads)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["minilm"], choices=sorted(SHAPES))
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=None, help="default: 20 on CUDA, 3 on CPU")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="wrap the step in torch.compile (eager if it fails)")
    parser.add_argument("--matmul-precision", default="highest", choices=["highest", "high", "medium"],
                        help="torch.set_float32_matmul_precision; 'high' allows TF32 (JAX's GPU default)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    repeats = args.repeats or (20 if device.type == "cuda" else 3)
    torch.set_float32_matmul_precision(args.matmul_precision)

    step_kind = "torch.compile" if args.compile else "eager"
    print(f"# torch.func meta step (exact, reverse over reverse, {step_kind}), {datetime.date.today()}, "
          f"torch {torch.__version__}, {_device_name(device)}, float32 matmul precision "
          f"{torch.get_float32_matmul_precision()}, median of {repeats}\n")
    print("| shape | dtype | ms / step | peak GiB |")
    print("|---|---|---:|---:|")
    notes = []
    for shape in args.shapes:
        for dtype in args.dtypes:
            r = bench(shape, getattr(torch, dtype), repeats, device, args.compile)
            peak = "n/a" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**30:.2f}"
            print(f"| {shape} | {dtype} | {r['seconds'] * 1e3:.1f} | {peak} |", flush=True)
            notes += [r["note"]] if r["note"] else []
            notes += [] if r["finite"] else [f"{shape} {dtype}: non-finite loss or meta-gradient"]
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
