"""The Wiegreffe & Pinter experiment layer at smoke scale, its data protocols and resuming."""

import json

import numpy as np
import pytest

from experiments.wiegreffe_pinter import configs, run


def test_keras_tokens_follow_text_to_word_sequence():
    assert run.keras_tokens("Great movie!<br /><br />I'd SEE it again...") == "great movie i'd see it again"


def test_csv_datasets_load_with_or_without_a_split_column(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = ["text,label,exp_split"] + [f"good film number {i},{i % 2},{['train', 'dev', 'test'][i % 3]}"
                                        for i in range(30)]
    path.write_text("\n".join(rows) + "\n")
    splits, min_df, _ = run.load_splits(configs.get_config(str(path)))
    assert [len(splits[s][0]) for s in ("train", "dev", "test")] == [10, 10, 10] and min_df == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,y\nhello,1\n")
    with pytest.raises(ValueError, match="text,label"):
        run.load_splits(configs.get_config(str(bad)))
    with pytest.raises(ValueError, match="unknown dataset"):
        configs.get_config("mimic")


def test_sst_smoke_writes_table2_figures_and_resumes(tmp_path, shared_data, monkeypatch):
    if not (shared_data / "sst").exists():
        pytest.skip("../shared/data/sst is absent")
    monkeypatch.setenv("SMAT_DATA_DIR", str(shared_data))
    cfg = configs.get_config("sst:smoke", select_on="test")
    summary = run.main(["sst:smoke", "--select-on", "test", "--out", str(tmp_path), "--quiet"])
    out = tmp_path / cfg.name
    table = (out / "table.md").read_text()
    assert "| sst |" in table and "0.831" in table and "selected on the test set" in table
    saved = json.loads((out / "aggregate.json").read_text())
    assert 0.0 <= saved["table2"]["base"] <= 1.0 and len(saved["seeds"]["f1"]) == len(cfg.seeds)
    assert 0.0 <= saved["jw_adversary"]["mean_max_jsd_within"] <= np.log(2) + 1e-6
    assert set(saved["table3"]) == {"UNIFORM", "TRAINED MLP", "BASE LSTM", "ADVERSARY"}
    assert set(saved["table5"]) == {"0", "0.001"}  # lambda = 0 runs (the reference rejected it)
    assert all(0.0 <= v["jsd"] <= np.log(2) + 1e-6 and 0.0 <= v["tvd"] <= 0.5 for v in saved["table5"].values())
    assert "| Guide | ours | paper |" in table and "| λ | F1 | TVD | JSD |" in table
    for path in summary["figures"]:
        assert (tmp_path.parent / path).exists() or __import__("pathlib").Path(path).exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished model was trained again")

    monkeypatch.setattr(run, "train", no_training)
    again = run.main(["sst:smoke", "--select-on", "test", "--out", str(tmp_path), "--quiet"])
    assert again["table2"]["base"] == saved["table2"]["base"]
