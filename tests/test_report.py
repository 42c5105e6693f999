"""Tests for the SMaT reporting layer: tables against hand-computed quartiles, figures read back."""

import json

import numpy as np
import pytest
from matplotlib.image import imread

from experiments.smat import report


def _runs(row, n, values, metric="accuracy"):
    return [{"row": row, "n": n, "seed": s, "metrics": {metric: v}} for s, v in enumerate(values)]


def _cell_of(table, row, col_index):
    line = next(line for line in table.splitlines() if line.startswith(f"| {row} |"))
    return [c.strip() for c in line.strip("|").split("|")][col_index]


def test_aggregate_matches_hand_computed_quartiles():
    agg = report.aggregate(_runs("SMaT", 500, [0.80, 0.82, 0.81, 0.90, 0.85]), "accuracy")
    cell = agg["SMaT"][500]
    # sorted 0.80 0.81 0.82 0.85 0.90: positions 1, 2, 3 of 0..4 are exact order statistics
    assert cell["median"] == pytest.approx(0.82)
    assert cell["q25"] == pytest.approx(0.81)
    assert cell["q75"] == pytest.approx(0.85)
    assert cell["values"] == [0.80, 0.81, 0.82, 0.85, 0.90]
    assert cell["seeds"] == [0, 1, 2, 3, 4]
    assert cell["by_seed"] == {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.90, 4: 0.85}  # values sorted, seeds not
    # even count: linear interpolation, q25 at position 0.75 and q75 at 2.25 of [1, 2, 3, 4]
    four = report.aggregate(_runs("a", 1, [4.0, 1.0, 3.0, 2.0]), "accuracy")["a"][1]
    assert (four["q25"], four["median"], four["q75"]) == pytest.approx((1.75, 2.5, 3.25))


def test_aggregate_keeps_first_seen_order_and_rejects_missing_metric():
    runs = _runs("b", 2000, [1.0]) + _runs("a", 500, [1.0]) + _runs("b", 500, [1.0])
    agg = report.aggregate(runs, "accuracy")
    assert list(agg) == ["b", "a"] and list(agg["b"]) == [2000, 500]
    with pytest.raises(KeyError, match="pearson"):
        report.aggregate(runs, "pearson")


def test_markdown_table_underlines_only_non_overlapping_iqr():
    base = [0.80, 0.81, 0.82, 0.83, 0.84]  # q75 = 0.83
    runs = (
        _runs("No explainer", 500, base)
        + _runs("Above", 500, [0.84, 0.845, 0.9, 0.91, 0.92])  # q25 = 0.845 > 0.83
        + _runs("Touching", 500, [0.83, 0.83, 0.9, 0.91, 0.92])  # q25 = 0.83 == 0.83
        + _runs("Overlapping", 500, [0.82, 0.825, 0.9, 0.91, 0.92])  # q25 = 0.825 < 0.83
    )
    table = report.markdown_table(report.aggregate(runs, "accuracy"))
    assert _cell_of(table, "Above", 1) == "<u>90.00 [84.50:91.00]</u>"
    assert _cell_of(table, "No explainer", 1) == "82.00 [81.00:83.00]"
    assert "<u>" not in _cell_of(table, "Touching", 1)
    assert "<u>" not in _cell_of(table, "Overlapping", 1)
    assert table.count("<u>") == 1


def test_markdown_table_paper_columns_missing_cells_and_pearson_format():
    runs = _runs("No explainer", 2100, [0.74, 0.75, 0.76], "pearson") + _runs("SMaT", 2100, [0.8, 0.81, 0.82], "pearson")
    runs += _runs("No explainer", 4200, [0.77, 0.78, 0.79], "pearson")
    paper = {"No explainer": {2100: ".7457 [.7366:.7528]", "4200": 0.7719}}
    table = report.markdown_table(report.aggregate(runs, "pearson"), scale=1.0, digits=4, paper=paper, title="Table 5")
    lines = table.splitlines()
    assert lines[0] == "**Table 5**"
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    assert header == ["", "2,100", "paper", "4,200", "paper"]
    assert _cell_of(table, "No explainer", 1) == "0.7500 [0.7450:0.7550]"
    assert _cell_of(table, "No explainer", 2) == ".7457 [.7366:.7528]"
    assert _cell_of(table, "No explainer", 4) == "0.7719"  # str key "4200" found for int column
    assert _cell_of(table, "SMaT", 1).startswith("<u>0.8100")
    assert _cell_of(table, "SMaT", 2) == "–"  # no paper value
    assert _cell_of(table, "SMaT", 3) == "–"  # no run of ours
    assert "Seeds per cell" not in table  # 3 seeds everywhere


def test_markdown_table_notes_uneven_seed_counts_and_unknown_rows():
    runs = _runs("No explainer", 500, [0.8] * 5) + _runs("SMaT", 500, [0.9] * 3)
    table = report.markdown_table(report.aggregate(runs, "accuracy"), rows=["No explainer", "SMaT", "Ghost"])
    assert _cell_of(table, "Ghost", 1) == "–"
    assert table.rstrip().splitlines()[-1] == "Seeds per cell: 5, except SMaT @ 500: 3."


def test_head_heatmap_writes_readable_png(tmp_path):
    coeffs = np.random.default_rng(0).dirichlet(np.ones(48)).reshape(12, 4)
    path = report.head_heatmap(coeffs, tmp_path / "figs" / "heads.png", title="IMDB")
    image = imread(path)
    assert image.shape[0] >= 250 and image.shape[1] >= 250 and image.std() > 0
    two = report.head_heatmap({"IMDB": coeffs, "CIFAR-100": coeffs[::-1]}, tmp_path / "two.png")
    assert imread(two).shape[1] > image.shape[1]  # side-by-side panels are wider
    with pytest.raises(ValueError, match="layers, heads"):
        report.head_heatmap(np.ones(4), tmp_path / "bad.png")


def test_patch_grid_matches_loop_oracle():
    scores = np.arange(2 * 7, dtype=np.float64).reshape(2, 7)  # CLS + 2x3 patches
    grid = report.patch_grid(scores, 4, 6, 2)
    for n in range(2):
        for y in range(4):
            for x in range(6):
                assert grid[n, y, x] == scores[n, 1 + (y // 2) * 3 + x // 2]


def test_image_overlay_png_and_token_count_check(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    expl = {"Attn. (all layers)": rng.random((2, 17)), "Attn. (SMaT)": rng.random((2, 17))}
    path = report.image_overlay(images, expl, tmp_path / "overlay.png", patch_size=8, names=["cat", "dog"])
    image = imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 450 and image.std() > 0
    gray = report.image_overlay(rng.random((1, 32, 32)), {"IG": rng.random((1, 17))}, tmp_path / "g.png", patch_size=8)
    assert imread(gray).shape[0] >= 150
    with pytest.raises(ValueError, match="patch grid"):
        report.image_overlay(images, {"bad": rng.random((2, 16))}, tmp_path / "bad.png", patch_size=8)


def test_token_heatmap_html_escapes_drops_specials_and_joins_pieces(tmp_path):
    tokens = ["[CLS]", "a", "<script>", "s", "##nor", "##efe", "[SEP]"]
    examples = [
        {"tokens": tokens, "explanations": {"grad": np.arange(7.0), "SMaT": np.ones(7)}, "label": "neg"},
        {"tokens": ["[CLS]", "ok", "[SEP]"], "explanations": {"grad": [0.0, 1.0, 0.0]}},
    ]
    page = report.token_heatmap_html(examples, tmp_path / "tokens.html", title="IMDB").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "[CLS]" not in page and "[SEP]" not in page
    assert page.count('class="line"') == 3
    assert ">nor</span>" in page and "##" not in page
    assert "</span><span" in page  # pieces of "snorefest" join with no space
    assert "rgba(220,60,30,1.000)" in page  # each line normalized by its max
    with pytest.raises(ValueError, match="scores for 3 tokens"):
        report.token_heatmap_html([{"tokens": ["a", "b", "c"], "explanations": {"x": [1.0]}}], tmp_path / "x.html")


def test_write_json_converts_numpy_and_replaces_atomically(tmp_path):
    path = tmp_path / "deep" / "out.json"
    report.write_json(path, {"a": np.float32(0.5), "b": np.arange(3), np.int64(7): (np.int64(1),)})
    report.write_json(path, {"a": np.float32(0.25), "b": np.arange(2), "c": [np.bool_(True)]})
    assert json.loads(path.read_text()) == {"a": 0.25, "b": [0, 1], "c": [True]}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]  # no temp files left
