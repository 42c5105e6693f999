"""A learnable toy text task for the baselines' tests: the label shows in the words."""

import numpy as np

from baselines.train import encode_split
from smat.data.vocab import build_vocabulary

WORDS = [f"w{i}" for i in range(12)]  # w0-w5 occur in positive texts, w6-w11 in negative ones


def toy_splits(sizes: dict[str, int], seed: int = 0):
    """``(data, vocab)``: splits from :func:`baselines.train.encode_split` of 2-8 random words each."""
    rng = np.random.default_rng(seed)
    texts = {}
    for split, n in sizes.items():
        labels = rng.integers(0, 2, n)
        texts[split] = ([" ".join(rng.choice(WORDS[:6] if y else WORDS[6:], int(rng.integers(2, 9)))) for y in labels],
                        labels)
    vocab = build_vocabulary(texts["train"][0])
    return {s: encode_split(vocab, t, y) for s, (t, y) in texts.items()}, vocab
