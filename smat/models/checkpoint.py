"""Loading Hugging Face checkpoints (``config.json`` + ``model.safetensors``) into our pytrees.

Each family has a key map from HF tensor names to (params path, layer index,
transform). Loading checks every tensor of the file against ``jax.eval_shape`` of the
encoder's ``init`` and raises one :class:`CheckpointError` listing every missing,
unexpected and mis-shaped key, rather than failing on the first or ignoring the rest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from smat.models import hub
from smat.models.base import Encoder, Params
from smat.models.config import ConfigError, EncoderConfig, config_from_hf

__all__ = ["CheckpointError", "Pretrained", "load_pretrained", "build", "key_map", "load_params"]


class CheckpointError(ValueError):
    """A checkpoint whose tensors do not match the architecture its config describes."""


class Transform(NamedTuple):
    to_ours: Callable[[np.ndarray], np.ndarray]
    hf_shape: Callable[[tuple], tuple]  # our shape -> the shape the HF tensor must have


COPY = Transform(lambda x: x, lambda s: s)
LINEAR = Transform(lambda x: x.T, lambda s: s[::-1])  # torch Linear stores [out, in]
CONV = Transform(lambda x: x.transpose(2, 3, 1, 0), lambda s: (s[3], s[2], s[0], s[1]))  # OIHW -> HWIO
LEADING_ONE = Transform(lambda x: x.reshape(x.shape[1:]), lambda s: (1, *s))  # [1, n, d] -> [n, d]
CLS = Transform(lambda x: x.reshape(-1), lambda s: (1, 1, *s))  # [1, 1, d] -> [d]


class Slot(NamedTuple):
    path: tuple[str, ...]
    layer: int | None
    transform: Transform


def build(config: EncoderConfig) -> Encoder:
    """The :class:`Encoder` for a config (text or ViT)."""
    from smat.models.text import text_encoder
    from smat.models.vit import vit_encoder

    return vit_encoder(config) if config.family == "vit" else text_encoder(config)


# ------------------------------------------------------------------------- key maps

_BERT_LAYER = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attn_out",
    "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "ffn_in",
    "output.dense": "ffn_out",
    "output.LayerNorm": "ffn_norm",
}
_DISTILBERT_LAYER = {
    "attention.q_lin": "query",
    "attention.k_lin": "key",
    "attention.v_lin": "value",
    "attention.out_lin": "attn_out",
    "sa_layer_norm": "attn_norm",
    "ffn.lin1": "ffn_in",
    "ffn.lin2": "ffn_out",
    "output_layer_norm": "ffn_norm",
}
_VIT_LAYER = {
    "layernorm_before": "attn_norm",
    "attention.attention.query": "query",
    "attention.attention.key": "key",
    "attention.attention.value": "value",
    "attention.output.dense": "attn_out",
    "layernorm_after": "ffn_norm",
    "intermediate.dense": "ffn_in",
    "output.dense": "ffn_out",
}
_LAYER_PREFIX = {"distilbert": "transformer.layer", "vit": "encoder.layer"}
_HEAD_KEYS = {  # HF module -> our head entry
    "bert": {"classifier": "out"},
    "electra": {"classifier.dense": "dense", "classifier.out_proj": "out"},
    "roberta": {"classifier.dense": "dense", "classifier.out_proj": "out"},
    "distilbert": {"pre_classifier": "dense", "classifier": "out"},
    "vit": {"classifier": "out"},
}
# Base-model prefixes of HF *For* classes (XLM-R reuses "roberta").
_BASE_PREFIXES = ("bert.", "electra.", "roberta.", "distilbert.", "vit.")
# Pretraining heads and buffers that a checkpoint may carry and an encoder never uses.
_DISCARDED = (
    "cls.", "lm_head.", "discriminator_predictions.", "generator_predictions.", "generator_lm_head.",
    "vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "qa_outputs.",
    "embeddings.position_ids", "embeddings.token_type_ids", "embeddings.mask_token",
)


def _dense_slots(hf: str, path: tuple, layer=None, *, norm=False, bias=True) -> dict[str, Slot]:
    if norm:
        return {f"{hf}.weight": Slot((*path, "scale"), layer, COPY), f"{hf}.bias": Slot((*path, "bias"), layer, COPY)}
    slots = {f"{hf}.weight": Slot((*path, "kernel"), layer, LINEAR)}
    if bias:
        slots[f"{hf}.bias"] = Slot((*path, "bias"), layer, COPY)
    return slots


def key_map(config: EncoderConfig) -> dict[str, Slot]:
    """HF tensor name (without the base-model prefix) -> where it goes in our params."""
    family = config.family
    slots: dict[str, Slot] = {}
    if family == "vit":
        slots["embeddings.cls_token"] = Slot(("embeddings", "cls"), None, CLS)
        slots["embeddings.position_embeddings"] = Slot(("embeddings", "position"), None, LEADING_ONE)
        slots["embeddings.patch_embeddings.projection.weight"] = Slot(("embeddings", "patch", "kernel"), None, CONV)
        slots["embeddings.patch_embeddings.projection.bias"] = Slot(("embeddings", "patch", "bias"), None, COPY)
        slots.update(_dense_slots("layernorm", ("final_norm",), norm=True))
        layer_names = _VIT_LAYER
    else:
        slots["embeddings.word_embeddings.weight"] = Slot(("embeddings", "word"), None, COPY)
        slots["embeddings.position_embeddings.weight"] = Slot(("embeddings", "position"), None, COPY)
        if config.type_vocab_size:
            slots["embeddings.token_type_embeddings.weight"] = Slot(("embeddings", "token_type"), None, COPY)
        slots.update(_dense_slots("embeddings.LayerNorm", ("embeddings", "norm"), norm=True))
        if config.embedding_width != config.hidden_size:
            slots.update(_dense_slots("embeddings_project", ("embeddings", "project")))
        layer_names = _DISTILBERT_LAYER if family == "distilbert" else _BERT_LAYER
    prefix = _LAYER_PREFIX.get(family, "encoder.layer")
    qkv_bias = getattr(config, "qkv_bias", True)
    for i in range(config.num_layers):
        for hf, ours in layer_names.items():
            is_norm = "norm" in ours
            bias = qkv_bias or ours not in ("query", "key", "value")
            slots.update(_dense_slots(f"{prefix}.{i}.{hf}", ("layers", ours), i, norm=is_norm, bias=bias))
    if config.pooler:
        slots.update(_dense_slots("pooler.dense", ("pooler",)))
    if config.head is not None:
        for hf, ours in _HEAD_KEYS[config.head].items():
            slots.update(_dense_slots(hf, ("head", ours)))
    return slots


# -------------------------------------------------------------------------- loading


def _legacy_rename(name: str) -> str:
    # TF-converted BERT checkpoints name LayerNorm parameters gamma / beta.
    if name.endswith(".gamma"):
        return name[: -len(".gamma")] + ".weight"
    if name.endswith(".beta"):
        return name[: -len(".beta")] + ".bias"
    return name


def _strip_prefix(names: list[str]) -> tuple[dict[str, str], str]:
    """Maps stripped names to file names; the base prefix is the one most names carry."""
    counts = {p: sum(n.startswith(p) for n in names) for p in _BASE_PREFIXES}
    prefix = max(counts, key=counts.get)
    if counts[prefix] == 0:
        prefix = ""
    mapping = {}
    for name in names:
        stripped = name[len(prefix):] if prefix and name.startswith(prefix) else name
        mapping[_legacy_rename(stripped)] = name
    return mapping, prefix


_HEAD_FAMILY = {"bert": "bert", "electra": "electra", "roberta": "roberta", "xlm-roberta": "roberta",
                "distilbert": "distilbert", "vit": "vit"}


def _detect_head_and_pooler(family: str, names) -> tuple[str | None, bool]:
    head_family = _HEAD_FAMILY[family]
    head = head_family if any(f"{hf}.weight" in names for hf in _HEAD_KEYS[head_family]) else None
    return head, "pooler.dense.weight" in names


def _read_tensors(directory: Path) -> dict[str, Any]:
    """Lazy handles name -> (file, name) over one or several safetensors shards."""
    from safetensors import safe_open

    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    if single.exists():
        files = [single]
    elif index.exists():
        files = sorted({directory / f for f in json.loads(index.read_text())["weight_map"].values()})
    else:
        found = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
        hint = ""
        if "pytorch_model.bin" in found:
            hint = (" It has pytorch_model.bin only: convert it once with transformers "
                    "(model.save_pretrained(dir, safe_serialization=True)).")
        raise CheckpointError(f"no model.safetensors in {directory} (found: {found}).{hint}")
    handles = {}
    for f in files:
        reader = safe_open(str(f), framework="np")
        for name in reader.keys():
            handles[name] = reader
    return handles


def load_params(directory: str | os.PathLike, config: EncoderConfig, *, dtype=jnp.float32) -> Params:
    """Reads the tensors of ``directory`` into the params pytree of ``config``.

    Raises:
      CheckpointError: listing every missing, unexpected or mis-shaped tensor.
    """
    directory = Path(directory)
    handles = _read_tensors(directory)
    names, prefix = _strip_prefix(list(handles))
    slots = key_map(config)
    expected = jax.eval_shape(build(config).init, jax.random.key(0))

    missing = sorted(set(slots) - set(names))
    unexpected = sorted(names[n] for n in names if n not in slots and not n.startswith(_DISCARDED))
    misshaped = []
    arrays: dict[tuple, Any] = {}
    for name, slot in slots.items():
        if name not in names:
            continue
        shape_struct = _get(expected, slot.path)
        our_shape = tuple(shape_struct.shape[1:] if slot.layer is not None else shape_struct.shape)
        want = tuple(slot.transform.hf_shape(our_shape))
        file_name = names[name]
        have = tuple(handles[file_name].get_slice(file_name).get_shape())
        if have != want:
            misshaped.append(f"{file_name}: checkpoint {have}, expected {want}")
            continue
        value = slot.transform.to_ours(handles[file_name].get_tensor(file_name))
        if slot.layer is None:
            arrays[slot.path] = value
        else:
            arrays.setdefault(slot.path, [None] * config.num_layers)[slot.layer] = value
    if missing or unexpected or misshaped:
        parts = [f"checkpoint {directory} does not match a {config.family} encoder "
                 f"({config.num_layers} layers, hidden {config.hidden_size}):"]
        def file_name_of(name):  # heads sit outside the base-model prefix
            return name if name.startswith(("classifier.", "pre_classifier.")) else prefix + name

        for title, items in (("missing", [file_name_of(m) for m in missing]), ("unexpected", unexpected),
                             ("wrong shape", misshaped)):
            if items:
                parts.append(f"  {title} ({len(items)}): " + ", ".join(items[:40])
                             + (" ..." if len(items) > 40 else ""))
        raise CheckpointError("\n".join(parts))

    def leaf(path, struct):
        key = tuple(p.key for p in path)
        value = arrays[key]
        if isinstance(value, list):
            value = np.stack(value)
        return jnp.asarray(value, dtype=dtype if jnp.issubdtype(struct.dtype, jnp.floating) else struct.dtype)

    return jax.tree_util.tree_map_with_path(leaf, expected)


def _get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


class Pretrained(NamedTuple):
    """A loaded model: ``config``, ``params`` and the pure functions of its encoder."""

    config: EncoderConfig
    params: Params
    encoder: Encoder
    path: Path

    @property
    def apply(self):
        return self.encoder.apply

    @property
    def embed(self):
        return self.encoder.embed

    @property
    def encode(self):
        return self.encoder.encode

    @property
    def init(self):
        return self.encoder.init


def read_config(directory: str | os.PathLike) -> EncoderConfig:
    """Parses ``config.json`` of a checkpoint directory, deciding head and pooler from its keys."""
    directory = Path(directory)
    config_file = directory / "config.json"
    if not config_file.exists():
        raise CheckpointError(f"{directory} has no config.json (expected HF layout: config.json + model.safetensors)")
    hf = json.loads(config_file.read_text())
    names, _ = _strip_prefix(list(_read_tensors(directory)))
    family = hf.get("model_type")
    if family not in _HEAD_FAMILY:
        raise ConfigError(f"{config_file}: model_type={family!r} is not supported; supported: {sorted(_HEAD_FAMILY)}")
    head, pooler = _detect_head_and_pooler(family, names)
    if head == "bert" and not pooler:
        raise CheckpointError(
            f"{directory}: has classifier.weight but no pooler; a BertForSequenceClassification head needs one "
            f"(architectures: {hf.get('architectures')}; token-level heads are not supported)")
    return config_from_hf(hf, head=head, pooler=pooler)


def load_pretrained(path_or_name: str | os.PathLike, *, dtype=jnp.float32) -> Pretrained:
    """Loads a Hugging Face checkpoint into a pure-function encoder.

    Args:
      path_or_name: a local directory in HF layout, or a hub name such as
        ``"sentence-transformers/all-MiniLM-L6-v2"`` (resolved by :mod:`smat.models.hub`,
        which prefers offline copies and says how to pass a directory without a network).
      dtype: floating dtype of the params.

    Returns:
      :class:`Pretrained` with ``config``, ``params``, ``apply``, ``embed``, ``encode``.

    Raises:
      ConfigError: a config attribute we cannot honour.
      CheckpointError: tensors that do not fit the architecture (all listed at once).
    """
    directory = hub.resolve(path_or_name)
    config = read_config(directory)
    params = load_params(directory, config, dtype=dtype)
    return Pretrained(config=config, params=params, encoder=build(config), path=directory)
