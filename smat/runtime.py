"""Process-wide JAX settings that the runners and the tests share.

:func:`enable_compilation_cache` turns on JAX's persistent compilation cache. Every row of
an experiment, every split of a teacher cache and every rerun of a killed run compiles
the same XLA programs again; with the cache they are read back instead (measured
2026-12-03 on the idle 2-core CPU: ``imdb:smoke`` 80 s without it, 74 s from an empty
cache, 36 s from a warm one). Entries are keyed by the program, the
compile options, the backend and the jax version, so a hit is the executable a fresh
compilation would give.

:func:`fast_compilation` trades step speed for compile speed, for runs that are mostly
compiling (the ``:smoke`` variants): XLA skips most of its optimization passes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import jax

from smat.data.cache import default_cache_dir

__all__ = ["enable_compilation_cache", "fast_compilation", "CACHE_ENV"]

CACHE_ENV = "SMAT_COMPILATION_CACHE"  # "0": leave the cache off; a path: use that folder


def enable_compilation_cache(path: str | os.PathLike | None = None, *, max_bytes: int = 4 << 30,
                             min_compile_seconds: float = 0.2) -> Path | None:
    """Turns on JAX's persistent compilation cache; returns its folder (None when turned off).

    Args:
      path: the folder; without one, a folder already configured (JAX's
        ``$JAX_COMPILATION_CACHE_DIR``, an earlier call) stays, else ``$SMAT_COMPILATION_CACHE``,
        else ``$SMAT_CACHE_DIR/jax`` (``~/.cache/smat/jax``). ``SMAT_COMPILATION_CACHE=0``
        leaves the cache off.
      max_bytes: the cache's size limit; least recently used entries are evicted beyond it.
        A limit also makes JAX take a file lock around every read and write, so parallel
        processes (pytest-xdist workers, several runs) can share the folder.
      min_compile_seconds: programs that compile faster are not stored.
    """
    setting = os.environ.get(CACHE_ENV, "")
    if path is None and setting == "0":
        return None
    current = jax.config.jax_compilation_cache_dir  # JAX's env var, or an earlier call: kept
    if path is None and current:
        return Path(current)
    folder = Path(path or setting or default_cache_dir() / "jax").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_compilation_cache_max_size", int(max_bytes))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


@contextlib.contextmanager
def fast_compilation(enabled: bool = True) -> Iterator[None]:
    """Inside, XLA compiles with most optimizations off (JAX's ``jax_disable_most_optimizations``).

    For runs whose time goes to compiling rather than computing, such as the ``:smoke``
    variants (a few steps of each of a dozen programs). Measured 2026-12-03 on the 2-core CPU:
    the backward-of-backward of a 2-layer encoder compiled in 3.4 s instead of 6.5 s and ran
    2.4x slower. Programs compiled inside keep their executables (and their own entries in the
    persistent cache: the compile options are part of its key); the setting before is restored
    on exit. ``enabled=False`` changes nothing, so callers can pass a condition.
    """
    previous = bool(jax.config.values["jax_disable_most_optimizations"])
    if enabled:
        jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)
