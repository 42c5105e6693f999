"""Bring your own data: a CSV, TSV or JSONL table (or one file per split) as a :class:`DatasetSplits`.

CSV follows RFC 4180 quoting; TSV fields are taken literally (no quoting, as GLUE's
and MLQE-PE's files are written); JSONL holds one JSON object per line. Every
format needs named columns (a header line for CSV / TSV).

A rationale cell is either a list of ``[start_token, end_token]`` pairs (half-open
evidence spans over ``text.split()``), or 0/1 tags, one per whitespace token (a JSON
list, or a string such as ``"0 1 1 0"``). In CSV / TSV a list is written as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from smat.data.manifest import Manifest, file_sha256, verify_loaded
from smat.data.sources import DataFormatError, decode, read_bytes
from smat.data.splits import SPLIT_NAMES, DatasetSplits, Split

__all__ = ["load_table", "SPLIT_ALIASES"]

PathLike = str | os.PathLike
SPLIT_ALIASES = {"train": "train", "training": "train", "dev": "dev", "val": "dev", "valid": "dev",
                 "validation": "dev", "test": "test", "testing": "test"}
_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def _records(file: Path, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` for every record of ``file``."""
    text = decode(read_bytes(file), str(file))
    if fmt == "jsonl":
        out = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{file}, line {line_no}: invalid JSON ({e.msg})") from e
            if not isinstance(record, dict):
                raise DataFormatError(f"{file}, line {line_no}: expected a JSON object")
            out.append((line_no, record))
        return out
    if fmt == "tsv":
        lines = text.splitlines()
        if not lines:
            return []
        header = lines[0].split("\t")
        out = []
        for line_no, line in enumerate(lines[1:], start=2):
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != len(header):
                raise DataFormatError(f"{file}, line {line_no}: {len(fields)} fields, header has {len(header)}")
            out.append((line_no, dict(zip(header, fields, strict=True))))
        return out
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return []
    out = []
    try:
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise DataFormatError(f"{file}, line {reader.line_num}: {len(fields)} fields, "
                                      f"header has {len(header)}")
            out.append((reader.line_num, dict(zip(header, fields, strict=True))))
    except csv.Error as e:
        raise DataFormatError(f"{file}, line {reader.line_num}: {e}") from e
    return out


def _rationale(value: Any, where: str) -> tuple[str, np.ndarray]:
    """``("spans", int32 [spans, 2])`` or ``("token_tags", uint8 [tokens])`` from one cell."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{where}: rationale is not valid JSON ({e.msg})") from e
        else:
            value = stripped.split()
    if not isinstance(value, list):
        raise DataFormatError(f"{where}: rationale must be a list, got {type(value).__name__}")
    if value and all(isinstance(v, list) for v in value):
        if not all(len(v) == 2 and all(isinstance(x, int) for x in v) and 0 <= v[0] < v[1] for v in value):
            raise DataFormatError(f"{where}: spans must be [start, end] integer pairs with start < end")
        return "spans", np.asarray(value, dtype=np.int32).reshape(-1, 2)
    tags = [int(v) if str(v) in ("0", "1") else -1 for v in value]
    if any(t < 0 for t in tags):
        raise DataFormatError(f"{where}: token tags must be 0 or 1")
    return "token_tags", np.asarray(tags, dtype=np.uint8)


def load_table(
    path: PathLike | Mapping[str, PathLike],
    *,
    text_columns: str | Sequence[str] = "text",
    label_column: str | None = "label",
    score_column: str | None = None,
    rationale_column: str | None = None,
    split_column: str | None = None,
    id_column: str | None = None,
    label_names: Sequence[str] | None = None,
    format: str | None = None,
    split: str = "train",
    name: str = "table",
    manifest: Manifest | None = None,
) -> DatasetSplits:
    """Load your own CSV / TSV / JSONL data into the common split structure.

    Args:
      path: one file, or ``{split: file}`` (split names as in :data:`SPLIT_ALIASES`).
      text_columns: one column (``texts``) or two (``pairs``).
      label_column: class labels, or None. Values are mapped by ``label_names`` when
        given; otherwise integers are kept and strings are numbered in sorted order.
      score_column: float regression targets, or None.
      rationale_column: optional rationales (see the module docstring); an empty cell
        means no evidence.
      split_column: a column naming each row's split (train, dev / validation / val, test).
      id_column: a column of example ids; default ``"<file name>:<line>"``.
      label_names: the class names, in label-id order.
      format: ``"csv"``, ``"tsv"`` or ``"jsonl"``; inferred from the file suffix when None.
      split: where rows go when neither a ``{split: file}`` mapping nor ``split_column`` says.
      name: the data set's name in the result.
      manifest: counts and file hashes to verify against, if you have them.

    Returns:
      A :class:`DatasetSplits`; splits without rows are None. ``meta["label_names"]``
      holds the class names, ``meta["digests"]`` each file's SHA-256.

    Raises:
      DataFormatError: naming the file and line of a missing column, bad row, label out
        of range or malformed rationale, or a file with no rows.
      ManifestError: when ``manifest`` is given and does not match.

    Examples:
      >>> import pathlib, tempfile
      >>> d = pathlib.Path(tempfile.mkdtemp())
      >>> _ = (d / "reviews.csv").write_text("text,label\\ngood film,pos\\nbad film,neg\\n")
      >>> data = load_table(d / "reviews.csv")
      >>> data.meta["label_names"], data.train.labels.tolist()
      (('neg', 'pos'), [1, 0])
    """
    text_columns = (text_columns,) if isinstance(text_columns, str) else tuple(text_columns)
    if len(text_columns) not in (1, 2):
        raise ValueError(f"text_columns must name one or two columns, got {text_columns}")
    if isinstance(path, Mapping):
        files = {_split_name(s, f"split {s!r}"): Path(p) for s, p in path.items()}
    else:
        files = {_split_name(split, f"split {split!r}"): Path(path)}
    rows: dict[str, list[tuple[str, dict]]] = {s: [] for s in SPLIT_NAMES}
    digests = {}
    wanted = [*text_columns, label_column, score_column, rationale_column, split_column, id_column]
    wanted = [c for c in wanted if c is not None]
    for default_split, file in files.items():
        fmt = format or _FORMATS.get(file.suffix.lower())
        if fmt not in ("csv", "tsv", "jsonl"):
            raise ValueError(f"{file}: cannot tell the format from the suffix; pass format='csv'|'tsv'|'jsonl'")
        records = _records(file, fmt)
        if not records:
            raise DataFormatError(f"{file}: no rows")
        digests[file.name] = file_sha256(file)
        for line_no, record in records:
            missing = [c for c in wanted if c not in record]
            if missing:
                raise DataFormatError(f"{file}, line {line_no}: missing column(s) {missing}; "
                                      f"found {sorted(record)}")
            target = default_split
            if split_column is not None:
                target = _split_name(str(record[split_column]), f"{file}, line {line_no}")
            rows[target].append((f"{file.name}:{line_no}", record))

    labels_by_split, names = _label_ids(rows, label_column, label_names)
    rationales_by_split, kind = _rationales(rows, rationale_column, name)
    splits = {}
    for split_name, split_rows in rows.items():
        if not split_rows:
            continue
        texts = [[str(r[c]) for c in text_columns] for _, r in split_rows]
        scores = None
        if score_column is not None:
            try:
                scores = np.asarray([float(r[score_column]) for _, r in split_rows], dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise DataFormatError(f"{name}: a {score_column!r} value is not a number ({e})") from e
        splits[split_name] = Split(
            ids=[str(r[id_column]) if id_column else where for where, r in split_rows],
            texts=[t[0] for t in texts] if len(text_columns) == 1 else None,
            pairs=[(t[0], t[1]) for t in texts] if len(text_columns) == 2 else None,
            labels=labels_by_split.get(split_name),
            scores=scores,
            rationales=rationales_by_split.get(split_name),
        )
    meta = {"task": "regression" if score_column and not label_column else "classification",
            "source": {s: str(f) for s, f in files.items()}}
    if names is not None:
        meta["label_names"] = names
    if kind is not None:
        meta["rationale_kind"] = kind
    out = DatasetSplits(name, splits.get("train"), splits.get("dev"), splits.get("test"), meta)
    if manifest is None:
        return out.replace(meta={**out.meta, "digests": digests, "verified": False})
    return verify_loaded(out, digests, verify=True, source=", ".join(map(str, files.values())),
                         manifest=manifest)


def _rationales(rows, rationale_column, name):
    """Rationales per split and their one kind; an empty cell is no evidence of that kind."""
    if rationale_column is None:
        return {}, None
    parsed = {split_name: [None if r[rationale_column] in (None, "", []) else
                           _rationale(r[rationale_column], where) for where, r in split_rows]
              for split_name, split_rows in rows.items() if split_rows}
    kinds = {cell[0] for cells in parsed.values() for cell in cells if cell is not None}
    if len(kinds) > 1:
        raise DataFormatError(f"{name}: rationales mix spans and token tags")
    kind = kinds.pop() if kinds else "spans"
    empty = np.zeros((0, 2), np.int32) if kind == "spans" else np.zeros(0, np.uint8)
    return {s: [empty if c is None else c[1] for c in cells] for s, cells in parsed.items()}, kind


def _split_name(value: str, where: str) -> str:
    key = value.strip().lower()
    if key not in SPLIT_ALIASES:
        raise DataFormatError(f"{where}: unknown split {value!r}; use one of {sorted(SPLIT_ALIASES)}")
    return SPLIT_ALIASES[key]


def _label_ids(rows, label_column, label_names):
    """Label ids per split and the class names, checking every value is in range."""
    if label_column is None:
        return {}, None
    values = [(where, r[label_column]) for split_rows in rows.values() for where, r in split_rows]
    if label_names is not None:
        names = tuple(label_names)
        lookup = {n: i for i, n in enumerate(names)}
        lookup |= {str(i): i for i in range(len(names))}  # ids are accepted as well as names
    elif all(_is_int(v) for _, v in values):
        top = max(int(v) for _, v in values)
        names, lookup = tuple(str(i) for i in range(top + 1)), {str(i): i for i in range(top + 1)}
    else:
        names = tuple(sorted({str(v) for _, v in values}))
        lookup = {n: i for i, n in enumerate(names)}
    out = {}
    for split_name, split_rows in rows.items():
        ids = []
        for where, r in split_rows:
            key = str(r[label_column]).strip()
            if key not in lookup:
                raise DataFormatError(f"{where}: label {r[label_column]!r} out of range; "
                                      f"labels are {names}")
            ids.append(lookup[key])
        if split_rows:
            out[split_name] = np.asarray(ids, dtype=np.int32)
    return out, names


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and value.strip().isdigit()
