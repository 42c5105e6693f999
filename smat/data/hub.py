"""The only module of ``smat.data`` that touches the network: one adapter per remote data set.

Each adapter fetches one data set from the Hugging Face hub (``datasets``), TFDS or
scikit-learn's downloader and converts it to a :class:`DatasetSplits`; :func:`download`
fetches a published file (fastText's word vectors) as it is. Loaders call
them only when no local copy was given or found, through
:func:`smat.data.sources.from_remote`, which turns any failure into one
:class:`~smat.data.sources.DataUnavailableError`. Tests never reach this module.

Hub copies carry their own checksums, so the loaders check only their counts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from smat.data.splits import DatasetSplits, Split

__all__ = [
    "imdb",
    "movie_rationales",
    "glue_sst2",
    "glue_mnli",
    "glue_qqp",
    "xnli",
    "snli",
    "wmt20_mlqe_task1",
    "tfds_fashion_mnist",
    "cifar100",
    "twenty_newsgroups",
    "ag_news",
    "download",
    "OFFLINE_ENV",
]

OFFLINE_ENV = "SMAT_OFFLINE"  # "1": never try the network (the tests set it)

_SPLITS = {"train": "train", "validation": "dev", "test": "test"}


def _load_dataset(name: str, config: str | None = None) -> Any:
    import datasets  # optional here: only the remote fallback needs it

    return datasets.load_dataset(name, config)


def _labels(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


def imdb() -> DatasetSplits:
    """Hub ``imdb``: train / test with ``text`` and ``label`` (0 neg, 1 pos); ``unsupervised`` dropped."""
    ds = _load_dataset("imdb")
    splits = {s: Split(ids=[f"{s}/{i}" for i in range(len(ds[s]))], texts=list(ds[s]["text"]),
                       labels=_labels(ds[s]["label"])) for s in ("train", "test")}
    return DatasetSplits("imdb", splits["train"], None, splits["test"],
                         {"label_names": ("neg", "pos"), "task": "classification", "source": "hub:imdb"})


def _locate_spans(tokens: list[str], evidences: Sequence[str]) -> tuple[np.ndarray, int]:
    """Token spans of each evidence string's first occurrence in ``tokens``, and the misses."""
    spans, missed = set(), 0
    for evidence in evidences:
        needle = evidence.split()
        k = len(needle)
        start = next((i for i in range(len(tokens) - k + 1) if k and tokens[i:i + k] == needle), None)
        if start is None:
            missed += 1
        else:
            spans.add((start, start + k))
    return np.asarray(sorted(spans), dtype=np.int32).reshape(-1, 2), missed


def movie_rationales() -> DatasetSplits:
    """Hub ``movie_rationales`` (ERASER movies): ``review``, ``label``, ``evidences``.

    The hub gives evidence strings, not offsets: each is located at its first occurrence
    in the review's whitespace tokens; ``meta["unlocated_evidences"]`` counts misses.
    """
    ds = _load_dataset("movie_rationales")
    splits, missed = {}, 0
    for hub_split, split in _SPLITS.items():
        texts = list(ds[hub_split]["review"])
        rationales = []
        for text, evidences in zip(texts, ds[hub_split]["evidences"], strict=True):
            spans, m = _locate_spans(text.split(), evidences)
            rationales.append(spans)
            missed += m
        splits[split] = Split(ids=[f"{split}/{i}" for i in range(len(texts))], texts=texts,
                              labels=_labels(ds[hub_split]["label"]), rationales=rationales)
    return DatasetSplits("eraser_movies", splits["train"], splits["dev"], splits["test"],
                         {"label_names": ("neg", "pos"), "task": "classification", "rationale_kind": "spans",
                          "source": "hub:movie_rationales", "unlocated_evidences": missed})


def _glue(config: str, first: str, second: str | None, split_map: dict[str, str], name: str,
          label_names: tuple[str, ...]) -> DatasetSplits:
    ds = _load_dataset("glue", config)
    splits = {}
    for hub_split, split in split_map.items():
        part = ds[hub_split]
        labels = _labels(part["label"])
        ids = [str(i) for i in part["idx"]]
        texts = list(part[first])
        splits[split] = Split(
            ids=ids,
            texts=texts if second is None else None,
            pairs=list(zip(texts, part[second], strict=True)) if second is not None else None,
            labels=None if np.all(labels < 0) else labels,  # GLUE test labels are hidden (-1)
        )
    return DatasetSplits(name, splits.get("train"), splits.get("dev"), splits.get("test"),
                         {"label_names": label_names, "task": "classification", "source": f"hub:glue/{config}"})


def glue_sst2() -> DatasetSplits:
    """Hub ``glue``/``sst2``: ``sentence``, ``label``; the test split is unlabelled."""
    return _glue("sst2", "sentence", None, {"train": "train", "validation": "dev", "test": "test"},
                 "sst2", ("neg", "pos"))


def glue_mnli() -> DatasetSplits:
    """Hub ``glue``/``mnli``: dev = validation_matched, test = validation_mismatched."""
    return _glue("mnli", "premise", "hypothesis",
                 {"train": "train", "validation_matched": "dev", "validation_mismatched": "test"},
                 "mnli", ("entailment", "neutral", "contradiction"))


def glue_qqp() -> DatasetSplits:
    """Hub ``glue``/``qqp``: train and validation (the test split is unlabelled and skipped)."""
    return _glue("qqp", "question1", "question2", {"train": "train", "validation": "dev"},
                 "qqp", ("not_duplicate", "duplicate"))


def xnli(language: str) -> DatasetSplits:
    """Hub ``facebook/xnli``, config ``language``: validation (dev) and test; labels in NLI order."""
    ds = _load_dataset("facebook/xnli", language)
    splits = {split: Split(ids=[f"{split}/{i}" for i in range(len(ds[hub_split]))],
                           pairs=list(zip(ds[hub_split]["premise"], ds[hub_split]["hypothesis"], strict=True)),
                           labels=_labels(ds[hub_split]["label"]))
              for hub_split, split in (("validation", "dev"), ("test", "test"))}
    return DatasetSplits("xnli", None, splits["dev"], splits["test"],
                         {"label_names": ("entailment", "neutral", "contradiction"), "task": "classification",
                          "source": f"hub:facebook/xnli/{language}", "language": language})


def snli() -> DatasetSplits:
    """Hub ``snli``: pairs without a gold label (``label == -1``) are dropped, as e-SNLI does."""
    ds = _load_dataset("snli")
    splits = {}
    for hub_split, split in _SPLITS.items():
        part = ds[hub_split]
        labels = _labels(part["label"])
        keep = np.flatnonzero(labels >= 0)
        premises, hypotheses = part["premise"], part["hypothesis"]
        splits[split] = Split(ids=[f"{split}/{i + 1}" for i in keep],
                              pairs=[(premises[i], hypotheses[i]) for i in keep], labels=labels[keep])
    return DatasetSplits("snli", splits["train"], splits["dev"], splits["test"],
                         {"label_names": ("entailment", "neutral", "contradiction"),
                          "task": "classification", "source": "hub:snli"})


def wmt20_mlqe_task1(langpairs: tuple[str, ...]) -> DatasetSplits:
    """Hub ``wmt20_mlqe_task1``, one config per pair: DA ``z_mean`` scores, no word tags."""
    columns = {split: {"ids": [], "pairs": [], "scores": [], "langpair": []} for split in _SPLITS.values()}
    for pair in langpairs:
        src, tgt = pair.split("-")
        ds = _load_dataset("wmt20_mlqe_task1", pair)
        for hub_split, split in _SPLITS.items():
            part, c = ds[hub_split], columns[split]
            c["ids"] += [f"{pair}/{split}/{i}" for i in part["segid"]]
            c["pairs"] += [(t[src], t[tgt]) for t in part["translation"]]
            c["scores"] += list(part["z_mean"])
            c["langpair"] += [pair] * len(part)
    splits = {s: Split(ids=c["ids"], pairs=c["pairs"], scores=np.asarray(c["scores"], dtype=np.float32),
                       extras={"langpair": c["langpair"]}) for s, c in columns.items()}
    return DatasetSplits("mlqe_pe", splits["train"], splits["dev"], splits["test"],
                         {"task": "regression", "langpairs": langpairs, "source": "hub:wmt20_mlqe_task1"})


def tfds_fashion_mnist() -> DatasetSplits:
    """TFDS ``fashion_mnist``: train / test, uint8 ``[n, 28, 28, 1]``."""
    import tensorflow_datasets as tfds  # the ``tfds`` extra

    splits = {}
    for split in ("train", "test"):
        images, labels = tfds.as_numpy(tfds.load("fashion_mnist", split=split, batch_size=-1,
                                                 as_supervised=True))
        splits[split] = Split(ids=[f"{split}/{i}" for i in range(len(labels))],
                              images=np.asarray(images, dtype=np.uint8), labels=_labels(labels))
    from smat.data.images import FASHION_MNIST_LABELS

    return DatasetSplits("fashion_mnist", splits["train"], None, splits["test"],
                         {"label_names": FASHION_MNIST_LABELS, "task": "classification", "pixel_max": 255,
                          "source": "tfds:fashion_mnist"})


def cifar100() -> DatasetSplits:
    """Hub ``cifar100``: ``img`` (PIL), ``fine_label``, ``coarse_label``."""
    ds = _load_dataset("cifar100")
    splits = {}
    for split in ("train", "test"):
        part = ds[split]
        images = np.stack([np.asarray(img.convert("RGB"), dtype=np.uint8) for img in part["img"]])
        splits[split] = Split(ids=[f"{split}/{i}" for i in range(len(part))], images=images,
                              labels=_labels(part["fine_label"]),
                              extras={"coarse_label": _labels(part["coarse_label"])})
    names = tuple(ds["train"].features["fine_label"].names)
    return DatasetSplits("cifar100", splits["train"], None, splits["test"],
                         {"label_names": names, "task": "classification", "pixel_max": 255,
                          "source": "hub:cifar100"})


def twenty_newsgroups(categories: tuple[str, ...]) -> DatasetSplits:
    """scikit-learn's ``fetch_20newsgroups`` (it downloads the official bydate tarball)."""
    from sklearn.datasets import fetch_20newsgroups

    splits = {}
    for split in ("train", "test"):
        bunch = fetch_20newsgroups(subset=split, categories=list(categories), shuffle=False)
        # sklearn numbers the chosen categories alphabetically; ours follow ``categories``.
        remap = np.asarray([categories.index(n) for n in bunch.target_names], dtype=np.int32)
        splits[split] = Split(ids=[f"{split}/{f.rsplit('/', 2)[-2]}/{f.rsplit('/', 1)[-1]}" for f in bunch.filenames],
                              texts=list(bunch.data), labels=remap[bunch.target])
    return DatasetSplits("twenty_newsgroups", splits["train"], None, splits["test"],
                         {"label_names": categories, "task": "classification",
                          "source": "sklearn:fetch_20newsgroups"})


def ag_news(classes: tuple[str, ...]) -> DatasetSplits:
    """Hub ``ag_news`` (label 0 World, 1 Sports, 2 Business, 3 Sci/Tech), restricted to ``classes``.

    The hub's ``text`` joins title and description, unlike the csv's separate columns.
    """
    all_classes = ("World", "Sports", "Business", "Sci/Tech")
    ds = _load_dataset("ag_news")
    splits = {}
    for split in ("train", "test"):
        labels = np.asarray(ds[split]["label"])
        texts = ds[split]["text"]
        keep = [i for i, y in enumerate(labels.tolist()) if all_classes[y] in classes]
        splits[split] = Split(ids=[f"{split}/{i}" for i in keep], texts=[texts[i] for i in keep],
                              labels=_labels([classes.index(all_classes[labels[i]]) for i in keep]))
    return DatasetSplits("ag_news", splits["train"], None, splits["test"],
                         {"label_names": classes, "task": "classification", "source": "hub:ag_news"})


def download(url: str, dest: Path, *, timeout: float = 30.0) -> Path:
    """Fetches ``url`` to ``dest`` with a progress bar; written to ``dest.part`` and renamed into
    place, so an interrupted download never passes for a complete file.

    Raises:
      ConnectionError: when ``$SMAT_OFFLINE`` is "1" (without trying).
      OSError: whatever ``urllib`` raises (DNS failure, refused connection, HTTP error).
    """
    import urllib.request

    from tqdm.auto import tqdm

    if os.environ.get(OFFLINE_ENV) == "1":
        raise ConnectionError(f"${OFFLINE_ENV}=1: not downloading {url}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as f:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}", leave=False) as bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
    os.replace(part, dest)
    return dest
