"""MIMIC-III Diabetes and Anemia (Jain & Wallace 2019), from a credentialed local copy.

MIMIC-III needs PhysioNet credentialed access, so there is no hub fallback and nothing of it
ships with this project. Given the official files, this module rebuilds Jain & Wallace's two
binary tasks (their ``preprocess/MIMIC`` notebooks, as dissected in the reference notes):

- texts: discharge summaries (``CATEGORY == "Discharge summary"``, ``ISERROR`` empty), the
  report and its addenda joined per admission (``SUBJECT_ID``, ``HADM_ID``), cleaned by
  :func:`clean_mimic`;
- codes: ``DIAGNOSES_ICD.ICD9_CODE`` formatted ``XXX.YY`` (``EXXX.Y`` for E codes) as CAML did;
- **Diabetes**: the admissions of CAML's top-50 split files ``{train,dev,test}_50_hadm_ids.csv``
  (Mullenbach et al. 2018; one HADM_ID per line, no header), label 1 when any code starts
  with ``250.00``;
- **Anemia**: every admission with exactly one of 285.1 / 285.2, label 1 = 285.1 (acute
  posthemorrhagic; the released code's mapping, which the paper's text states the other way
  round), stratified 20% test (``random_state=12939``), then 15% of the rest as dev
  (``random_state=13448``), with scikit-learn's ``train_test_split``.

Deviations, reported in ``meta["notes"]``: a regular-expression tokenizer stands in for
spaCy's; admissions are ordered by HADM_ID before the Anemia split (the notebooks' order came
from pandas operations that are not reproducible from the paper), so the Anemia split holds
the same proportions but not necessarily the same admissions. The length filters
(Diabetes 6 < n < 4000 tokens, Anemia n < 4000) are applied by the experiment, as for the
other data sets.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from smat.data.sources import DataFormatError, find_file, from_remote, locate
from smat.data.splits import DatasetSplits, Split

__all__ = ["MIMIC_TASKS", "clean_mimic", "format_icd9", "load_mimic"]

MIMIC_TASKS = ("diabetes", "anemia")
_NOTES = ("NOTEEVENTS.csv", "NOTEEVENTS.csv.gz")
_CODES = ("DIAGNOSES_ICD.csv", "DIAGNOSES_ICD.csv.gz")
_DEID = re.compile(r"\[\s*\*\s*\*(.*?)\*\s*\*\s*\]")
_REPEATED = re.compile(r"([^a-zA-Z0-9])(\s*\1\s*)+")
_TOKEN = re.compile(r"<de>|[a-z0-9]+(?:[.'][a-z0-9]+)*|[^\sa-z0-9]")


def clean_mimic(text: str) -> str:
    """J&W's ``cleaner_mimic``: tokens lower-cased, ``[** ... **]`` -> ``<DE>``, runs of a
    repeated punctuation mark collapsed to one, words holding a digit -> ``qqq``; space-joined.

    Tokens are words (with inner ``.`` / ``'``, e.g. ``2.5``, ``pt's``) and single punctuation
    marks: a regular-expression stand-in for the spaCy tokenizer they used.

    >>> clean_mimic("Pt is a 65 yo M [**Hospital 123**]... BP 120/80!!")
    'pt is a qqq yo m <DE> . bp qqq / qqq !'
    """
    text = _DEID.sub(" <DE> ", " ".join(text.split()).lower())
    tokens = _TOKEN.findall(text.replace("<DE>", "<de>"))
    text = _REPEATED.sub(r"\1 ", " ".join(tokens))
    return " ".join("<DE>" if t == "<de>" else "qqq" if any(c.isdigit() for c in t) else t for t in text.split())


def format_icd9(code: str) -> str:
    """CAML's diagnosis-code format: a dot after the third character (the fourth for E codes).

    >>> format_icd9("25000"), format_icd9("2851"), format_icd9("E8497"), format_icd9("V1582")
    ('250.00', '285.1', 'E849.7', 'V15.82')
    """
    code = code.replace(".", "").strip()
    cut = 4 if code.startswith("E") else 3
    return code[:cut] + "." + code[cut:] if len(code) > cut else code


def _rows(path: Path) -> Iterator[dict[str, str]]:
    """Streams a MIMIC csv (NOTEEVENTS is ~4 GB: never read whole)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        yield from reader


def _discharge_summaries(path: Path, keep: set[int] | None) -> dict[int, str]:
    """HADM_ID -> the admission's discharge report then its addenda (by ROW_ID), joined."""
    parts: dict[int, list[tuple[int, int, str]]] = {}
    for line, row in enumerate(_rows(path), start=2):
        try:
            if row["CATEGORY"].strip() != "Discharge summary" or row["ISERROR"].strip():
                continue
            if not row["HADM_ID"].strip():
                continue
            hadm = int(float(row["HADM_ID"]))
            if keep is not None and hadm not in keep:
                continue
            order = 0 if row["DESCRIPTION"].strip() == "Report" else 1
            parts.setdefault(hadm, []).append((order, int(row["ROW_ID"]), row["TEXT"]))
        except (KeyError, ValueError) as e:
            raise DataFormatError(f"{path}, record {line}: expected MIMIC-III NOTEEVENTS columns ROW_ID, "
                                  f"HADM_ID, CATEGORY, DESCRIPTION, ISERROR, TEXT ({e})") from e
    return {h: " ".join(t for _, _, t in sorted(p)) for h, p in parts.items()}


def _diagnoses(path: Path) -> dict[int, set[str]]:
    codes: dict[int, set[str]] = {}
    for line, row in enumerate(_rows(path), start=2):
        try:
            if row["HADM_ID"].strip() and row["ICD9_CODE"].strip():
                codes.setdefault(int(float(row["HADM_ID"])), set()).add(format_icd9(row["ICD9_CODE"]))
        except (KeyError, ValueError) as e:
            raise DataFormatError(f"{path}, record {line}: expected MIMIC-III DIAGNOSES_ICD columns "
                                  f"HADM_ID, ICD9_CODE ({e})") from e
    return codes


def _split(hadm_ids, texts: dict[int, str], labels) -> Split:
    return Split(ids=[str(h) for h in hadm_ids], texts=[clean_mimic(texts[h]) for h in hadm_ids],
                 labels=np.asarray(labels, np.int32))


def load_mimic(task: str, path: str | os.PathLike | None = None) -> DatasetSplits:
    """Jain & Wallace's MIMIC-III ``"diabetes"`` or ``"anemia"`` task, cleaned, with splits.

    Args:
      task: ``"diabetes"`` or ``"anemia"``.
      path: a folder with ``NOTEEVENTS.csv[.gz]`` and ``DIAGNOSES_ICD.csv[.gz]`` (and, for
        Diabetes, CAML's ``{train,dev,test}_50_hadm_ids.csv``); default
        ``$SMAT_DATA_DIR/mimic-iii``.

    Returns:
      texts (cleaned, space-tokenised), labels, ids = HADM_IDs; ``meta["notes"]`` lists the
      deviations from the notebooks.

    Raises:
      DataUnavailableError: no local copy (there is no public one); FileNotFoundError;
      DataFormatError naming the file and record.
    """
    if task not in MIMIC_TASKS:
        raise ValueError(f"unknown MIMIC task {task!r}; known: {MIMIC_TASKS}")
    local = locate("mimic_iii", path)
    if local is None:
        from_remote("mimic_iii", None)  # raises, with the expected layout
    notes = ["MIMIC-III: a regular-expression tokenizer instead of spaCy in J&W's cleaner"]
    codes = _diagnoses(find_file(local, _CODES, "mimic_iii"))
    if task == "diabetes":
        split_ids = {}
        for split in ("train", "dev", "test"):
            file = local / f"{split}_50_hadm_ids.csv"
            if not file.exists():
                raise FileNotFoundError(f"mimic diabetes: {file} is missing (CAML's top-50 splits, "
                                        "github.com/jamesmullenbach/caml-mimic, mimicdata/mimic3)")
            split_ids[split] = [int(float(v)) for v in file.read_text(encoding="utf-8").split()]
        wanted = {h for ids in split_ids.values() for h in ids}
        texts = _discharge_summaries(find_file(local, _NOTES, "mimic_iii"), wanted)
        splits = {}
        for split, ids in split_ids.items():
            ids = [h for h in ids if h in texts]
            labels = [int(any(c.startswith("250.00") for c in codes.get(h, ()))) for h in ids]
            splits[split] = _split(ids, texts, labels)
        label_names = ("no diabetes (250.00)", "diabetes (250.00)")
    else:
        from sklearn.model_selection import train_test_split

        anemic = {h: c & {"285.1", "285.2"} for h, c in codes.items()}
        anemic = {h: "285.1" in c for h, c in anemic.items() if len(c) == 1}
        texts = _discharge_summaries(find_file(local, _NOTES, "mimic_iii"), set(anemic))
        ids = sorted(h for h in anemic if h in texts)
        labels = np.asarray([int(anemic[h]) for h in ids])
        rest, test = train_test_split(np.arange(len(ids)), test_size=0.2, stratify=labels, random_state=12939)
        train, dev = train_test_split(rest, test_size=0.15, stratify=labels[rest], random_state=13448)
        splits = {s: _split([ids[i] for i in idx], texts, labels[idx])
                  for s, idx in (("train", train), ("dev", dev), ("test", test))}
        notes.append("MIMIC Anemia: admissions ordered by HADM_ID before the stratified splits "
                     "(the notebooks' order is not reproducible): same proportions, possibly other admissions")
        label_names = ("chronic (285.2)", "acute posthemorrhagic (285.1)")
    return DatasetSplits(f"mimic_{task}", splits["train"], splits["dev"], splits["test"],
                         {"label_names": label_names, "task": "classification", "source": str(local),
                          "notes": notes, "verified": False})
