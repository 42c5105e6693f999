"""The meta-gradient agreement diagnostic: its statistics on gradients of known structure, and a smoke run."""

import json

import numpy as np
import pytest

from experiments.smat import configs, diagnose


def test_identical_gradients_agree_fully_and_opposite_ones_cancel():
    g = np.random.default_rng(0).normal(size=50)
    same = diagnose.agreement(np.stack([g, g, g]))
    assert same["ratio"] == pytest.approx(1.0) and same["mean_cosine"] == pytest.approx(1.0)
    assert same["norm_spread"] == pytest.approx(1.0)
    assert same["significant"] == 50  # zero spread: every coordinate is infinitely many standard errors out
    opposite = diagnose.agreement(np.stack([g, -g]))
    assert opposite["ratio"] == pytest.approx(0.0, abs=1e-12) and opposite["mean_cosine"] == pytest.approx(-1.0)
    assert opposite["significant"] == 0
    with pytest.raises(ValueError, match="two"):
        diagnose.agreement(g[None])


def test_noise_sits_at_one_over_sqrt_k_and_a_shared_signal_above_it():
    rng = np.random.default_rng(1)
    k, p = 64, 4000
    noise = diagnose.agreement(rng.normal(size=(k, p)))
    assert noise["ratio"] == pytest.approx(noise["noise_ratio"], rel=0.05)
    assert abs(noise["mean_cosine"]) < 0.01
    # two-sided |t| > 2 with 63 degrees of freedom: 5.0 % of the coordinates (scipy: 2 * t.sf(2, 63))
    assert 0.035 * p < noise["significant"] < 0.065 * p
    # g_k = s + n_k with |s|^2 = |n_k|^2 in expectation: cosine between pairs -> 1/2, ratio -> sqrt((1 + 1/k) / 2)
    signal = rng.normal(size=p)
    mixed = diagnose.agreement(signal + rng.normal(size=(k, p)))
    assert mixed["mean_cosine"] == pytest.approx(0.5, abs=0.02)
    assert mixed["ratio"] == pytest.approx(np.sqrt((1 + 1 / k) / 2), rel=0.02)


def test_smoke_run_measures_at_the_start_and_after_an_epoch(tmp_path):
    cfg = configs.get_config("images:smoke")
    summary = diagnose.main(["images:smoke", "--out", str(tmp_path), "--quiet", "--batches", "3",
                             "--epochs", "0", "1", "--set", "smat.meta.meta_lr=1e-2"])
    name = f"{cfg.name}__meta_lr=1e-2__meta-gradients__seed0"
    assert summary["experiment"] == name
    saved = json.loads((tmp_path / name / "aggregate.json").read_text())
    first, second = saved["rows"]
    layers, heads = cfg.teacher_arch.num_layers, cfg.teacher_arch.num_heads
    assert first["coordinates"] == layers * heads and first["heads_kept"] == layers * heads  # uniform start
    assert (first["meta_steps"], second["meta_steps"]) == (0, -(-cfg.sizes[0] // cfg.smat.batch_size))
    for row in saved["rows"]:
        assert row["batches"] == 3 and 0.0 <= row["ratio"] <= 1.0 and np.isfinite(row["mean_norm"])
        assert row["mean_norm"] > 0
    with np.load(tmp_path / name / "meta_gradients.npz") as grads:
        assert sorted(grads.files) == ["epoch0", "epoch1"] and grads["epoch0"].shape == (3, layers * heads)
        stats = diagnose.agreement(grads["epoch1"])  # the report's row is computed from the saved gradients
        assert all(second[k] == pytest.approx(v) for k, v in stats.items())
    table = (tmp_path / name / "table.md").read_text()
    assert "| 0 | 0 |" in table and "noise level" in table
    # a student-side override shares the base experiment's teacher: no teacher in the variant's folder
    assert (tmp_path / cfg.name / "teacher.npz").exists() and not (tmp_path / name / "teacher.npz").exists()
