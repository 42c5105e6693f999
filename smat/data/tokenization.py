"""Subword tokenization into fixed-width arrays, with the piece -> word map kept for alignment.

Texts are split on whitespace and passed to the tokenizer pre-tokenized, so the word
index of every piece refers to the whitespace tokens of the text: the unit in which
ERASER's evidence offsets, MLQE-PE's word tags and J&W's tokens are given.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["Encoded", "load_tokenizer", "encode_texts", "tokenizer_fingerprint"]


class Encoded(NamedTuple):
    """Tokenized texts padded to ``max_length``. Dimension names: examples, seq.

    Attributes:
      input_ids: [examples, seq] int32, padded with the tokenizer's pad id.
      attention_mask: [examples, seq] int32, 1 on real pieces.
      token_type_ids: [examples, seq] int32, 0 for the first text and 1 for the second.
      word_ids: [examples, seq] int32 index of the whitespace word each piece belongs to
        (in its own text), -1 for special tokens and padding.
      sequence_ids: [examples, seq] int8: 0 first text, 1 second text, -1 specials / padding.
      lengths: [examples] int32 pieces per example (before padding).
      truncated: [examples] bool, whether ``max_length`` cut the example.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    word_ids: np.ndarray
    sequence_ids: np.ndarray
    lengths: np.ndarray
    truncated: np.ndarray


def load_tokenizer(path_or_name: str | os.PathLike):
    """A fast ``tokenizers.Tokenizer`` from a model directory (``tokenizer.json``) or hub name.

    Directories with only sentencepiece / vocab files are converted once by
    ``transformers.AutoTokenizer`` (no model code is loaded).
    """
    from tokenizers import Tokenizer

    from smat.models import hub

    directory = hub.resolve(path_or_name)
    if (directory / "tokenizer.json").exists():
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(directory)).backend_tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def tokenizer_fingerprint(tokenizer) -> str:
    """A stable string identifying the tokenizer (for cache keys)."""
    import hashlib

    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()[:16]


def _pad_id(tokenizer) -> int:
    for token in ("[PAD]", "<pad>", "<PAD>"):
        idx = tokenizer.token_to_id(token)
        if idx is not None:
            return idx
    return 0


def encode_texts(tokenizer, texts: Sequence[str], texts_b: Sequence[str] | None = None, *,
                 max_length: int = 128, batch_size: int = 4096) -> Encoded:
    """Tokenizes single texts or pairs (``[CLS] a [SEP] b [SEP]`` for BERT, ``<s> a </s></s> b </s>`` for RoBERTa).

    Pairs are truncated longest-first, as HF does, so that both texts keep pieces.

    Args:
      tokenizer: a ``tokenizers.Tokenizer`` (see :func:`load_tokenizer`).
      texts: first texts.
      texts_b: second texts of pair inputs, or None.
      max_length: width of the output arrays, special tokens included.

    Returns:
      :class:`Encoded`.
    """
    if texts_b is not None and len(texts_b) != len(texts):
        raise ValueError(f"{len(texts)} first texts but {len(texts_b)} second texts")
    tokenizer.enable_truncation(max_length, strategy="longest_first")
    n = len(texts)
    out = Encoded(
        input_ids=np.full((n, max_length), _pad_id(tokenizer), np.int32),
        attention_mask=np.zeros((n, max_length), np.int32),
        token_type_ids=np.zeros((n, max_length), np.int32),
        word_ids=np.full((n, max_length), -1, np.int32),
        sequence_ids=np.full((n, max_length), -1, np.int8),
        lengths=np.zeros(n, np.int32),
        truncated=np.zeros(n, bool),
    )
    try:
        for start in range(0, n, batch_size):
            chunk_a = [t.split() for t in texts[start:start + batch_size]]
            if texts_b is None:
                inputs = chunk_a
            else:
                inputs = list(zip(chunk_a, [t.split() for t in texts_b[start:start + batch_size]]))
            for i, enc in enumerate(tokenizer.encode_batch(inputs, is_pretokenized=True), start):
                length = len(enc.ids)
                out.input_ids[i, :length] = enc.ids
                out.attention_mask[i, :length] = 1
                out.token_type_ids[i, :length] = enc.type_ids
                out.word_ids[i, :length] = [-1 if w is None else w for w in enc.word_ids]
                out.sequence_ids[i, :length] = [-1 if s is None else s for s in enc.sequence_ids]
                out.lengths[i] = length
                out.truncated[i] = bool(enc.overflowing)
    finally:
        tokenizer.no_truncation()
    return out

