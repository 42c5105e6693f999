"""Split -> tokenized, cached arrays ready for :mod:`smat.data.batching`."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from smat.data.cache import cached_arrays
from smat.data.splits import Split
from smat.data.tokenization import encode_texts, tokenizer_fingerprint

__all__ = ["tokenize_split", "texts_sha256"]

FORMAT_VERSION = 1  # bump when the arrays' layout changes


def texts_sha256(split: Split) -> str:
    """Identity of a split's inputs and targets, for cache keys (a changed copy misses the cache)."""
    h = hashlib.sha256()
    if split.texts is not None:
        for t in split.texts:
            h.update(t.encode())
            h.update(b"\0")
    if split.pairs is not None:
        for a, b in split.pairs:
            h.update(a.encode() + b"\1" + b.encode() + b"\0")
    for target in (split.labels, split.scores):
        if target is not None:
            h.update(np.ascontiguousarray(target).tobytes())
    return h.hexdigest()


def tokenize_split(split: Split, tokenizer, *, max_length: int, name: str,
                   cache_dir: str | os.PathLike | None = None, use_cache: bool = True) -> dict[str, np.ndarray]:
    """Tokenizes a text or pair split into fixed-width arrays, through the on-disk cache.

    Args:
      split: a :class:`Split` with ``texts`` or ``pairs``.
      tokenizer: a ``tokenizers.Tokenizer`` (:func:`smat.data.tokenization.load_tokenizer`).
      max_length: array width, special tokens included.
      name: readable cache-file prefix, e.g. "imdb-train".
      cache_dir: default ``$SMAT_CACHE_DIR`` or ``~/.cache/smat``.
      use_cache: False always recomputes (and writes nothing).

    Returns:
      The :class:`~smat.data.tokenization.Encoded` fields as a dict, plus ``labels`` or
      ``scores`` when the split has them.
    """
    if split.texts is None and split.pairs is None:
        raise ValueError(f"{name}: the split has neither texts nor pairs to tokenize")

    def build():
        if split.pairs is not None:
            first, second = [a for a, _ in split.pairs], [b for _, b in split.pairs]
            encoded = encode_texts(tokenizer, first, second, max_length=max_length)
        else:
            encoded = encode_texts(tokenizer, list(split.texts), max_length=max_length)
        arrays = dict(encoded._asdict())
        if split.labels is not None:
            arrays["labels"] = np.asarray(split.labels)
        if split.scores is not None:
            arrays["scores"] = np.asarray(split.scores)
        return arrays

    if not use_cache:
        return build()
    key = {"format": FORMAT_VERSION, "data": texts_sha256(split), "tokenizer": tokenizer_fingerprint(tokenizer),
           "max_length": max_length}
    return cached_arrays(name, key, build, cache_dir=cache_dir)
