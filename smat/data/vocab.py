"""Word-level vocabularies for the BiLSTM baselines, as Jain & Wallace built them.

J&W's ``preprocess/vectorizer.py`` fits a ``CountVectorizer(tokenizer=split(" "),
min_df=k, lowercase=False)`` on the train split only, and numbers the specials first:
``<0>`` (padding) = 0, ``<UNK>`` = 1, ``<SOS>`` = 2, ``<EOS>`` = 3. Documents become
``[SOS] + tokens + [EOS]``.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Iterable, Sequence

import numpy as np

__all__ = ["PAD", "UNK", "SOS", "EOS", "SPECIALS", "MIN_DF", "Vocabulary", "build_vocabulary"]

SPECIALS = ("<0>", "<UNK>", "<SOS>", "<EOS>")
PAD, UNK, SOS, EOS = range(4)

# min_df per data set in the J&W / W&P code (baselines_anchor.md, section 1.3).
MIN_DF = {"sst": 1, "imdb": 10, "20news": 2, "agnews": 5, "diabetes": 5, "anemia": 5, "snli": 3}


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """An immutable word list; ids are positions, the four specials first."""

    words: tuple[str, ...]

    def __post_init__(self):
        if self.words[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"a vocabulary starts with the specials {SPECIALS}")

    def __len__(self) -> int:
        return len(self.words)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, text: str | Sequence[str], *, add_sos_eos: bool = True) -> np.ndarray:
        """Ids of one document (a space-tokenised string or a token list); OOV -> <UNK>."""
        tokens = text.split(" ") if isinstance(text, str) else text
        index = self.index
        ids = [index.get(t, UNK) for t in tokens if t]
        if add_sos_eos:
            ids = [SOS, *ids, EOS]
        return np.asarray(ids, np.int32)

    def encode_batch(self, texts: Iterable[str | Sequence[str]], *, add_sos_eos: bool = True) -> list[np.ndarray]:
        return [self.encode(t, add_sos_eos=add_sos_eos) for t in texts]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[i] for i in ids]


def build_vocabulary(train_texts: Iterable[str | Sequence[str]], min_df: int = 1) -> Vocabulary:
    """Builds the vocabulary from the train split only.

    Args:
      train_texts: space-tokenised documents (or token lists) of the train split.
      min_df: keep words that occur in at least this many documents (``MIN_DF`` has
        the per-dataset values of Jain & Wallace).

    Returns:
      A :class:`Vocabulary`: the specials, then the kept words sorted as CountVectorizer sorts them.
    """
    df: collections.Counter[str] = collections.Counter()
    for text in train_texts:
        tokens = text.split(" ") if isinstance(text, str) else text
        df.update(set(t for t in tokens if t))
    kept = sorted(w for w, n in df.items() if n >= min_df and w not in SPECIALS)
    return Vocabulary(SPECIALS + tuple(kept))
