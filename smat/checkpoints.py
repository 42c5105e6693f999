"""Atomic pytree checkpoints (params, optimizer states, PRNG keys) as ``.npz`` files.

A checkpoint stores the leaves of a pytree in flattening order; loading needs a pytree
of the same structure (``like``), e.g. the freshly initialised state of the same run,
so no pickled code is ever read back. Typed PRNG keys are stored as their key data.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["save", "load", "CheckpointMismatchError"]


class CheckpointMismatchError(ValueError):
    """The checkpoint was written for a different pytree (another config or model)."""


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def save(path: str | os.PathLike, tree: Any, metadata: dict | None = None) -> None:
    """Writes ``tree`` (and JSON ``metadata``) to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    leaves, treedef = jax.tree.flatten(tree)
    arrays = {f"leaf_{i:05d}": np.asarray(jax.random.key_data(x) if _is_key(x) else x) for i, x in enumerate(leaves)}
    arrays["__treedef__"] = np.asarray(str(treedef))
    arrays["__metadata__"] = np.asarray(json.dumps(metadata or {}))
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike, like: Any) -> tuple[Any, dict]:
    """Reads a checkpoint into the structure of ``like``; returns ``(tree, metadata)``.

    Raises:
      CheckpointMismatchError: the stored structure, shapes or dtypes differ from ``like``.
    """
    leaves, treedef = jax.tree.flatten(like)
    with np.load(path, allow_pickle=False) as data:
        if str(data["__treedef__"]) != str(treedef):
            raise CheckpointMismatchError(f"{path} holds a different pytree structure than this run's state")
        out = []
        for i, ref in enumerate(leaves):
            value = data[f"leaf_{i:05d}"]
            if _is_key(ref):
                out.append(jax.random.wrap_key_data(jnp.asarray(value), impl=jax.random.key_impl(ref)))
                continue
            ref = np.asarray(ref)
            if value.shape != ref.shape or value.dtype != ref.dtype:
                raise CheckpointMismatchError(f"{path}: leaf {i} is {value.dtype}{list(value.shape)}, this run "
                                              f"expects {ref.dtype}{list(ref.shape)}")
            out.append(jnp.asarray(value))
        metadata = json.loads(str(data["__metadata__"]))
    return jax.tree.unflatten(treedef, out), metadata
