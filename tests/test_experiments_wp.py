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
    assert "OFFLINE SUBSTITUTION: fastText wiki.simple 300d" in table and "found in GloVe 6B 50d" in table
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


def test_guide_probe_measures_sharpness_and_polarity_by_hand():
    from experiments.wiegreffe_pinter.guide_probe import polarity_focus, sharpness, unigram_polarity

    attention = np.array([[0.0, 0.5, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.25, 0.25, 0.5]])
    s = sharpness(attention)
    # normalized entropies: ln2/ln2 = 1; one token -> 0 (divided by ln 2); (1.5 ln2) / ln 3
    assert s["max"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert s["norm_entropy"] == pytest.approx((1.0 + 0.0 + 1.5 * np.log(2) / np.log(3)) / 3)

    # vocabulary: 0 pad/special, 1 only in positives, 2 only in negatives, 3 in both
    ids = np.array([[0, 1, 3, 0], [0, 2, 3, 0], [0, 1, 3, 0]])
    support = ids > 0
    labels = np.array([1, 0, 1])
    pol = unigram_polarity(ids, labels, support, 4)
    # add-one counts: class 0 [1, 1, 2, 2] / 6, class 1 [1, 3, 1, 3] / 8
    p0, p1 = np.array([1, 1, 2, 2]) / 6, np.array([1, 3, 1, 3]) / 8
    np.testing.assert_allclose(pol, np.abs(np.log(p1) - np.log(p0)))

    guide = np.array([[0.0, 0.9, 0.1, 0.0], [0.0, 0.2, 0.8, 0.0], [0.0, 0.5, 0.5, 0.0]])
    focus = polarity_focus(guide, ids, pol)
    expected = np.mean([0.9 * pol[1] + 0.1 * pol[3], 0.2 * pol[2] + 0.8 * pol[3], 0.5 * pol[1] + 0.5 * pol[3]])
    assert focus["weighted_polarity"] == pytest.approx(expected)
    # top tokens 1 (most polar in row 0), 3 (row 1: is pol[3] the max? no, pol[2] is), 1 (argmax tie -> index 1)
    assert pol[1] > pol[3] and pol[2] > pol[3]
    assert focus["top_is_most_polar"] == pytest.approx(2 / 3)


def test_guide_probe_smoke_with_the_adversary_guide(tmp_path, shared_data, monkeypatch):
    if not (shared_data / "sst").exists():
        pytest.skip("../shared/data/sst is absent")
    from experiments.wiegreffe_pinter import guide_probe

    monkeypatch.setenv("SMAT_DATA_DIR", str(shared_data))
    summary = guide_probe.main(["sst:smoke", "--adversary", "--out", str(tmp_path), "--quiet"])
    assert set(summary["guided_mlp_f1"]) == {
        "uniform", "base, 2 epochs", "uniform in training, base at test", "base in training, uniform at test",
        "adversary (λ = 0.001)", "its own attention (TRAINED MLP)"}
    assert all(0.0 <= v["min"] <= v["median"] <= v["max"] <= 1.0 for v in summary["guided_mlp_f1"].values())
    assert 0.0 <= summary["adversary"]["mean_jsd"] <= np.log(2) + 1e-6
    focus = summary["polarity_focus"]
    assert all(0.0 <= v["top_is_most_polar"] <= 1.0 and v["weighted_polarity"] >= 0.0 for v in focus.values())
    name = configs.get_config("sst:smoke", select_on="test").name + "-guide-probe"
    table = (tmp_path / name / "table.md").read_text()
    assert "| guide | F1 |" in table and "The adversary (λ = 0.001, 2 epochs)" in table
