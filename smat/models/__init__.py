"""Pure-function JAX encoders that load Hugging Face checkpoints.

>>> from smat.models import load_pretrained
>>> model = load_pretrained("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
>>> out = model.apply(model.params, input_ids, attention_mask)  # doctest: +SKIP
"""

import jax

from smat.models.base import Encoder, EncoderOutput, Params
from smat.models.checkpoint import CheckpointError, Pretrained, build, key_map, load_params, load_pretrained, read_config
from smat.models.config import ConfigError, EncoderConfig, TextConfig, ViTConfig, config_from_hf
from smat.models.hub import HubUnavailableError
from smat.models.text import text_encoder, validate_text_inputs
from smat.models.vit import vit_encoder


def init(key: jax.Array, config: EncoderConfig) -> Params:
    """Random params for training ``config`` from scratch (normal(0.02) weights, as HF)."""
    return build(config).init(key)


__all__ = [
    "CheckpointError", "ConfigError", "Encoder", "EncoderConfig", "EncoderOutput", "HubUnavailableError",
    "Params", "Pretrained", "TextConfig", "ViTConfig", "build", "config_from_hf", "init", "key_map",
    "load_params", "load_pretrained", "read_config", "text_encoder", "validate_text_inputs", "vit_encoder",
]
