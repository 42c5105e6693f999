"""Text data set loaders: each reads the data set's official format from a local path.

Every loader follows the resolution order of :mod:`smat.data.sources` (explicit
``path``, then ``$SMAT_DATA_DIR/<folder>``, then the hub adapter in
:mod:`smat.data.hub`) and checks the result against its manifest in
:mod:`smat.data.manifest` unless ``verify=False``. Texts are returned as the files
hold them (no lower-casing, no tokenisation); examples are in a deterministic order
that does not depend on the order of members inside an archive.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from smat.data import hub
from smat.data.manifest import MANIFESTS, Manifest, content_sha256, file_sha256, verify_loaded
from smat.data.sources import (
    SOURCES,
    DataFormatError,
    decode,
    find_file,
    from_remote,
    locate,
    read_bytes,
    read_tree,
)
from smat.data.splits import DatasetSplits, Split

__all__ = [
    "load_imdb",
    "load_eraser_movies",
    "load_sst_jain_wallace",
    "jain_wallace_length_filter",
    "load_sst2",
    "load_snli",
    "load_mnli",
    "load_qqp",
    "load_xnli",
    "load_mlqe_pe",
    "load_twenty_newsgroups",
    "load_ag_news",
    "MLQE_PAIRS",
    "NLI_LABELS",
]

PathLike = str | os.PathLike
SENTIMENT_LABELS = ("neg", "pos")
NLI_LABELS = ("entailment", "neutral", "contradiction")  # the hub's 'snli' / 'glue' order
MLQE_PAIRS = ("en-de", "en-zh", "et-en", "ne-en", "ro-en", "ru-en")  # SMaT's six; si-en on request
MLQE_ALL_PAIRS = (*MLQE_PAIRS, "si-en")


def _remote(dataset: str, adapter: Callable[[], DatasetSplits], verify: bool,
            manifest: Manifest | None = None) -> DatasetSplits:
    """The hub fallback: counts are checked, content hashes do not apply."""
    splits = from_remote(dataset, adapter)
    return verify_loaded(splits, {}, verify=verify, source=splits.meta.get("source", dataset),
                         manifest=manifest)


def _lines(text: str) -> list[str]:
    """Lines of a text file without their terminators; a final newline adds no empty line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _labels(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


# ------------------------------------------------------------------------------ IMDB

_IMDB_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_IMDB_FILES = ("aclImdb", "aclImdb_v1.tar.gz", "aclImdb_labeled.tar.gz", "aclImdb.tar.gz")


def load_imdb(path: PathLike | None = None, *, verify: bool = True) -> DatasetSplits:
    """IMDB Large Movie Review Dataset (Maas et al. 2011): 25k train and 25k test reviews.

    Reads the original ``aclImdb`` tree (``{train,test}/{pos,neg}/<id>_<rating>.txt``)
    from a folder or straight from its tarball, in memory. ``unsup/`` is skipped.
    Examples are ordered by label (neg, pos), then numeric id. The data set has no
    dev split.

    Args:
      path: ``aclImdb/``, a tarball holding it, or a folder containing either.
      verify: check 12,500 reviews per label and split, and the reviews' content hash.

    Returns:
      ``texts`` (raw, ``<br />`` tags kept), ``labels`` (0 neg, 1 pos), ids like
      ``"train/pos/0_9"`` and ``extras["rating"]`` (the 1-10 star rating of the file name).

    Raises:
      ManifestError, DataFormatError, DataUnavailableError.
    """
    local = locate("imdb", path)
    if local is None:
        return _remote("imdb", hub.imdb, verify)
    root = local if local.is_file() or (local / "train").is_dir() else find_file(local, _IMDB_FILES, "imdb")
    members = read_tree(root, lambda name: _IMDB_REVIEW.search(name) is not None)
    reviews, normalised = {}, {}
    for name, data in members.items():
        split, label, review_id, rating = _IMDB_REVIEW.search(name).groups()
        key = f"{split}/{label}/{review_id}_{rating}"
        reviews[key] = (split, SENTIMENT_LABELS.index(label), int(review_id), int(rating),
                        decode(data, f"{root}:{name}"))
        normalised[f"{key}.txt"] = data  # the same names whatever folder holds aclImdb
    digest = content_sha256(normalised)
    splits = {}
    for split in ("train", "test"):
        keys = sorted((k for k, v in reviews.items() if v[0] == split),
                      key=lambda k: (reviews[k][1], reviews[k][2]))
        if not keys:
            raise DataFormatError(f"{root}: no {split}/{{pos,neg}}/*.txt reviews found")
        splits[split] = Split(
            ids=keys,
            texts=[reviews[k][4] for k in keys],
            labels=_labels([reviews[k][1] for k in keys]),
            extras={"rating": np.asarray([reviews[k][3] for k in keys], dtype=np.int32)},
        )
    out = DatasetSplits("imdb", splits["train"], None, splits["test"],
                        {"label_names": SENTIMENT_LABELS, "task": "classification", "source": str(root)})
    return verify_loaded(out, {"reviews": digest}, verify=verify, source=root)


# ---------------------------------------------------------------------- ERASER movies

_ERASER_MEMBER = re.compile(r"(?:^|/)(docs/[^/]+|train\.jsonl|val\.jsonl|test\.jsonl)$")
_ERASER_SPLITS = {"train": "train", "val": "dev", "test": "test"}


def load_eraser_movies(path: PathLike | None = None, *, verify: bool = True) -> DatasetSplits:
    """ERASER Movie Reviews with human rationales (DeYoung et al. 2020; Zaidan et al. 2007).

    Reads ``docs/<docid>`` and ``{train,val,test}.jsonl`` from the ``movies`` folder or
    straight from ``movies.tar.gz``. Each annotation's evidences carry token offsets
    into the document's whitespace tokens; they become the example's rationale spans.

    Args:
      path: ``movies/``, ``movies.tar.gz``, or a folder containing either.
      verify: check 1600 / 200 / 199 documents with their label counts, and the content hash.

    Returns:
      ``texts`` (the document as stored: one sentence per line), ``labels`` (0 neg,
      1 pos), ``rationales`` (int32 ``[spans, 2]`` half-open ``(start_token, end_token)``
      over ``text.split()``, sorted; duplicates and the empty evidences of ``test.jsonl``
      (``start == end``, text ``""``) removed), ids = annotation ids.

    Raises:
      ManifestError, DataFormatError (naming the jsonl file and line), DataUnavailableError.
    """
    local = locate("eraser_movies", path)
    if local is None:
        return _remote("eraser_movies", hub.movie_rationales, verify)
    root = local
    if local.is_dir() and not (local / "docs").is_dir():
        root = find_file(local, ("movies", "movies.tar.gz"), "eraser_movies")
    members = {}
    for name, data in read_tree(root, lambda n: _ERASER_MEMBER.search(n) is not None).items():
        members[_ERASER_MEMBER.search(name).group(1)] = data
    docs = {name[len("docs/"):]: decode(data, f"{root}:{name}") for name, data in members.items()
            if name.startswith("docs/")}
    splits = {}
    for file_split, split in _ERASER_SPLITS.items():
        name = f"{file_split}.jsonl"
        if name not in members:
            raise DataFormatError(f"{root}: {name} is missing")
        ids, texts, labels, rationales = [], [], [], []
        for line_no, line in enumerate(_lines(decode(members[name], f"{root}:{name}")), start=1):
            if not line.strip():
                continue
            where = f"{root}:{name}, line {line_no}"
            try:
                record = json.loads(line)
                label = {"NEG": 0, "POS": 1}[record["classification"].upper()]
                evidences = [e for group in record["evidences"] for e in group]
                # movies has one document per annotation; docids is null in test.jsonl
                doc_id = (record.get("docids") or [e["docid"] for e in evidences]
                          or [record["annotation_id"]])[0]
                spans = {(int(e["start_token"]), int(e["end_token"])) for e in evidences}
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
                raise DataFormatError(f"{where}: not an ERASER annotation ({type(e).__name__}: {e})") from e
            if doc_id not in docs:
                raise DataFormatError(f"{where}: document {doc_id!r} is not in docs/")
            n_tokens = len(docs[doc_id].split())
            if any(not 0 <= s <= e <= n_tokens for s, e in spans):
                raise DataFormatError(f"{where}: an evidence span lies outside the document's "
                                      f"{n_tokens} tokens")
            spans = sorted((s, e) for s, e in spans if s < e)  # test.jsonl has 20 empty evidences
            ids.append(record["annotation_id"])
            texts.append(docs[doc_id].rstrip("\n"))
            labels.append(label)
            rationales.append(np.asarray(spans, dtype=np.int32).reshape(-1, 2))
        splits[split] = Split(ids=ids, texts=texts, labels=_labels(labels), rationales=rationales)
    used_docs = {i for s in splits.values() for i in s.ids}
    digest = content_sha256({n: d for n, d in members.items()
                             if not n.startswith("docs/") or n[5:] in used_docs})
    out = DatasetSplits("eraser_movies", splits["train"], splits["dev"], splits["test"],
                        {"label_names": SENTIMENT_LABELS, "task": "classification",
                         "rationale_kind": "spans", "source": str(root)})
    return verify_loaded(out, {"movies": digest}, verify=verify, source=root)


# --------------------------------------------------------------- SST (Jain & Wallace)


def jain_wallace_length_filter(texts: Sequence[str], min_tokens: int = 5) -> np.ndarray:
    """Indices kept by Jain & Wallace's length filter within one split.

    Their ``filterbylength(X, y, min_length=5)`` keeps a sequence of n whitespace
    tokens when ``min_length < n < max_length`` with ``max_length`` left at the
    split's own longest sequence, so the strict ``<`` also drops the longest
    sentence(s) of every split. On their SST csv this reproduces the published
    sizes exactly: train 3034 neg / 3321 pos, test 863 / 862 (``n > 5`` alone
    gives 3035 / 3321 and 863 / 863).

    Args:
      texts: the split's space-tokenised texts.
      min_tokens: the exclusive lower bound (5 for SST in Jain & Wallace 2019).

    Returns:
      int64 indices of the kept texts, in order.

    References:
      Jain & Wallace 2019, Attention is not Explanation, Sec. 3 and their
      ``Transparency/Trainers/DatasetBC.py``.
    """
    lengths = np.asarray([len(t.split()) for t in texts], dtype=np.int64)
    if lengths.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero((lengths > min_tokens) & (lengths < lengths.max()))


def load_sst_jain_wallace(path: PathLike | None = None, *, length_filter: bool = True,
                          verify: bool = True) -> DatasetSplits:
    """Binary SST exactly as Jain & Wallace (2019) preprocessed it: their ``sst_dataset.csv``.

    Args:
      path: ``sst_dataset.csv`` or a folder containing it.
      length_filter: apply :func:`jain_wallace_length_filter` to every split, as their
        experiments (and Wiegreffe & Pinter's) do.
      verify: check the published counts (filtered: train 3034 neg / 3321 pos, test
        863 / 862; unfiltered: 6920 / 872 / 1821) and the file's hash.

    Returns:
      ``texts`` (lower-cased, space-tokenised, as in the csv), ``labels`` (0 neg, 1 pos),
      ids = the csv's 0-based data-row index.

    Raises:
      ManifestError, DataFormatError (naming file and line), DataUnavailableError.
    """
    local = locate("sst_jain_wallace", path)
    if local is None:
        return _remote("sst_jain_wallace", None, verify)
    file = find_file(local, ("sst_dataset.csv",), "sst_jain_wallace")
    rows = csv.reader(io.StringIO(decode(read_bytes(file), str(file)), newline=""))
    header = next(rows, None)
    if header is None or not {"text", "label", "exp_split"} <= set(header):
        raise DataFormatError(f"{file}, line 1: expected a header with text,label,exp_split; got {header}")
    col = {name: header.index(name) for name in ("text", "label", "exp_split")}
    columns = {s: ([], [], []) for s in ("train", "dev", "test")}
    for i, row in enumerate(rows):
        line = rows.line_num
        if len(row) != len(header):
            raise DataFormatError(f"{file}, line {line}: {len(row)} fields, header has {len(header)}")
        split, label = row[col["exp_split"]], row[col["label"]]
        if split not in columns or label not in ("0", "1"):
            raise DataFormatError(f"{file}, line {line}: exp_split {split!r} / label {label!r} "
                                  f"not in train/dev/test and 0/1")
        ids, texts, labels = columns[split]
        ids.append(str(i))
        texts.append(row[col["text"]])
        labels.append(int(label))
    splits = {}
    for split, (ids, texts, labels) in columns.items():
        if not ids:
            raise DataFormatError(f"{file}: the {split} split is empty")
        s = Split(ids=ids, texts=texts, labels=_labels(labels))
        splits[split] = s.take(jain_wallace_length_filter(texts)) if length_filter else s
    name = "sst_jain_wallace" if length_filter else "sst_jain_wallace_unfiltered"
    out = DatasetSplits(name, splits["train"], splits["dev"], splits["test"],
                        {"label_names": SENTIMENT_LABELS, "task": "classification", "source": str(file),
                         "length_filter": "5 < tokens < max tokens of the split" if length_filter else None})
    return verify_loaded(out, {"sst_dataset.csv": file_sha256(file)}, verify=verify, source=file)


# ------------------------------------------------------------------------ GLUE TSVs


def _read_tsv(file: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a tab-separated file, fields taken literally (no quoting)."""
    lines = _lines(decode(read_bytes(file), str(file)))
    if not lines:
        raise DataFormatError(f"{file}: empty file")
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def _columns(file: Path, header: list[str], rows: list[list[str]], wanted: dict[str, tuple[str, ...]],
             optional: Sequence[str] = ()) -> dict[str, list[str]]:
    """``{role: column values}``, picking each role's column by any of its accepted names."""
    index = {}
    for role, names in wanted.items():
        found = [header.index(n) for n in names if n in header]
        if found:
            index[role] = found[0]
        elif role not in optional:
            raise DataFormatError(f"{file}, line 1: no column named {' or '.join(names)} in header {header}")
    width = max(index.values(), default=-1) + 1
    for line_no, row in enumerate(rows, start=2):
        if len(row) < width:
            raise DataFormatError(f"{file}, line {line_no}: {len(row)} fields, need at least {width}")
    return {role: [row[i] for row in rows] for role, i in index.items()}


def _int_labels(file: Path, values: list[str], allowed: dict[str, int]) -> np.ndarray:
    out = []
    for line_no, value in enumerate(values, start=2):
        if value not in allowed:
            raise DataFormatError(f"{file}, line {line_no}: label {value!r} not in {sorted(allowed)}")
        out.append(allowed[value])
    return _labels(out)


def _canonical(labels: np.ndarray | None, *texts: list[str]) -> bytes:
    """Records as ``label<TAB>text...`` lines: a hash of these ignores column order and headers."""
    rows = zip(*texts, strict=True) if labels is None else zip(labels.tolist(), *texts, strict=True)
    return "\n".join("\t".join(map(str, row)) for row in rows).encode()


def load_sst2(path: PathLike | None = None, *, verify: bool = True) -> DatasetSplits:
    """GLUE SST-2 (Socher et al. 2013; Wang et al. 2019) from its TSV files.

    Columns are found by header name, so both GLUE's ``sentence<TAB>label`` and the
    swapped ``label<TAB>content`` copies read the same; a test file without a label
    column (GLUE's official ``index<TAB>sentence``) gives a test split with
    ``labels=None``.

    Args:
      path: a folder with ``train.tsv``, ``dev.tsv`` and (optionally) ``test.tsv``.
      verify: check 67,349 / 872 / 1,821 sentences with their label counts, and a hash of
        the parsed ``(label, sentence)`` records (so column order does not matter).

    Raises:
      ManifestError, DataFormatError (naming file and line), DataUnavailableError.
    """
    local = locate("sst2", path)
    if local is None:
        return _remote("sst2", hub.glue_sst2, verify)
    splits, digests = {}, {}
    for split in ("train", "dev", "test"):
        file = local / f"{split}.tsv"
        if not file.exists():
            if split == "test":
                continue
            raise FileNotFoundError(f"sst2: {file} is missing")
        header, rows = _read_tsv(file)
        cols = _columns(file, header, rows, {"text": ("sentence", "content"), "label": ("label",),
                                             "id": ("index", "idx")}, optional=("label", "id"))
        labels = _int_labels(file, cols["label"], {"0": 0, "1": 1}) if "label" in cols else None
        ids = cols.get("id", [str(i) for i in range(len(rows))])
        splits[split] = Split(ids=ids, texts=cols["text"], labels=labels)
        resource = split if labels is not None else f"{split} (unlabelled)"
        digests[resource] = content_sha256({split: _canonical(labels, cols["text"])})
    out = DatasetSplits("sst2", splits["train"], splits["dev"], splits.get("test"),
                        {"label_names": SENTIMENT_LABELS, "task": "classification", "source": str(local)})
    return verify_loaded(out, digests, verify=verify, source=local)


def load_mnli(path: PathLike | None = None, *, verify: bool = True) -> DatasetSplits:
    """GLUE MultiNLI (Williams et al. 2018): train, dev = matched, test = mismatched dev set.

    The official test sets are unlabelled, so the mismatched dev set serves as test.

    Args:
      path: a folder with GLUE's ``train.tsv``, ``dev_matched.tsv``, ``dev_mismatched.tsv``.
      verify: check 392,702 / 9,815 / 9,832 pairs.

    Returns:
      ``pairs`` (sentence1, sentence2), ``labels`` in :data:`NLI_LABELS` order.

    Raises:
      ManifestError, DataFormatError, DataUnavailableError.
    """
    local = locate("mnli", path)
    if local is None:
        return _remote("mnli", hub.glue_mnli, verify)
    files = {"train": "train.tsv", "dev": "dev_matched.tsv", "test": "dev_mismatched.tsv"}
    return _read_glue_pairs("mnli", local, files, {"first": ("sentence1",), "second": ("sentence2",),
                                                   "label": ("gold_label",), "id": ("pairID",)},
                            {name: i for i, name in enumerate(NLI_LABELS)}, NLI_LABELS, verify)


def load_qqp(path: PathLike | None = None, *, verify: bool = True) -> DatasetSplits:
    """GLUE Quora Question Pairs: train and dev (the official test set is unlabelled and skipped).

    Args:
      path: a folder with GLUE's ``train.tsv`` and ``dev.tsv``.
      verify: check 363,846 / 40,430 pairs.

    Returns:
      ``pairs`` (question1, question2), ``labels`` (0 not duplicate, 1 duplicate).

    Raises:
      ManifestError, DataFormatError, DataUnavailableError.
    """
    local = locate("qqp", path)
    if local is None:
        return _remote("qqp", hub.glue_qqp, verify)
    return _read_glue_pairs("qqp", local, {"train": "train.tsv", "dev": "dev.tsv"},
                            {"first": ("question1",), "second": ("question2",),
                             "label": ("is_duplicate",), "id": ("id",)},
                            {"0": 0, "1": 1}, ("not_duplicate", "duplicate"), verify)


_XNLI_SPLITS = {"dev": "xnli.dev.tsv", "test": "xnli.test.tsv"}


def load_xnli(language: str = "en", path: PathLike | None = None, *, verify: bool = True) -> DatasetSplits:
    """XNLI 1.0 (Conneau et al. 2018), one language's dev and test pairs.

    The agreement study's MNLI test set (Neely et al. 2022; court-of-xai's
    ``extract_mnli_test_en.py``): MultiNLI has no labelled test set, so the English XNLI
    test pairs stand in for it.

    Args:
      language: XNLI's language code (``"en"``, ``"fr"``, ...).
      path: a folder with XNLI-1.0's ``xnli.dev.tsv`` / ``xnli.test.tsv`` (directly or under
        ``XNLI-1.0/``), or the release's ``XNLI-1.0.zip``.
      verify: check 2,490 dev and 5,010 test pairs (every language has as many).

    Returns:
      ``train`` None; ``dev`` / ``test`` with ``pairs`` (sentence1, sentence2) and ``labels``
      in :data:`NLI_LABELS` order, ids = XNLI's ``pairID``.

    Raises:
      ManifestError, DataFormatError, DataUnavailableError.
    """
    import zipfile

    local = locate("xnli", path)
    if local is None:
        return _remote("xnli", lambda: hub.xnli(language), verify)
    if local.is_dir() and not (local / _XNLI_SPLITS["test"]).exists():
        inner, archive = local / "XNLI-1.0", local / "XNLI-1.0.zip"
        local = inner if inner.is_dir() else archive if archive.exists() else local
    if local.is_file() and local.suffix == ".zip":
        with zipfile.ZipFile(local) as z:
            members = {Path(n).name: n for n in z.namelist()}
            texts = {split: z.read(members[f]).decode("utf-8") for split, f in _XNLI_SPLITS.items() if f in members}
        digests = {local.name: file_sha256(local)}
    else:
        files = {split: local / f for split, f in _XNLI_SPLITS.items()}
        texts = {split: decode(read_bytes(f), str(f)) for split, f in files.items() if f.exists()}
        digests = {f.name: file_sha256(f) for f in files.values() if f.exists()}
    if "test" not in texts:
        raise DataFormatError(f"xnli: no {_XNLI_SPLITS['test']} in {local}; expected layout: {SOURCES['xnli'].layout}")
    allowed = {name: i for i, name in enumerate(NLI_LABELS)}
    splits = {}
    for split, text in texts.items():
        file = Path(str(local)) / _XNLI_SPLITS[split]
        lines = _lines(text)
        header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
        cols = _columns(file, header, rows, {"language": ("language",), "label": ("gold_label",),
                                             "first": ("sentence1",), "second": ("sentence2",), "id": ("pairID",)})
        keep = [i for i, lang in enumerate(cols["language"]) if lang == language]
        if not keep:
            raise DataFormatError(f"{file}: no rows in language {language!r} "
                                  f"(it has {sorted(set(cols['language']))})")
        labels = _int_labels(file, [cols["label"][i] for i in keep], allowed)
        splits[split] = Split(ids=[cols["id"][i] for i in keep], labels=labels,
                              pairs=[(cols["first"][i], cols["second"][i]) for i in keep])
    out = DatasetSplits("xnli", None, splits.get("dev"), splits["test"],
                        {"label_names": NLI_LABELS, "task": "classification", "source": str(local),
                         "language": language})
    return verify_loaded(out, digests, verify=verify, source=local)


def _read_glue_pairs(name: str, local: Path, files: dict[str, str], wanted, allowed, label_names,
                     verify: bool) -> DatasetSplits:
    splits, digests = {}, {}
    for split, filename in files.items():
        file = local / filename
        if not file.exists():
            raise FileNotFoundError(f"{name}: {file} is missing")
        header, rows = _read_tsv(file)
        cols = _columns(file, header, rows, wanted, optional=("id",))
        labels = _int_labels(file, cols["label"], allowed)
        ids = cols.get("id", [str(i) for i in range(len(rows))])
        splits[split] = Split(ids=ids, pairs=list(zip(cols["first"], cols["second"], strict=True)), labels=labels)
        digests[filename] = file_sha256(file)
    out = DatasetSplits(name, splits["train"], splits["dev"], splits.get("test"),
                        {"label_names": label_names, "task": "classification", "source": str(local)})
    return verify_loaded(out, digests, verify=verify, source=local)


# ------------------------------------------------------------------------------ SNLI


def load_snli(path: PathLike | None = None, *, verify: bool = True) -> DatasetSplits:
    """SNLI (Bowman et al. 2015) from e-SNLI's / InferSent's parallel files.

    Each split is three files with one example per line: ``s1.<split>`` (premise),
    ``s2.<split>`` (hypothesis) and ``labels.<split>``. Splits whose files are absent
    are None (SNLI train is not in the offline copy).

    Args:
      path: the folder holding the files.
      verify: check dev 9,842 and test 9,824 (and train 549,367) pairs, and the files' hashes.

    Returns:
      ``pairs`` (premise, hypothesis), ``labels`` in :data:`NLI_LABELS` order, ids
      ``"<split>/<line>"``.

    Raises:
      ManifestError, DataFormatError (mismatched files, unknown label with its line),
      DataUnavailableError.
    """
    local = locate("snli", path)
    if local is None:
        return _remote("snli", hub.snli, verify)
    if local.is_file():
        local = local.parent
    splits, digests = {}, {}
    allowed = {name: i for i, name in enumerate(NLI_LABELS)}
    for split in ("train", "dev", "test"):
        files = [local / f"{kind}.{split}" for kind in ("s1", "s2", "labels")]
        present = [f.exists() for f in files]
        if not any(present):
            continue
        if not all(present):
            raise DataFormatError(f"snli: {split} needs all of {[f.name for f in files]} in {local}; "
                                  f"missing {[f.name for f, p in zip(files, present, strict=True) if not p]}")
        premises, hypotheses, label_lines = (
            [line.rstrip() for line in _lines(decode(read_bytes(f), str(f)))] for f in files)
        if not len(premises) == len(hypotheses) == len(label_lines):
            raise DataFormatError(f"snli: mismatched pair files for {split}: "
                                  f"{files[0]} {len(premises)}, {files[1]} {len(hypotheses)}, "
                                  f"{files[2]} {len(label_lines)} lines")
        labels = []
        for line_no, value in enumerate(label_lines, start=1):
            if value not in allowed:
                raise DataFormatError(f"{files[2]}, line {line_no}: label {value!r} not in {NLI_LABELS}")
            labels.append(allowed[value])
        splits[split] = Split(ids=[f"{split}/{i}" for i in range(1, len(labels) + 1)],
                              pairs=list(zip(premises, hypotheses, strict=True)), labels=_labels(labels))
        digests.update({f.name: file_sha256(f) for f in files})
    if not splits:
        raise FileNotFoundError(f"snli: no s1/s2/labels.<split> files in {local}")
    out = DatasetSplits("snli", splits.get("train"), splits.get("dev"), splits.get("test"),
                        {"label_names": NLI_LABELS, "task": "classification", "source": str(local)})
    return verify_loaded(out, digests, verify=verify, source=local)


# --------------------------------------------------------------------------- MLQE-PE

_PE_FILES = ("src", "mt", "tags", "source_tags", "hter")


def _mlqe_root(local: Path) -> Path:
    for root in (local, local / "data"):
        if (root / "direct-assessments").is_dir():
            return root
    raise FileNotFoundError(f"mlqe_pe: no direct-assessments/ folder in {local} or {local / 'data'}")


def _mlqe_members(root: Path, kind: str, split: str, pair: str, pattern: str) -> dict[str, bytes]:
    """The members of ``<kind>/<split>/<pair>-<split>.tar.gz`` (or its extraction) matching
    ``pattern``, keyed by base name."""
    keep = re.compile(pattern)
    folder = root / kind / split
    tarball = folder / f"{pair}-{split}.tar.gz"
    source = tarball if tarball.exists() else folder
    if not source.exists():
        raise FileNotFoundError(f"mlqe_pe: neither {tarball} nor an extracted {folder}/ exists")
    members = read_tree(source, lambda n: keep.search(n) is not None)
    return {name.rsplit("/", 1)[-1]: data for name, data in members.items()}


def _tags(file: str, line_no: int, line: str, n_tokens: int, gaps: bool) -> np.ndarray:
    tags = line.split()
    if gaps and len(tags) == 2 * n_tokens + 1:
        tags = tags[1::2]  # target tags interleave gap tags: gap w1 gap w2 ... gap
    if len(tags) != n_tokens or not set(tags) <= {"OK", "BAD"}:
        raise DataFormatError(f"{file}, line {line_no}: {len(tags)} OK/BAD tags for {n_tokens} tokens")
    return np.asarray([t == "BAD" for t in tags], dtype=np.uint8)


def _subset_manifest(dataset: str, keys: Sequence[str], known: Sequence[str], what: str) -> Manifest:
    """The manifest of ``dataset`` restricted to some of its count keys (pairs, classes)."""
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known: {tuple(known)}")
    full = MANIFESTS[dataset]
    return Manifest(full.name, {s: {k: c[k] for k in keys} for s, c in full.counts.items()},
                    full.count_by, full.digests, full.reference)


def load_mlqe_pe(path: PathLike | None = None, *, langpairs: Sequence[str] = MLQE_PAIRS,
                 word_tags: bool = True, verify: bool = True) -> DatasetSplits:
    """MLQE-PE (Fomicheva et al. 2020): sentence-level DA scores and word-level post-editing tags.

    Reads, per language pair and split, the direct-assessment table
    (``<split>.<pair>.df.short.tsv``: ``original``, ``translation``, ``z_mean``) and,
    with ``word_tags``, the row-aligned post-editing files (``.src``, ``.mt``,
    ``.tags``, ``.source_tags``, ``.hter``), straight from the official per-pair
    tarballs. Pairs are concatenated in ``langpairs`` order.

    Args:
      path: the repository's ``data/`` folder (or the repository root).
      langpairs: default the six pairs of SMaT (Fernandes et al. 2022, Sec. 5.2);
        ``"si-en"`` may be added.
      word_tags: also read the post-editing tags (the word-level plausibility gold).
      verify: check 7,000 / 1,000 / 1,000 segments per pair and the content hashes.

    Returns:
      ``pairs`` (original, translation) and ``scores`` (z_mean, float32); with
      ``word_tags``, ``rationales`` of kind ``"word_tags"``: per segment
      ``(source_tags, target_tags)`` uint8 arrays (1 = BAD; target gap tags dropped) over
      the whitespace tokens of ``extras["source_tokenized"]`` / ``extras["target_tokenized"]``
      (the tokenised sentences of the post-editing files), plus ``extras["hter"]``.
      ``extras["langpair"]`` names each segment's pair; ids are ``"<pair>/<split>/<segid>"``.

    Raises:
      ManifestError, DataFormatError (naming the member and line), DataUnavailableError.
    """
    manifest = _subset_manifest("mlqe_pe", langpairs, MLQE_ALL_PAIRS, "MLQE-PE language pairs")
    local = locate("mlqe_pe", path)
    if local is None:
        return _remote("mlqe_pe", lambda: hub.wmt20_mlqe_task1(tuple(langpairs)), verify, manifest)
    root = _mlqe_root(local)
    splits, digests = {}, {}
    for split in ("train", "dev", "test"):
        prefix = "test20" if split == "test" else split
        cols = {k: [] for k in ("ids", "pairs", "scores", "langpair", "rationales", "source", "target",
                                "hter")}
        for pair in langpairs:
            code = pair.replace("-", "")
            da_name = f"{prefix}.{code}.df.short.tsv"
            da = _mlqe_members(root, "direct-assessments", split, pair, rf"(?:^|/){re.escape(da_name)}$")
            if da_name not in da:
                raise DataFormatError(f"mlqe_pe: {da_name} not found for {pair} {split} under {root}")
            digests[f"direct-assessments/{split}/{pair}"] = content_sha256(da)
            where = f"{root}/direct-assessments/{split}/{pair}:{da_name}"
            lines = _lines(decode(da[da_name], where))
            header = lines[0].split("\t")
            for needed in ("original", "translation", "z_mean"):
                if needed not in header:
                    raise DataFormatError(f"{where}, line 1: no {needed!r} column in {header}")
            at = {k: header.index(k) for k in ("original", "translation", "z_mean")}
            for line_no, line in enumerate(lines[1:], start=2):
                row = line.split("\t")  # quoting off: some segments contain a bare "
                if len(row) != len(header):
                    raise DataFormatError(f"{where}, line {line_no}: {len(row)} fields, header has {len(header)}")
                try:
                    score = float(row[at["z_mean"]])
                except ValueError as e:
                    raise DataFormatError(f"{where}, line {line_no}: z_mean {row[at['z_mean']]!r} "
                                          f"is not a number") from e
                cols["ids"].append(f"{pair}/{split}/{row[0]}")
                cols["pairs"].append((row[at["original"]], row[at["translation"]]))
                cols["scores"].append(score)
                cols["langpair"].append(pair)
            n = len(lines) - 1
            if not word_tags:
                continue
            pe = _mlqe_members(root, "post-editing", split, pair,
                               rf"(?:^|/){re.escape(pair)}[^/]*/{prefix}\.(?:{'|'.join(_PE_FILES)})$")
            digests[f"post-editing/{split}/{pair}"] = content_sha256(pe)
            pe_lines = {}
            for ext in _PE_FILES:
                name = f"{prefix}.{ext}"
                if name not in pe:
                    raise DataFormatError(f"mlqe_pe: {name} missing from post-editing/{split}/{pair}")
                pe_lines[ext] = _lines(decode(pe[name], f"post-editing/{split}/{pair}:{name}"))
                if len(pe_lines[ext]) != n:
                    raise DataFormatError(f"mlqe_pe: post-editing/{split}/{pair}:{name} has "
                                          f"{len(pe_lines[ext])} lines, {da_name} has {n} segments")
            for i in range(n):
                src, mt = pe_lines["src"][i], pe_lines["mt"][i]
                where_pe = f"post-editing/{split}/{pair}:{prefix}"
                cols["rationales"].append((
                    _tags(f"{where_pe}.source_tags", i + 1, pe_lines["source_tags"][i], len(src.split()), False),
                    _tags(f"{where_pe}.tags", i + 1, pe_lines["tags"][i], len(mt.split()), True)))
                cols["source"].append(src)
                cols["target"].append(mt)
                cols["hter"].append(float(pe_lines["hter"][i]))
        extras = {"langpair": cols["langpair"]}
        if word_tags:
            extras |= {"source_tokenized": cols["source"], "target_tokenized": cols["target"],
                       "hter": np.asarray(cols["hter"], dtype=np.float32)}
        splits[split] = Split(ids=cols["ids"], pairs=cols["pairs"],
                              scores=np.asarray(cols["scores"], dtype=np.float32),
                              rationales=cols["rationales"] if word_tags else None, extras=extras)
    meta = {"task": "regression", "langpairs": tuple(langpairs), "source": str(root)}
    if word_tags:
        meta["rationale_kind"] = "word_tags"
    out = DatasetSplits("mlqe_pe", splits["train"], splits["dev"], splits["test"], meta)
    return verify_loaded(out, digests, verify=verify, source=root, manifest=manifest)


# ------------------------------------------------------------- 20 Newsgroups, AG News

_NEWS_MEMBER = re.compile(r"(?:^|/)20news-bydate-(train|test)/([^/]+)/(\d+)$")
JAIN_WALLACE_NEWSGROUPS = ("rec.sport.baseball", "rec.sport.hockey")


def load_twenty_newsgroups(path: PathLike | None = None, *,
                           categories: Sequence[str] = JAIN_WALLACE_NEWSGROUPS,
                           verify: bool = True) -> DatasetSplits:
    """20 Newsgroups, "bydate" version, restricted to ``categories`` (label = position in it).

    The default is Jain & Wallace's binary task, baseball vs hockey. This loader keeps the
    official bydate train / test split and the raw messages (headers included, latin-1
    decoded as scikit-learn does); it does not redo Jain & Wallace's pooled, spaCy-cleaned
    80/20 re-split. Untested against the real files (no offline copy here).

    Args:
      path: ``20news-bydate.tar.gz`` or a folder holding ``20news-bydate-{train,test}/``.
      categories: newsgroup names.
      verify: for the default pair, check 597 / 600 train and 397 / 399 test messages.

    Raises:
      ManifestError, DataFormatError, DataUnavailableError.
    """
    categories = tuple(categories)
    local = locate("twenty_newsgroups", path)
    if local is None:
        splits = from_remote("twenty_newsgroups", lambda: hub.twenty_newsgroups(categories))
        return _news_verified(splits, categories, {}, verify=verify, source=splits.meta["source"])
    root = local
    if local.is_dir() and not (local / "20news-bydate-train").is_dir():
        root = find_file(local, ("20news-bydate.tar.gz", "20news-bydate"), "twenty_newsgroups")
    members = read_tree(root, lambda n: (m := _NEWS_MEMBER.search(n)) is not None and m.group(2) in categories)
    found = {}
    for name, data in members.items():
        split, group, message = _NEWS_MEMBER.search(name).groups()
        found[(split, categories.index(group), int(message))] = data.decode("latin-1")
    splits = {}
    for split in ("train", "test"):
        keys = sorted(k for k in found if k[0] == split)
        if not keys:
            raise DataFormatError(f"{root}: no 20news-bydate-{split}/<group>/<id> messages for {categories}")
        splits[split] = Split(ids=[f"{split}/{categories[k[1]]}/{k[2]}" for k in keys],
                              texts=[found[k] for k in keys], labels=_labels([k[1] for k in keys]))
    out = DatasetSplits("twenty_newsgroups", splits["train"], None, splits["test"],
                        {"label_names": categories, "task": "classification", "source": str(root)})
    digest = content_sha256({n: d for n, d in members.items()})
    return _news_verified(out, categories, {"messages": digest}, verify=verify, source=root)


def _news_verified(splits, categories, digests, *, verify, source):
    if categories != JAIN_WALLACE_NEWSGROUPS:
        # No recorded counts for other subsets: report them as unverified, not as failures.
        return splits.replace(meta={**splits.meta, "digests": digests, "verified": False})
    return verify_loaded(splits, digests, verify=verify, source=source)


AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")


def load_ag_news(path: PathLike | None = None, *, classes: Sequence[str] = ("World", "Business"),
                 verify: bool = True) -> DatasetSplits:
    """AG News (Zhang et al. 2015) from its csv files, restricted to ``classes``.

    The default is Jain & Wallace's binary task (World = 0 vs Business = 1), whose text
    is the description column only, as in their preprocessing. Untested against the real
    files (no offline copy here).

    Args:
      path: a folder with ``train.csv`` and ``test.csv`` (no header: class index 1-4,
        title, description).
      classes: a subset of ``("World", "Sports", "Business", "Sci/Tech")``.
      verify: check 30,000 train and 1,900 test articles per class.

    Returns:
      ``texts`` (descriptions), ``labels`` (position in ``classes``), ``extras["title"]``.

    Raises:
      ManifestError, DataFormatError (naming file and line), DataUnavailableError.
    """
    classes = tuple(classes)
    manifest = _subset_manifest("ag_news", classes, AG_NEWS_CLASSES, "AG News classes")
    local = locate("ag_news", path)
    if local is None:
        return _remote("ag_news", lambda: hub.ag_news(classes), verify, manifest)
    splits, digests = {}, {}
    for split in ("train", "test"):
        file = local / f"{split}.csv"
        if not file.exists():
            raise FileNotFoundError(f"ag_news: {file} is missing")
        rows = csv.reader(io.StringIO(decode(read_bytes(file), str(file)), newline=""))
        ids, texts, titles, labels = [], [], [], []
        for i, row in enumerate(rows):
            if len(row) != 3 or row[0] not in ("1", "2", "3", "4"):
                raise DataFormatError(f"{file}, line {rows.line_num}: expected class index 1-4, title, "
                                      f"description; got {row[:3]}")
            name = AG_NEWS_CLASSES[int(row[0]) - 1]
            if name in classes:
                ids.append(f"{split}/{i}")
                titles.append(row[1])
                texts.append(row[2])
                labels.append(classes.index(name))
        splits[split] = Split(ids=ids, texts=texts, labels=_labels(labels), extras={"title": titles})
        digests[file.name] = file_sha256(file)
    out = DatasetSplits("ag_news", splits["train"], None, splits["test"],
                        {"label_names": classes, "task": "classification", "source": str(local)})
    return verify_loaded(out, digests, verify=verify, source=local, manifest=manifest)
