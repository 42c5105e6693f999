"""The one split structure every loader returns: columns, not per-example objects.

A :class:`Split` holds parallel columns of equal length. Which columns are set
depends on the task: ``texts`` (single-sequence text), ``pairs`` (premise /
hypothesis, source / translation), ``images`` (uint8 ``[n, height, width,
channels]``), ``labels`` (int32 class ids) or ``scores`` (float32 regression
targets), and optional ``rationales``. Dataset-specific columns (IMDB star
ratings, MLQE-PE language pairs and tokenised sentences) live in ``extras``.

Rationales come in two kinds, named by ``DatasetSplits.meta["rationale_kind"]``:

* ``"spans"``: per example an int32 array ``[spans, 2]`` of half-open
  ``(start_token, end_token)`` evidence spans over ``text.split()`` (ERASER);
* ``"word_tags"``: per example a tuple ``(source_tags, target_tags)`` of uint8
  0/1 arrays over the whitespace tokens of ``extras["source_tokenized"]`` and
  ``extras["target_tokenized"]`` (MLQE-PE post-editing tags, 1 = BAD);
* ``"token_tags"``: per example one uint8 0/1 array over ``text.split()``
  (tables you bring, see :func:`smat.data.load_table`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

__all__ = ["Split", "DatasetSplits", "SPLIT_NAMES"]

SPLIT_NAMES = ("train", "dev", "test")
_COLUMNS = ("texts", "pairs", "images", "labels", "scores", "rationales")


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One split of a data set as parallel columns.

    Attributes:
      ids: a stable identifier per example (file name, line number or source id).
      texts: one string per example, or None.
      pairs: ``(first, second)`` strings per example for pair tasks, or None.
      images: uint8 ``[n, height, width, channels]``, or None.
      labels: int32 ``[n]`` class ids (names in ``DatasetSplits.meta["label_names"]``), or None.
      scores: float32 ``[n]`` regression targets, or None.
      rationales: one rationale per example (see the module docstring), or None.
      extras: further columns, each of length n (lists or arrays).
    """

    ids: Sequence[str]
    texts: Sequence[str] | None = None
    pairs: Sequence[tuple[str, str]] | None = None
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    scores: np.ndarray | None = None
    rationales: Sequence[Any] | None = None
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        n = len(self.ids)
        columns = {name: getattr(self, name) for name in _COLUMNS} | {
            f"extras[{k!r}]": v for k, v in self.extras.items()
        }
        bad = {name: len(col) for name, col in columns.items() if col is not None and len(col) != n}
        if bad:
            raise ValueError(f"split columns differ in length from ids ({n}): {bad}")
        if self.labels is not None and self.labels.dtype != np.int32:
            raise TypeError(f"labels must be int32, got {self.labels.dtype}")
        if self.scores is not None and self.scores.dtype != np.float32:
            raise TypeError(f"scores must be float32, got {self.scores.dtype}")
        if self.images is not None and (self.images.dtype != np.uint8 or self.images.ndim != 4):
            raise TypeError(f"images must be uint8 [n, height, width, channels], got "
                            f"{self.images.dtype} {self.images.shape}")

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, indices: Sequence[int] | np.ndarray) -> Split:
        """The examples at ``indices``, in that order, as a new split."""
        indices = np.asarray(indices, dtype=np.int64)

        def pick(col):
            if col is None:
                return None
            if isinstance(col, np.ndarray):
                return col[indices]
            return [col[i] for i in indices]

        return Split(
            ids=pick(self.ids),
            **{name: pick(getattr(self, name)) for name in _COLUMNS},
            extras={k: pick(v) for k, v in self.extras.items()},
        )


@dataclasses.dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A data set's splits; a split is None when the data set has none of that name.

    Attributes:
      name: the data set's name as in :data:`smat.data.manifest.MANIFESTS`.
      train, dev, test: the splits.
      meta: ``label_names`` (tuple, for classification), ``task``
        (``"classification"`` or ``"regression"``), ``source`` (the path or hub name
        read), ``rationale_kind`` when rationales are present, and loader specifics.
    """

    name: str
    train: Split | None
    dev: Split | None
    test: Split | None
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def items(self) -> Iterator[tuple[str, Split]]:
        """``(name, split)`` for the splits that exist, in train, dev, test order."""
        for name in SPLIT_NAMES:
            split = getattr(self, name)
            if split is not None:
                yield name, split

    def __getitem__(self, name: str) -> Split:
        if name not in SPLIT_NAMES:
            raise KeyError(f"no split {name!r}; splits are {SPLIT_NAMES}")
        split = getattr(self, name)
        if split is None:
            raise KeyError(f"{self.name} has no {name} split")
        return split

    def replace(self, **changes: Any) -> DatasetSplits:
        """A copy with some fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
