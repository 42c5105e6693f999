"""Frozen configs for our encoders, parsed from Hugging Face ``config.json``.

``config.json`` is read with an allow-list: every attribute is either mapped onto a
field of our dataclass, known and checked to have the one value we implement (for
example ``position_embedding_type == "absolute"``), or known to be irrelevant to the
forward pass (``transformers_version``, ``initializer_range``, ...). Anything else
raises :class:`ConfigError`, because silently ignoring an attribute is how a
re-implementation drifts from the checkpoint it claims to load.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

__all__ = [
    "ConfigError",
    "TextConfig",
    "ViTConfig",
    "EncoderConfig",
    "TEXT_FAMILIES",
    "config_from_hf",
]

TEXT_FAMILIES = ("bert", "electra", "roberta", "xlm-roberta", "distilbert")
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "tanh", "silu")


class ConfigError(ValueError):
    """A ``config.json`` we cannot represent faithfully."""


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """A post-LN transformer text encoder (BERT / MiniLM, ELECTRA, RoBERTa, XLM-R, DistilBERT).

    Attributes:
      family: one of ``TEXT_FAMILIES``; selects the key map and the embedding function.
      vocab_size, hidden_size, num_layers, num_heads, intermediate_size: the usual sizes.
      max_position_embeddings: rows of the position table. RoBERTa / XLM-R offset
        positions by ``pad_token_id + 1``, so they accept 2 tokens fewer.
      type_vocab_size: token-type rows; 0 means no token-type embedding (DistilBERT).
      embedding_size: ELECTRA's embedding width; when it differs from ``hidden_size``
        an ``embeddings_project`` layer maps it up. ``None`` means ``hidden_size``.
      hidden_act: activation of the feed-forward block.
      layer_norm_eps: epsilon of every LayerNorm.
      pad_token_id: padding id (also the RoBERTa position offset).
      hidden_dropout, attention_dropout: dropout rates used when ``train=True``.
      classifier_dropout: dropout before the classification head (``None``: hidden_dropout).
      num_labels: outputs of the classification head.
      head: which classification head the params carry (``None``: encoder only).
      pooler: whether the params carry BERT's pooler (dense + tanh on [CLS]).
      mask_bias: additive bias on padded keys before the attention softmax. The SMaT
        reference used -1e10; any value below about -1e4 gives exactly zero weight.
      uniform_attention: every head of every layer attends uniformly to the real tokens
        (the queries are zeroed, so the softmax sees only the padding bias): the ablation of
        Neely et al. 2022, Table 3. The query weights then receive no gradient.
    """

    family: str = "bert"
    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    embedding_size: int | None = None
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    classifier_dropout: float | None = None
    num_labels: int = 2
    head: str | None = None
    pooler: bool = False
    mask_bias: float = -1e10
    uniform_attention: bool = False

    def __post_init__(self):
        if self.family not in TEXT_FAMILIES:
            raise ConfigError(f"family {self.family!r} is not one of {TEXT_FAMILIES}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act {self.hidden_act!r} is not one of {ACTIVATIONS}")
        if self.head not in (None, *HEADS[self.family]):
            raise ConfigError(f"head {self.head!r} does not exist for family {self.family!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def embedding_width(self) -> int:
        return self.embedding_size or self.hidden_size

    @property
    def position_offset(self) -> int:
        """First position id used by a real token (RoBERTa counts from pad_token_id + 1)."""
        return self.pad_token_id + 1 if self.family in ("roberta", "xlm-roberta") else 0

    @property
    def max_length(self) -> int:
        """The longest sequence the position table can embed."""
        return self.max_position_embeddings - self.position_offset


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """A pre-LN Vision Transformer (HF ``ViTModel`` layout).

    ``image_size`` is the size the position table was trained for; other sizes are
    served by bicubic interpolation of the patch position embeddings.
    """

    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    qkv_bias: bool = True
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    num_labels: int = 2
    head: str | None = None
    pooler: bool = False
    family: str = "vit"

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act {self.hidden_act!r} is not one of {ACTIVATIONS}")
        if self.image_size % self.patch_size:
            raise ConfigError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.head not in (None, "vit"):
            raise ConfigError(f"head {self.head!r} does not exist for ViT")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


EncoderConfig = TextConfig | ViTConfig

# Classification heads per family (the HF *ForSequenceClassification layouts).
HEADS = {
    "bert": ("bert",),
    "electra": ("electra",),
    "roberta": ("roberta",),
    "xlm-roberta": ("roberta",),
    "distilbert": ("distilbert",),
}

# ----------------------------------------------------------------------------------
# config.json parsing

_MODEL_TYPES = {
    "bert": "bert",
    "electra": "electra",
    "roberta": "roberta",
    "xlm-roberta": "xlm-roberta",
    "distilbert": "distilbert",
    "vit": "vit",
}

# Attributes that never change the forward pass of an encoder.
_IGNORED = frozenset({
    "_name_or_path", "architectures", "transformers_version", "torch_dtype", "dtype",
    "initializer_range", "initializer_factor", "gradient_checkpointing", "use_cache",
    "return_dict", "output_hidden_states", "output_attentions", "torchscript",
    "tie_word_embeddings", "tie_encoder_decoder", "chunk_size_feed_forward",
    "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id", "unk_token_id",
    "mask_token_id", "decoder_start_token_id", "problem_type", "label2id", "finetuning_task",
    "tokenizer_class", "prefix", "task_specific_params", "output_past", "pruned_heads",
    "layer_norm_type", "model_type", "id2label", "num_labels", "classifier_dropout",
    "_attn_implementation_autoset", "_commit_hash", "max_length", "vocab_file",
    "summary_type", "summary_use_proj", "summary_activation", "summary_last_dropout",
    "summary_proj_to_labels", "encoder_stride", "tie_weights_", "qa_dropout",
    "sinusoidal_pos_embds", "add_cross_attention", "is_decoder", "is_encoder_decoder",
    "position_embedding_type", "pooler_output_size", "pooler_act", "cross_attention_hidden_size",
    "add_pooling_layer",
})

# Known attributes whose value must be the one we implement.
_REQUIRED_VALUES = {
    "position_embedding_type": ("absolute",),
    "is_decoder": (False,),
    "add_cross_attention": (False,),
    "is_encoder_decoder": (False,),
    "pruned_heads": ({},),
    "pooler_act": ("tanh",),
}

_TEXT_FIELDS = {  # HF attribute -> our field
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_size": "intermediate_size",
    "max_position_embeddings": "max_position_embeddings",
    "type_vocab_size": "type_vocab_size",
    "embedding_size": "embedding_size",
    "hidden_act": "hidden_act",
    "layer_norm_eps": "layer_norm_eps",
    "pad_token_id": "pad_token_id",
    "hidden_dropout_prob": "hidden_dropout",
    "attention_probs_dropout_prob": "attention_dropout",
}

_DISTILBERT_FIELDS = {
    "vocab_size": "vocab_size",
    "dim": "hidden_size",
    "n_layers": "num_layers",
    "n_heads": "num_heads",
    "hidden_dim": "intermediate_size",
    "max_position_embeddings": "max_position_embeddings",
    "activation": "hidden_act",
    "pad_token_id": "pad_token_id",
    "dropout": "hidden_dropout",
    "attention_dropout": "attention_dropout",
    "seq_classif_dropout": "classifier_dropout",
}

_VIT_FIELDS = {
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_layers",
    "num_attention_heads": "num_heads",
    "intermediate_size": "intermediate_size",
    "image_size": "image_size",
    "patch_size": "patch_size",
    "num_channels": "num_channels",
    "hidden_act": "hidden_act",
    "layer_norm_eps": "layer_norm_eps",
    "qkv_bias": "qkv_bias",
    "hidden_dropout_prob": "hidden_dropout",
    "attention_probs_dropout_prob": "attention_dropout",
}


def config_from_hf(hf: Mapping[str, Any], *, head: str | None = None, pooler: bool = False) -> EncoderConfig:
    """Parses a Hugging Face ``config.json`` dict into our frozen config.

    Args:
      hf: the parsed ``config.json``.
      head: the classification head the checkpoint carries (decided from its keys).
      pooler: whether the checkpoint carries BERT's pooler.

    Returns:
      A :class:`TextConfig` or :class:`ViTConfig`.

    Raises:
      ConfigError: unknown ``model_type``, an attribute outside the allow-list, or a
        known attribute with a value we do not implement. All problems are listed.
    """
    model_type = hf.get("model_type")
    if model_type not in _MODEL_TYPES:
        raise ConfigError(
            f"config.json has model_type={model_type!r}; supported: {sorted(_MODEL_TYPES)}"
        )
    family = _MODEL_TYPES[model_type]
    fields = {"distilbert": _DISTILBERT_FIELDS, "vit": _VIT_FIELDS}.get(family, _TEXT_FIELDS)
    kwargs: dict[str, Any] = {}
    problems = []
    for name, value in hf.items():
        if name in fields:
            kwargs[fields[name]] = value
        elif name in _REQUIRED_VALUES and value not in _REQUIRED_VALUES[name]:
            problems.append(f"{name}={value!r} (only {_REQUIRED_VALUES[name]} is implemented)")
        elif name not in _IGNORED:
            problems.append(f"{name}={value!r} (unknown attribute)")
    if problems:
        raise ConfigError(
            f"config.json for model_type={model_type!r} has attributes we cannot honour:\n  "
            + "\n  ".join(problems)
        )
    if "id2label" in hf:
        kwargs["num_labels"] = len(hf["id2label"])
    elif "num_labels" in hf:
        kwargs["num_labels"] = int(hf["num_labels"])
    if family != "vit":
        kwargs["family"] = family
        if family == "distilbert":
            kwargs["type_vocab_size"] = 0
            kwargs["layer_norm_eps"] = 1e-12
        elif hf.get("classifier_dropout") is not None:
            kwargs["classifier_dropout"] = hf["classifier_dropout"]
        if kwargs.get("embedding_size") == kwargs.get("hidden_size"):
            kwargs["embedding_size"] = None
    try:
        cls = ViTConfig if family == "vit" else TextConfig
        return cls(**kwargs, head=head, pooler=pooler)
    except TypeError as e:  # a field we map but the dataclass lacks: a bug here, not in the file
        raise ConfigError(str(e)) from e
