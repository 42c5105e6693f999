"""MIMIC-III Diabetes / Anemia from files in MIMIC's official csv layout.

MIMIC needs credentialed access, so these tests write a handful of records in its exact
column layout (a format fixture, not data) and check J&W's rules on them by hand.
"""

import csv
import gzip

import numpy as np
import pytest

from smat.data import DataUnavailableError, load_mimic
from smat.data.mimic import clean_mimic, format_icd9

NOTE_COLUMNS = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "CHARTDATE", "CHARTTIME", "STORETIME", "CATEGORY",
                "DESCRIPTION", "CGID", "ISERROR", "TEXT"]


def _write(path, columns, rows, compress=False):
    opener = gzip.open if compress else open
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(columns)
        writer.writerows(rows)


def _note(row_id, hadm, text, description="Report", category="Discharge summary", error=""):
    return [row_id, 7, hadm, "2150-01-01", "", "", category, description, "", error, text]


@pytest.fixture
def mimic_dir(tmp_path):
    notes = [
        _note(1, 100, "Pt has DM2, A1c 9.1.\n[**Hospital 12**] course..."),
        _note(2, 100, "Addendum: insulin 10 units.", description="Addendum"),
        _note(3, 100, "a nursing note, not a summary", category="Nursing"),
        _note(4, 101, "Admitted for GI bleed, hct 21!!"),
        _note(5, 102, "Chronic anemia of CKD."),
        _note(6, 103, "errored summary", error="1"),
        _note(7, 103, "Both anemias listed."),
    ]
    notes += [_note(10 + i, 200 + i, f"filler summary number {i} with anemia") for i in range(20)]
    _write(tmp_path / "NOTEEVENTS.csv.gz", NOTE_COLUMNS, notes, compress=True)
    codes = [(100, "25000"), (100, "4019"), (101, "2851"), (102, "2852"), (103, "2851"), (103, "2852")]
    codes += [(200 + i, "2851" if i % 4 else "2852") for i in range(20)]
    _write(tmp_path / "DIAGNOSES_ICD.csv", ["ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"],
           [[i, 7, h, 1, c] for i, (h, c) in enumerate(codes)])
    for split, ids in {"train": [100, 101], "dev": [102], "test": [103, 999]}.items():
        (tmp_path / f"{split}_50_hadm_ids.csv").write_text("".join(f"{h}\n" for h in ids))
    return tmp_path


def test_cleaning_and_codes_follow_jain_wallace_and_caml():
    assert clean_mimic("Pt's BP  120/80!!! [**Name (NI) 123**] seen on [** 2150-1-1 **].") == (
        "pt's bp qqq / qqq ! <DE> seen on <DE> .")
    assert clean_mimic("x ... y ,, z") == "x . y , z"
    assert [format_icd9(c) for c in ("25000", "2851", "E8497", "V1582", "401")] == [
        "250.00", "285.1", "E849.7", "V15.82", "401"]


def test_diabetes_uses_the_caml_splits_and_the_250_00_rule(mimic_dir):
    data = load_mimic("diabetes", mimic_dir)
    assert list(data.train.ids) == ["100", "101"] and list(data.dev.ids) == ["102"]
    assert list(data.test.ids) == ["103"]  # 999 has no discharge summary; the errored note is skipped
    np.testing.assert_array_equal(data.train.labels, [1, 0])
    # the report, then its addendum; the nursing note is not a discharge summary
    assert data.train.texts[0] == ("pt has qqq , qqq qqq . <DE> course . addendum : insulin qqq units .")
    assert data.test.texts[0] == "both anemias listed ."


def test_anemia_keeps_exactly_one_code_with_285_1_positive_and_stratified_splits(mimic_dir):
    data = load_mimic("anemia", mimic_dir)
    ids = [int(h) for _, split in data.items() for h in split.ids]
    assert 103 not in ids and 100 not in ids  # both codes / neither code
    assert sorted(ids) == sorted([101, 102] + [200 + i for i in range(20)])
    labels = {int(h): int(y) for _, s in data.items() for h, y in zip(s.ids, s.labels)}
    assert labels[101] == 1 and labels[102] == 0  # 285.1 = acute = positive, as the released code
    assert len(data.test) == 5 and len(data.dev) == 3 and len(data.train) == 14  # 20%, then 15% of the rest
    assert data.test.labels.sum() == 4  # stratified: 17 positives of 22


def test_without_a_copy_the_error_names_physionet(monkeypatch, tmp_path):
    monkeypatch.setenv("SMAT_DATA_DIR", str(tmp_path))
    with pytest.raises(DataUnavailableError, match="physionet"):
        load_mimic("anemia")
    with pytest.raises(ValueError, match="unknown MIMIC task"):
        load_mimic("sepsis")


def test_wiegreffe_pinter_reads_mimic_with_its_filters(mimic_dir, monkeypatch, tmp_path):
    from experiments.wiegreffe_pinter.configs import get_config
    from experiments.wiegreffe_pinter.run import load_splits

    root = tmp_path / "data"
    root.mkdir()
    (root / "mimic-iii").symlink_to(mimic_dir)
    monkeypatch.setenv("SMAT_DATA_DIR", str(root))
    cfg = get_config("diabetes:smoke")
    splits, min_df, notes = load_splits(cfg)
    assert min_df == 5 and get_config("diabetes").lambda_grid()[:2] == (0.0, 1e-5)  # W&P's Diabetes grid
    # Diabetes keeps 6 < tokens < 4000: admission 101's 8 tokens pass, 103's 4 do not
    assert [len(t.split()) for t in splits["train"][0]] == [16, 8] and splits["test"][0] == []
    assert any("regular-expression tokenizer" in n for n in notes)
