"""The SMaT experiment layer at smoke scale: every file of the report, and resuming."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.smat import configs, run


def _check_report(out, cfg):
    table = (out / "table.md").read_text()
    for row in cfg.rows:
        assert f"| {row} |" in table
    summary = json.loads((out / "aggregate.json").read_text())
    assert summary["machine"] and summary["date"] and summary["notes"]
    for row in cfg.rows:
        cell = summary["aggregate"][row][str(cfg.sizes[0])]
        assert 0.0 <= cell["median"] <= 1.0 and len(cell["values"]) == len(cfg.seeds)
    assert len(list((out / "runs").glob("*.json"))) == len(cfg.rows) * len(cfg.sizes) * len(cfg.seeds)
    assert not list((out / "checkpoints").glob("*.npz"))  # finished runs leave no checkpoint behind
    for path in summary["figures"]:
        assert (out.parent / path).exists() or __import__("pathlib").Path(path).exists()
    return summary


def test_images_smoke_writes_the_report_and_resumes(tmp_path, monkeypatch):
    cfg = configs.get_config("images:smoke")
    out = tmp_path / cfg.name
    # A student-side variant (--set) run first: it builds the base experiment's teacher and a cache
    # holding only what its rows need, in the base folder, and writes its own report folder.
    summary = run.main(["images:smoke", "--out", str(tmp_path), "--quiet", "--set", "smat.meta.meta_lr=1e-2",
                        "--set", "rows=('No explainer', 'Attention (SMaT)')"])
    variant = tmp_path / f"{cfg.name}__meta_lr=1e-2__rows=No-explainer-Attention-SMaT"
    assert summary["experiment"] == variant.name and "meta_lr=0.01" in summary["config"]
    assert sorted(p.name for p in (variant / "runs").glob("*.json")) == [
        "attention-smat__n32__seed0.json", "no-explainer__n32__seed0.json"]
    assert not list(variant.glob("*.npz")), "the variant must use the base experiment's teacher and cache"
    assert "validation split" in (variant / "table.md").read_text()
    with np.load(out / "cache_test.npz") as cache:
        assert "teacher_head_scores" in cache.files
        assert not any(k.startswith("teacher_explanation/gradient") or k.endswith("integrated_gradients")
                       for k in cache.files)  # no gradient rows asked for
    teacher = (out / "teacher.npz").stat().st_mtime_ns

    # The full table: the same teacher, its cache extended with the gradient explainers.
    run.main(["images:smoke", "--out", str(tmp_path), "--quiet"])
    summary = _check_report(out, cfg)
    assert (out / "teacher.npz").stat().st_mtime_ns == teacher
    # a static row does not read the meta lr: the variant's no-explainer run served the full table
    reused = json.loads((out / "runs" / "no-explainer__n32__seed0.json").read_text())
    assert reused["reused_from"] == variant.name
    assert reused["fingerprint"] == run.run_fingerprint(cfg, "No explainer", 32, 0, "sparsemax")
    with np.load(out / "cache_test.npz") as cache:
        assert {f"teacher_explanation/{n}" for n in ("gradient_l2", "gradient_x_input", "integrated_gradients")} \
            <= set(cache.files)
    assert any("Fashion-MNIST" in n or "digits" in n for n in summary["notes"])
    smat_run = json.loads(next((out / "runs").glob("attention-smat__*.json")).read_text())
    fresh_run = json.loads(next((out / "runs").glob("attention-smat-frozen*.json")).read_text())
    np.testing.assert_allclose(fresh_run["teacher_expl_params"]["head_coeffs"],
                               smat_run["teacher_expl_params"]["head_coeffs"])  # the learned phi_T, frozen
    # the student's own explainer coefficients phi_S (trained in the inner loop) are kept too
    phi_s = np.asarray(smat_run["student_expl_params"]["head_coeffs"])
    assert phi_s.shape == (16,) and not np.allclose(phi_s, 1 / 16)
    stamps = {p: p.stat().st_mtime_ns for p in [*(out / "runs").glob("*.json"), *out.glob("*.npz")]}

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(run.smat, "train_explainer", no_training)
    monkeypatch.setattr(run.smat, "train_student", no_training)
    run.main(["images:smoke", "--out", str(tmp_path), "--quiet"])  # everything cached: teacher, cache, runs
    # a run recorded with the legacy fingerprint (meta-only settings included) is reused too
    faster = dataclasses.replace(cfg, smat=dataclasses.replace(cfg.smat, meta=dataclasses.replace(
        cfg.smat.meta, meta_lr=1e-2)))
    old = variant / "runs" / "no-explainer__n32__seed0.json"
    old.write_text(json.dumps(json.loads(old.read_text()) | {
        "fingerprint": run.run_fingerprint(faster, "No explainer", 32, 0, "sparsemax", legacy=True)}))
    run.main(["images:smoke", "--out", str(tmp_path), "--quiet", "--set", "smat.meta.meta_lr=1e-2",
              "--set", "rows=('No explainer', 'Attention (SMaT)')"])
    assert stamps == {p: p.stat().st_mtime_ns for p in [*(out / "runs").glob("*.json"), *out.glob("*.npz")]}

    # Every record names the teacher it was trained from (one teacher here).
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert len({r["teacher"] for r in records}) == 1 and len(records[0]["teacher"]) == 16

    # A run stored under other settings (its fingerprint differs) is trained again, not reused,
    # and so is one trained from another teacher (e.g. committed from other hardware).
    stale = out / "runs" / "no-explainer__n32__seed0.json"
    recorded = stale.read_text()
    for change in ({"fingerprint": "other-settings"}, {"teacher": "0" * 16}):
        stale.write_text(json.dumps(json.loads(recorded) | change))
        with pytest.raises(AssertionError, match="trained again"):
            run.main(["images:smoke", "--out", str(tmp_path), "--quiet"])


def test_images_with_a_vit_checkpoint_and_cifar100_run_the_papers_path(tmp_path, monkeypatch):
    """Where the checkpoint and CIFAR-100 both load, Table 3 runs as the paper's: no substitution,
    100 fine labels, 32-pixel images resized to the checkpoint's size in the step. Here a tiny random
    HF ``ViTModel`` at 48 pixels (3 x 3 patches), found under the paper's hub name in
    ``$SMAT_MODEL_DIR``, and CIFAR-layout random images stand in for both."""
    transformers = pytest.importorskip("transformers")
    import smat.data
    from smat.data.batching import normalize_images
    from smat.data.splits import DatasetSplits, Split

    paper = configs.get_config("images")
    checkpoint = tmp_path / "models" / paper.teacher
    transformers.ViTModel(transformers.ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=48,
        patch_size=16)).save_pretrained(checkpoint)
    (checkpoint / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.4] * 3, "image_std": [0.3] * 3}))
    monkeypatch.setenv("SMAT_MODEL_DIR", str(tmp_path / "models"))
    rng = np.random.default_rng(0)

    def split(n):
        return Split(ids=[str(i) for i in range(n)], images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                     labels=rng.integers(0, 100, n).astype(np.int32))

    cifar = DatasetSplits("cifar100", split(160), None, split(24),
                          {"label_names": tuple(f"c{i}" for i in range(100)), "task": "classification",
                           "source": "test"})
    monkeypatch.setattr(smat.data, "load_cifar100", lambda *args, **kwargs: cifar)
    cfg = dataclasses.replace(
        paper, name="cifar-tiny", pool=(32, 16, 16), sizes=(16,), seeds=(0,), figure_examples=2,
        teacher_train=dataclasses.replace(paper.teacher_train, max_epochs=2),
        rows=("No explainer", "Gradient x Input", "Attention (all layers)", "Attention (SMaT)"),
        smat=dataclasses.replace(paper.smat, batch_size=8, max_epochs=1, patience=1))
    summary = run.run_experiment(cfg, tmp_path, progress=False)
    out = tmp_path / cfg.name
    _check_report(out, cfg)
    notes = " ".join(summary["notes"])
    assert "OFFLINE SUBSTITUTION" not in notes and "CIFAR-100" in notes and "32 -> 48 px" in notes
    assert "after 2 epoch(s) on 144 examples" in notes  # 160 train images, the last 10% held out
    # The splits as the reference's: teacher train / valid from one seed-0 shuffle of train, the
    # student pool from the teacher's train images, test the official one; the checkpoint's mean / std.
    order = np.random.default_rng(0).permutation(160)
    expected = {"pool": cifar.train.images[order[:32]], "valid": cifar.train.images[order[144:]],
                "test": cifar.test.images[:16]}
    for name, images in expected.items():
        with np.load(out / f"cache_{name}.npz") as cache:
            np.testing.assert_array_equal(cache["pixel_values"], normalize_images(images, 0.4, 0.3))
            assert cache["attention_mask"].shape == (len(images), 10)  # 1 + 3 x 3 tokens: resized
            assert cache["teacher_head_scores"].shape == (len(images), 2, 4, 10)  # layers, heads, tokens
            assert cache["teacher_explanation/gradient_x_input"].shape == (len(images), 10)
            assert cache["teacher_outputs"].shape[-1] == 100
    for record in (out / "runs").glob("*.json"):
        history = json.loads(record.read_text())["history"]
        assert all(np.isfinite(h["sim_loss"]) and np.isfinite(h["valid_sim_loss"]) for h in history)


def test_run_fingerprints_follow_the_settings_not_the_table_layout():
    cfg = configs.get_config("images:smoke")
    key = run.run_fingerprint(cfg, "Attention (SMaT)", 32, 0, "sparsemax")
    same = dataclasses.replace(cfg, name="other", sizes=(32, 64), seeds=(0, 9), rows=("Attention (SMaT)",))
    assert run.run_fingerprint(same, "Attention (SMaT)", 32, 0, "sparsemax") == key
    faster = dataclasses.replace(cfg, smat=dataclasses.replace(cfg.smat, meta=dataclasses.replace(
        cfg.smat.meta, meta_lr=1e-2)))
    assert run.run_fingerprint(faster, "Attention (SMaT)", 32, 0, "sparsemax") != key
    assert run.run_fingerprint(faster, "Attention (SMaT, frozen, fresh student)", 32, 0, "sparsemax") != \
        run.run_fingerprint(cfg, "Attention (SMaT, frozen, fresh student)", 32, 0, "sparsemax")
    # rows without a meta step ignore the meta-only settings; their legacy fingerprint did not
    for row in ("No explainer", "Gradient L2", "Attention (all layers)", "Attention (last layer)"):
        assert run.run_fingerprint(faster, row, 32, 0, "sparsemax") == run.run_fingerprint(cfg, row, 32, 0, "sparsemax")
        assert run.run_fingerprint(faster, row, 32, 0, "sparsemax", legacy=True) != \
            run.run_fingerprint(cfg, row, 32, 0, "sparsemax", legacy=True)
        assert run._accepted(faster, row, 32, 0, "sparsemax") == (
            run.run_fingerprint(faster, row, 32, 0, "sparsemax"),
            run.run_fingerprint(faster, row, 32, 0, "sparsemax", legacy=True))
    slower_inner = dataclasses.replace(cfg, smat=dataclasses.replace(cfg.smat, meta=dataclasses.replace(
        cfg.smat.meta, inner_lr=1e-1)))  # the students' own SGD lr counts for every row
    assert run.run_fingerprint(slower_inner, "No explainer", 32, 0, "sparsemax") != \
        run.run_fingerprint(cfg, "No explainer", 32, 0, "sparsemax")
    # student_head is not in the config's repr (committed runs keep their fingerprints) but counts when set
    assert run.run_fingerprint(dataclasses.replace(cfg, student_head="paper"), "Attention (SMaT)", 32, 0,
                               "sparsemax") == key
    assert run.run_fingerprint(dataclasses.replace(cfg, student_head="linear"), "Attention (SMaT)", 32, 0,
                               "sparsemax") != key
    with pytest.raises(ValueError, match="student_head"):
        dataclasses.replace(cfg, student_head="mlp")
    assert len({run.run_fingerprint(cfg, *args) for args in [("Attention (SMaT)", 32, 0, "sparsemax"),
                                                             ("No explainer", 32, 0, "sparsemax"),
                                                             ("Attention (SMaT)", 64, 0, "sparsemax"),
                                                             ("Attention (SMaT)", 32, 9, "sparsemax"),
                                                             ("Attention (SMaT)", 32, 0, "softmax")]}) == 5


def test_finished_runs_are_found_in_other_experiments_by_fingerprint_only(tmp_path):
    row, key = "Attention (SMaT)", "f" * 16
    record = {"row": row, "n": 32, "seed": 1, "normalizer": "sparsemax", "fingerprint": key, "metrics": {}}

    def put(folder, name, **changes):
        (tmp_path / folder / "runs").mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "runs" / name).write_text(json.dumps(record | changes))

    ours = tmp_path / "ours"
    put("ours", "attention-smat__n32__seed1.json")  # our own folder is not "elsewhere"
    put("a", "attention-smat__n32__seed11.json", seed=11)  # the glob also matches seed 11
    put("b", "attention-smat__n32__seed1__softmax.json", normalizer="softmax")
    put("c", "attention-smat__n32__seed1.json", fingerprint="0" * 16)
    assert run._finished_elsewhere(ours, row, 32, 1, "sparsemax", (key,)) is None
    # a record under an accepted legacy fingerprint is found and carries the current one
    found = run._finished_elsewhere(ours, row, 32, 1, "sparsemax", (key, "0" * 16))
    assert found["reused_from"] == "c" and found["fingerprint"] == key
    put("d", "attention-smat__n32__seed1__sparsemax.json")
    found = run._finished_elsewhere(ours, row, 32, 1, "sparsemax", (key,))
    assert found["reused_from"] == "d" and found["fingerprint"] == key


def test_finished_runs_are_reused_only_under_the_teacher_they_were_trained_from(tmp_path):
    row, key, teacher = "No explainer", "f" * 16, "a" * 16
    folder = tmp_path / "other" / "runs"
    folder.mkdir(parents=True)
    record = {"row": row, "n": 32, "seed": 1, "normalizer": "sparsemax", "fingerprint": key, "teacher": teacher}
    (folder / "no-explainer__n32__seed1.json").write_text(json.dumps(record))
    ours = tmp_path / "ours"
    assert run._finished_elsewhere(ours, row, 32, 1, "sparsemax", (key,), "b" * 16) is None
    assert run._finished_elsewhere(ours, row, 32, 1, "sparsemax", (key,), teacher)["teacher"] == teacher
    # a record from before runs carried a digest was trained from the stored teacher: accepted, stamped
    del record["teacher"]
    (folder / "no-explainer__n32__seed1.json").write_text(json.dumps(record))
    assert run._finished_elsewhere(ours, row, 32, 1, "sparsemax", (key,), "b" * 16)["teacher"] == "b" * 16


def test_teacher_digest_changes_with_any_bit_of_the_weights():
    params = {"encoder": {"w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)}, "b": np.zeros(2, np.float32)}
    digest = run.teacher_digest(params)
    assert len(digest) == 16 and run.teacher_digest(jax.tree.map(np.copy, params)) == digest
    assert run.teacher_digest(jax.tree.map(jnp.asarray, params)) == digest  # device arrays: same bytes
    nudged = np.array(params["encoder"]["w"])
    nudged[1, 2] = np.nextafter(nudged[1, 2], np.float32(2))  # one ulp
    assert run.teacher_digest({**params, "encoder": {"w": nudged}}) != digest
    assert run.teacher_digest({**params, "encoder": {"v": params["encoder"]["w"]}}) != digest  # renamed leaf
    assert run.teacher_digest({**params, "b": params["b"].astype(np.float16)}) != digest
    assert run.teacher_digest({**params, "b": np.zeros((1, 2), np.float32)}) != digest  # same bytes, other shape


def test_runs_stuck_at_the_majority_class_are_named_in_the_notes():
    logits = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])  # teacher: class 0 on 3 of 4
    task = run.Task(None, None, None, None, {"valid": {"teacher_outputs": logits}}, [], {}, None)
    stuck = {"row": "No explainer", "n": 8, "seed": 9, "history": [{"valid_simulability": 0.75}] * 3}
    learned = {"row": "Attention (SMaT)", "n": 8, "seed": 9,
               "history": [{"valid_simulability": 0.75}, {"valid_simulability": 1.0}]}
    (note,) = run._one_class_runs(task, [stuck, learned], regression=False)
    assert note.startswith("1 of 2 runs") and "(0.750)" in note and "No explainer (N = 8, seed 9)" in note
    assert run._one_class_runs(task, [learned], regression=False) == []
    assert run._one_class_runs(task, [stuck], regression=True) == []


def test_imdb_smoke_substitutes_minilm_and_says_so(tmp_path, shared_data, monkeypatch):
    if not (shared_data / "imdb").exists():
        pytest.skip("../shared/data/imdb is absent")
    monkeypatch.setenv("SMAT_DATA_DIR", str(shared_data))
    cfg = configs.get_config("imdb:smoke")
    run.main(["imdb:smoke", "--out", str(tmp_path), "--quiet"])
    summary = _check_report(tmp_path / cfg.name, cfg)
    assert any("OFFLINE SUBSTITUTION" in n and "all-MiniLM-L6-v2" in n for n in summary["notes"])
    assert (tmp_path / cfg.name / "explanations.html").exists()

    # Table 2 reuses this experiment's teacher and SMaT run: nothing is trained again.
    def no_training(*args, **kwargs):
        raise AssertionError("plausibility retrained a finished run")

    monkeypatch.setattr(run.smat, "train_explainer", no_training)
    _check_plausibility(tmp_path, "movies:smoke", columns=["AUC"])
    # A --set variant scores fewer documents under its own name, from the same source runs.
    summary = _check_plausibility(tmp_path, "movies:smoke", columns=["AUC"],
                                  overrides=["max_examples=12", "seeds=(0,)"])
    assert summary["counts"]["AUC"] <= 12 and summary["median_run"] == {"seed": 0, "n": 16}


def _check_plausibility(root, arg, columns, overrides=()):
    from experiments.common import override_suffix
    from experiments.smat import plausibility

    cfg = configs.get_plausibility_config(arg)
    plausibility.main([arg, "--out", str(root), "--quiet", *(x for o in overrides for x in ("--set", o))])
    out = root / (cfg.name + (override_suffix(overrides) if overrides else ""))
    summary = json.loads((out / "aggregate.json").read_text())
    table = summary["table"]
    assert set(table) == set(configs.PLAUSIBILITY_ROWS)
    for column in columns:
        assert summary["counts"][column] > 0
        assert all(0.0 <= table[row][column] <= 1.0 for row in table)
        # The best layer is chosen among all layers, the last one included.
        assert table["Attention (best layer)*"][column] >= table["Attention (last layer)"][column]
    assert (out / "auc_per_head.png").exists() and "| Attention (SMaT) |" in (out / "table.md").read_text()
    return summary


def test_unknown_experiment_and_rows_are_refused():
    with pytest.raises(ValueError, match="unknown SMaT experiment"):
        configs.get_config("cifar")
    with pytest.raises(ValueError, match="unknown rows"):
        configs.ExperimentConfig(name="x", task="images", teacher="scratch", rows=("Attention (best)",))


def test_normalizers_mlqe_and_plausibility_smoke_share_one_teacher(tmp_path, shared_data, monkeypatch):
    """Table 7, then Table 5 and Table 6 from the same teacher and runs (one MLQE teacher for the three)."""
    if not (shared_data / "mlqe-pe").exists():
        pytest.skip("../shared/data/mlqe-pe is absent")
    monkeypatch.setenv("SMAT_DATA_DIR", str(shared_data))
    cfg = configs.get_config("normalizers:smoke")
    run.main(["normalizers:smoke", "--out", str(tmp_path), "--quiet"])
    out = tmp_path / cfg.name
    table = (out / "table.md").read_text()
    assert "Pearson r" in table and "| sparsemax | softmax |" in table
    summary = json.loads((out / "aggregate.json").read_text())
    cells = summary["aggregate"]["No explainer"]
    assert set(cells) == {"sparsemax", "softmax"}
    # beta = 0: the normalizer cannot change the no-explainer student (Table 7's constant row),
    # so it is trained once and its run fills every normalizer's column
    assert cells["sparsemax"]["values"] == cells["softmax"]["values"]
    assert [p.name for p in (out / "runs").glob("no-explainer*.json")] == ["no-explainer__n16__seed0__sparsemax.json"]
    assert all(-1.0 <= c["median"] <= 1.0 for row in summary["aggregate"].values() for c in row.values())
    assert len(list((out / "runs").glob("*.json"))) == (len(cfg.rows) - 1) * len(cfg.normalizers) + 1
    # the mlqe table's teacher and cache are reused, not trained again under the normalizers' name
    assert (tmp_path / "smat-mlqe-smoke" / "teacher.npz").exists() and not (out / "teacher.npz").exists()
    assert any("shared with `smat-mlqe-smoke`" in n for n in summary["notes"])
    # the mlqe table's sparsemax runs are the normalizers table's sparsemax column: found by
    # fingerprint and reused, not trained again (a changed setting would change the fingerprint)
    mlqe = configs.get_config("mlqe:smoke")
    run.main(["mlqe:smoke", "--out", str(tmp_path), "--quiet"])
    for row in mlqe.rows:
        theirs = json.loads((out / "runs" / f"{run._slug(row)}__n16__seed0__sparsemax.json").read_text())
        ours = json.loads((tmp_path / mlqe.name / "runs" / f"{run._slug(row)}__n16__seed0.json").read_text())
        assert ours["reused_from"] == cfg.name and ours["metrics"] == theirs["metrics"] and ours["column"] == 16
    run.main(["mlqe:smoke", "--out", str(tmp_path), "--quiet", "--set", "smat.meta.meta_lr=1e-3",
              "--set", "rows=('Attention (SMaT)',)"])
    retrained = json.loads(next((tmp_path / f"{mlqe.name}__meta_lr=1e-3__rows=Attention-SMaT").glob("runs/*.json")).read_text())
    assert "reused_from" not in retrained
    # Another student head is a student-side variant: the same teacher, a new run, said in the notes.
    run.main(["mlqe:smoke", "--out", str(tmp_path), "--quiet", "--set", "student_head=linear",
              "--set", "rows=('No explainer',)"])
    variant = tmp_path / f"{mlqe.name}__student_head=linear__rows=No-explainer"
    summary = json.loads((variant / "aggregate.json").read_text())
    assert any("one dense layer as the head" in n for n in summary["notes"]) and not (variant / "teacher.npz").exists()
    assert "reused_from" not in json.loads((variant / "runs" / "no-explainer__n16__seed0.json").read_text())

    # Table 6 scores source and target words with the mlqe table's teacher and SMaT run: nothing is trained.
    def no_training(*args, **kwargs):
        raise AssertionError("plausibility retrained a finished run")

    monkeypatch.setattr(run.smat, "train_explainer", no_training)
    summary = _check_plausibility(tmp_path, "mlqe:smoke", columns=["overall src", "overall tgt"])
    assert any("segment pairs dropped" in n for n in summary["notes"])


def test_settings_added_later_keep_the_recorded_fingerprints():
    # MetaConfig.warmup_steps / valid_batches came after runs were recorded: at their defaults
    # the fingerprint is computed from the config's repr as it was before them.
    for name in ("imdb", "imdb:cpu", "images", "images:demo", "images:smoke", "mlqe:cpu", "normalizers:cpu"):
        cfg = configs.get_config(name)
        assert "warmup_steps=0, valid_batches=1" in repr(cfg)
        assert run.canonical_repr(cfg) == repr(cfg).replace(", warmup_steps=0, valid_batches=1", "")
    cfg = configs.get_config("images:smoke")
    for field, value in (("warmup_steps", 32), ("valid_batches", 4)):
        changed = dataclasses.replace(cfg, smat=dataclasses.replace(cfg.smat, meta=dataclasses.replace(
            cfg.smat.meta, **{field: value})))
        assert f"{field}={value}" in run.canonical_repr(changed)
        for row in ("Attention (SMaT)", "Attention (SMaT, frozen, fresh student)"):
            assert run.run_fingerprint(changed, row, 32, 0, "sparsemax") != \
                run.run_fingerprint(cfg, row, 32, 0, "sparsemax")
        assert run.run_fingerprint(changed, "Attention (all layers)", 32, 0, "sparsemax") == \
            run.run_fingerprint(cfg, "Attention (all layers)", 32, 0, "sparsemax")
