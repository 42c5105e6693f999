"""An on-disk cache of tokenized arrays with atomic writes.

Entries are ``.npz`` files named by a hash of their key (data set + content hash,
tokenizer fingerprint, max length, ...). A write goes to a temporary file in the same
folder and is renamed into place with ``os.replace``, which is atomic on POSIX: a run
killed mid-write leaves at most a stray ``*.tmp`` file, never a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["default_cache_dir", "cache_key", "cached_arrays", "save_arrays_atomic"]


def default_cache_dir() -> Path:
    """``$SMAT_CACHE_DIR``, else ``~/.cache/smat``."""
    return Path(os.environ.get("SMAT_CACHE_DIR", Path.home() / ".cache" / "smat"))


def cache_key(parts: Mapping[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def save_arrays_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_arrays(name: str, parts: Mapping[str, Any], build: Callable[[], Mapping[str, np.ndarray]], *,
                  cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Returns ``build()``'s arrays, from the cache when an entry for ``parts`` exists.

    Args:
      name: readable prefix of the file name (e.g. "imdb-minilm").
      parts: everything the arrays depend on; hashed into the key.
      build: computes the arrays on a miss.
      cache_dir: default :func:`default_cache_dir`.
    """
    path = Path(cache_dir or default_cache_dir()) / f"{name}-{cache_key(parts)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            path.unlink(missing_ok=True)  # unreadable entry (disk trouble): rebuild it
    arrays = {k: np.asarray(v) for k, v in build().items()}
    save_arrays_atomic(path, arrays)
    return arrays
