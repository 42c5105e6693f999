"""Wiegreffe & Pinter's diagnostic ("guided") MLP (their Section 3.4, Table 3).

A context-free token model whose only access to the sequence is an attention distribution
given from outside: each token embedding goes through ``u_t = tanh(W e_t + b)`` (J&W's
``EncoderAverage`` with ``projection=True``; W 300 -> 128), the tokens are pooled as
``c = sum_t alpha_t u_t`` and ``Linear(hidden, classes)`` gives the logit. If the guide
attention carries information about the task, the MLP does better with it than with a
uniform one. The guides of Table 3:

- ``"uniform"``: alpha_t = 1 / (#content tokens) on the real, non-special tokens (UNIFORM);
- ``"trained"``: the MLP's own additive attention ``w2^T tanh(W1 u_t + b1)``, W1 128 -> 64,
  trained with it (TRAINED MLP, J&W's "average" encoder);
- ``"imposed"``: the attention given per example in ``batch["guide"]`` [batch, seq], at train
  and test time (BASE LSTM: a trained base model's attention; ADVERSARY: the W&P adversary's).
  Only the token layer, the embeddings and the output layer learn. :func:`guide_data`
  attaches such attention to the splits.

``<SOS>``, ``<EOS>`` and padding get exactly zero weight in every case (the content mask of
:func:`baselines.models.content_mask`). The model follows the :class:`baselines.models.Model`
protocol, so :func:`baselines.train.train` and :func:`baselines.train.predict` run it
unchanged. Initialisation is PyTorch's default, as the reference.

References:
  Wiegreffe & Pinter, "Attention is not not Explanation", EMNLP 2019, Section 3.4 and
  Table 3 (code: ``--encoder average`` with ``--attention frozen | tanh | pre-loaded``).
  Jain & Wallace, "Attention is not Explanation", NAACL 2019 (``EncoderAverage``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from baselines.models import (
    EOS_ID,
    PAD_ID,
    SOS_ID,
    Model,
    _embedding_init,
    _linear,
    _linear_init,
    additive_attention,
    additive_attention_init,
    content_mask,
    uniform_attention,
)

__all__ = ["GUIDES", "GuidedMLPConfig", "guide_data", "guided_mlp"]

Array = jax.Array
Params = dict[str, Any]

GUIDES = ("uniform", "trained", "imposed")


@dataclasses.dataclass(frozen=True)
class GuidedMLPConfig:
    """Static configuration of :func:`guided_mlp`.

    Attributes:
      vocab_size: rows of the embedding table (reserved ids included).
      embedding_dim: 300 in the paper.
      hidden_size: width of the token layer ``tanh(W e_t + b)`` (128).
      attention_hidden: width of the trained guide's tanh layer (``hidden_size // 2`` = 64).
      num_classes: 1 for the binary sigmoid output.
      guide: "uniform", "trained" or "imposed" (see the module docstring).
      special_ids: token ids that get zero attention when the batch has no ``special_mask``.
      pad_id: the padding id; its embedding row is zeroed at init.
    """

    vocab_size: int
    embedding_dim: int = 300
    hidden_size: int = 128
    attention_hidden: int = 64
    num_classes: int = 1
    guide: str = "trained"
    special_ids: tuple[int, ...] = (SOS_ID, EOS_ID)
    pad_id: int = PAD_ID

    def __post_init__(self):
        if self.guide not in GUIDES:
            raise ValueError(f"guide must be one of {GUIDES}, got {self.guide!r}")
        for name in ("vocab_size", "embedding_dim", "hidden_size", "attention_hidden", "num_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id {self.pad_id} is outside the vocabulary of {self.vocab_size}")


def guided_mlp(config: GuidedMLPConfig) -> Model:
    """The diagnostic MLP as pure functions.

    Args:
      config: a :class:`GuidedMLPConfig`.

    Returns:
      A :class:`baselines.models.Model`. Parameters are a plain dict
      ``{"embedding": [vocab, embedding_dim], "encoder": {"kernel", "bias"} (the token layer),
      "attention": {"proj", "score"} ("trained" only), "decoder": {"kernel", "bias"}}``.
      (The reference kept an unused attention module for the other guides; it got no
      gradient and no weight decay, so leaving it out changes nothing.)

      ``batch`` is ``{"input_ids", "attention_mask"[, "special_mask"][, "guide"]}``, each
      [batch, seq]; ``"guide"`` is required by ``guide="imposed"`` and is used as given on
      the content tokens and zeroed elsewhere (not renormalised). ``aux`` holds
      ``attention`` (the weights that made the logits, ``attention_override`` if given),
      ``scores`` ("trained" only), ``hidden`` [batch, seq, hidden_size] (the token layer's
      ``u``), ``context`` [batch, hidden_size], ``mask`` and ``embeddings``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = guided_mlp(GuidedMLPConfig(vocab_size=20, embedding_dim=5, hidden_size=4, guide="imposed"))
      >>> params = model.init(jax.random.key(0))
      >>> batch = {"input_ids": jnp.array([[2, 5, 6, 3, 0]]), "attention_mask": jnp.array([[1, 1, 1, 1, 0]]),
      ...          "guide": jnp.array([[0.0, 0.25, 0.75, 0.0, 0.0]])}
      >>> logits, aux = jax.jit(model.apply)(params, batch)
      >>> logits.shape, aux["attention"][0, 2].item()
      ((1, 1), 0.75)
    """
    trained = config.guide == "trained"

    def init(key, embeddings=None) -> Params:
        k_emb, k_enc, k_attn, k_dec = jax.random.split(key, 4)
        params = {"embedding": _embedding_init(k_emb, config, embeddings),
                  "encoder": _linear_init(k_enc, config.embedding_dim, config.hidden_size),
                  "decoder": _linear_init(k_dec, config.hidden_size, config.num_classes)}
        if trained:
            params["attention"] = additive_attention_init(k_attn, config.hidden_size, config.attention_hidden)
        return params

    def embed(params, batch):
        return params["embedding"][batch["input_ids"]]

    def decode(params, aux, attention):
        """Logits from attention weights [..., batch, seq] over the token features ``aux["hidden"]``."""
        context = jnp.einsum("...bs,bsh->...bh", attention.astype(aux["hidden"].dtype), aux["hidden"])
        return _linear(params["decoder"], context)

    def apply(params, batch, *, key=None, train=False, attention_override=None, embeddings=None):
        del key, train  # no dropout in the reference
        if embeddings is None:
            embeddings = embed(params, batch)
        hidden = jnp.tanh(_linear(params["encoder"], embeddings))  # each token on its own
        mask = content_mask(batch, config.special_ids)
        aux: dict[str, Any] = {"embeddings": embeddings, "hidden": hidden, "mask": mask}
        if attention_override is not None:
            weights = attention_override.astype(hidden.dtype)
        elif trained:
            weights, aux["scores"] = additive_attention(params["attention"], hidden, mask)
        elif config.guide == "uniform":
            weights = uniform_attention(mask, hidden.dtype)
        else:
            if "guide" not in batch:
                raise ValueError('guide="imposed" needs the guide attention in batch["guide"] [batch, seq]')
            weights = jnp.where(mask, batch["guide"].astype(hidden.dtype), jnp.zeros((), hidden.dtype))
        aux["attention"] = weights
        aux["context"] = jnp.einsum("bs,bsh->bh", weights, hidden)
        return _linear(params["decoder"], aux["context"]), aux

    return Model(init, apply, embed, decode, config)


def guide_data(data: Mapping[str, Mapping[str, np.ndarray]],
               guides: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Attaches a guide attention to the splits, for ``guide="imposed"``.

    Args:
      data: splits from :func:`baselines.train.encode_split`.
      guides: per split, attention [examples, width] aligned with the split's tokens (e.g.
        one seed of :func:`baselines.train.predict`'s attention for a base model or an
        adversary), width at most the split's (zero-padded to it).

    Returns:
      A new dict of splits; those named in ``guides`` gain ``guide`` [examples, seq] float32.

    Raises:
      ValueError: for an unknown split, a wrong shape, or attention that is not finite and
        non-negative.
    """
    out = {split: dict(arrays) for split, arrays in data.items()}
    for split, guide in guides.items():
        if split not in data:
            raise ValueError(f"split {split!r} is not in the data ({sorted(data)})")
        n, width = data[split]["input_ids"].shape
        guide = np.asarray(guide, np.float32)
        if guide.ndim != 2 or guide.shape[0] != n or guide.shape[1] > width:
            raise ValueError(f"{split}: the guide has shape {guide.shape}, expected ({n}, <= {width})")
        if not (np.all(np.isfinite(guide)) and np.all(guide >= 0)):
            raise ValueError(f"{split}: the guide must be finite and non-negative")
        out[split]["guide"] = np.pad(guide, ((0, 0), (0, width - guide.shape[1])))
    return out
