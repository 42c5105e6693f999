"""Reporting layer for the SMaT paper: simulability tables, head heatmaps, explanation views.

Turns per-run metric records into the paper's tables (Tables 1, 3, 5, 7: median and
25-75 percentile range over seeds, underlined where the IQR lies strictly above the
"No explainer" baseline's), draws the learned head coefficients lambda (Figure 5),
token explanations as HTML (Figures 3 and 6) and patch explanations over images (Figure 4).
Only numpy and matplotlib; nothing here touches jax, so it runs anywhere results are read.

References:
  Fernandes, Treviso et al. (2022), "Learning to Scaffold: Optimizing Model Explanations
  for Teaching", Section 5 (results tables) and Section 6 (Figure 5).
"""

from __future__ import annotations

import html
import json
import os
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "aggregate",
    "markdown_table",
    "head_heatmap",
    "token_heatmap_html",
    "patch_grid",
    "image_overlay",
    "write_json",
]

DASH = "–"
SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>"})
_SENTENCEPIECE_MARKS = ("▁", "Ġ")  # word-start marks of XLM-R / RoBERTa vocabularies


def aggregate(runs: Sequence[Mapping[str, Any]], metric: str) -> dict:
    """Median and quartiles of ``metric`` over seeds, per table row and training-set size N.

    Args:
      runs: records ``{"row": str, "n": int | str, "seed": int, "metrics": {metric: float}}``.
      metric: key of ``run["metrics"]`` to aggregate (e.g. ``"accuracy"``, ``"pearson"``).

    Returns:
      ``{row: {n: {"median", "q25", "q75", "values", "seeds", "by_seed"}}}``, rows and columns in
      first-seen order; quartiles use ``np.percentile``'s linear interpolation and
      ``values`` is sorted, ``seeds`` in the order the runs came (so the two do not pair up:
      ``by_seed`` maps each seed to its value).

    Raises:
      KeyError: a run lacks ``metric``.
    """
    cells: dict[str, dict[Any, list[tuple[int, float]]]] = {}
    for run in runs:
        if metric not in run["metrics"]:
            raise KeyError(f"run {run['row']!r} n={run['n']!r} seed={run['seed']!r} has no metric {metric!r}")
        cells.setdefault(run["row"], {}).setdefault(run["n"], []).append((run["seed"], float(run["metrics"][metric])))
    out: dict = {}
    for row, columns in cells.items():
        out[row] = {}
        for n, pairs in columns.items():
            values = np.asarray([v for _, v in pairs], dtype=np.float64)
            q25, median, q75 = np.percentile(values, [25.0, 50.0, 75.0])
            out[row][n] = {
                "median": float(median),
                "q25": float(q25),
                "q75": float(q75),
                "values": sorted(values.tolist()),
                "seeds": [s for s, _ in pairs],
                "by_seed": {s: v for s, v in pairs},
            }
    return out


def _column_label(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else str(n)


def _paper_cell(paper: Mapping | None, row: str, n: Any, digits: int) -> str:
    entry = (paper or {}).get(row, {})
    value = entry.get(n, entry.get(str(n)))
    if value is None:
        return DASH
    return value if isinstance(value, str) else f"{float(value):.{digits}f}"


def markdown_table(
    agg: Mapping[str, Mapping[Any, Mapping[str, Any]]],
    *,
    rows: Sequence[str] | None = None,
    columns: Sequence[Any] | None = None,
    baseline: str = "No explainer",
    scale: float = 100.0,
    digits: int = 2,
    paper: Mapping[str, Mapping[Any, str | float]] | None = None,
    title: str | None = None,
) -> str:
    """Formats an :func:`aggregate` result as the paper's simulability table in Markdown.

    Cells read ``median [q25:q75]`` after multiplying by ``scale`` (100 for accuracy in %,
    1 with ``digits=4`` for Pearson). A cell is underlined (``<u>..</u>``) when its q25 is
    strictly above the q75 of the ``baseline`` row in the same column: the paper's
    "higher simulability than baseline with non-overlapping IQR"; touching IQRs are not marked.

    Args:
      agg: output of :func:`aggregate`.
      rows: row names in display order; default all rows of ``agg`` in order.
      columns: values of N in display order; default every N of ``agg`` in first-seen order.
      baseline: row whose IQR the others are compared with.
      scale: factor applied to every number before formatting.
      digits: decimals shown.
      paper: published numbers ``{row: {n: "81.72 [81.24:81.75]" or float}}``; adds a
        "paper" column right after each of ours (floats are shown as given, not scaled).
      title: optional caption line above the table.

    Returns:
      The Markdown text; missing cells read "–", and a last line lists the seeds per cell
      when that count is not the same everywhere.
    """
    rows = list(agg) if rows is None else list(rows)
    if columns is None:
        columns = list(dict.fromkeys(n for row in agg.values() for n in row))
    base = agg.get(baseline, {})
    header = [""]
    for n in columns:
        header += [_column_label(n)] + (["paper"] if paper is not None else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    seed_counts: dict[tuple[str, Any], int] = {}
    for row in rows:
        cells = [row.replace("|", "\\|")]
        for n in columns:
            stats = agg.get(row, {}).get(n)
            if stats is None:
                cell = DASH
            else:
                seed_counts[row, n] = len(stats["values"])
                med, q25, q75 = (scale * stats[k] for k in ("median", "q25", "q75"))
                cell = f"{med:.{digits}f} [{q25:.{digits}f}:{q75:.{digits}f}]"
                if row != baseline and n in base and stats["q25"] > base[n]["q75"]:
                    cell = f"<u>{cell}</u>"
            cells.append(cell)
            if paper is not None:
                cells.append(_paper_cell(paper, row, n, digits))
        lines.append("| " + " | ".join(cells) + " |")
    if title:
        lines = [f"**{title}**", ""] + lines
    if len(set(seed_counts.values())) > 1:
        counts = list(seed_counts.values())
        usual = max(counts, key=lambda k: (counts.count(k), k))  # ties: the fuller count is the norm
        odd = "; ".join(f"{r} @ {_column_label(n)}: {k}" for (r, n), k in seed_counts.items() if k != usual)
        lines += ["", f"Seeds per cell: {usual}, except {odd}."]
    return "\n".join(lines) + "\n"


def _figure(width: float, height: float):
    # A bare Figure renders with Agg on savefig and never touches pyplot's global state.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def head_heatmap(
    coeffs: np.ndarray | Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    layer_labels: Sequence[str] | None = None,
    label: str = "coefficient λ",
) -> Path:
    """Draws normalized head coefficients lambda as a layers x heads heatmap (Figure 5).

    Args:
      coeffs: one array ``[layers, heads]``, or ``{panel title: array}`` for side-by-side
        panels (e.g. one per task) sharing one colour scale.
      path: PNG to write (parent folders are created).
      title: figure title.
      layer_labels: y tick labels, layer 1 first; default ``"1".."layers"``.
      label: the colour bar's label (any per-head quantity can be drawn, e.g. plausibility AUC).

    Returns:
      ``path`` as a ``Path``.

    Raises:
      ValueError: a coefficient array is not two-dimensional.
    """
    panels = dict(coeffs) if isinstance(coeffs, Mapping) else {"": coeffs}
    panels = {name: np.asarray(c, dtype=np.float64) for name, c in panels.items()}
    for name, c in panels.items():
        if c.ndim != 2:
            raise ValueError(f"head coefficients {name!r} must be [layers, heads], got shape {c.shape}")
    vmin = min(float(c.min()) for c in panels.values())
    vmax = max(float(c.max()) for c in panels.values())
    layers, heads = max(c.shape[0] for c in panels.values()), max(c.shape[1] for c in panels.values())
    fig = _figure(len(panels) * max(3.0, 0.55 * heads + 1.5) + 1.0, max(3.0, 0.4 * layers + 1.5))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, c) in zip(axes, panels.items()):
        image = ax.imshow(c, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")  # row 0 (layer 1) on top
        ax.set_xticks(range(c.shape[1]), [str(h + 1) for h in range(c.shape[1])])
        ax.set_yticks(range(c.shape[0]), list(layer_labels or [str(i + 1) for i in range(c.shape[0])]))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        if name:
            ax.set_title(name)
        if c.size <= 64:
            middle = (vmin + vmax) / 2
            for (i, j), v in np.ndenumerate(c):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > middle else "white")
    fig.colorbar(image, ax=list(axes), label=label)
    if title:
        fig.suptitle(_wrap(title, fig))
    return _save(fig, path)


def _wrap(title: str, fig) -> str:
    """A figure title broken into lines that fit the figure's width (long experiment names)."""
    return "\n".join(textwrap.wrap(title, max(30, int(fig.get_figwidth() * 11)), break_on_hyphens=True))


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _join_pieces(tokens: Sequence[str]) -> list[tuple[str, bool]]:
    """Display text of each token and whether a space precedes it (subword pieces join)."""
    sentencepiece = any(t.startswith(_SENTENCEPIECE_MARKS) for t in tokens)
    out = []
    for i, t in enumerate(tokens):
        if sentencepiece:
            starts_word = t.startswith(_SENTENCEPIECE_MARKS)
            text = t[1:] if starts_word else t
        else:
            starts_word = not t.startswith("##")
            text = t if starts_word else t[2:]
        out.append((text, starts_word and i > 0))
    return out


def token_heatmap_html(
    examples: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    title: str | None = None,
) -> Path:
    """Writes a self-contained HTML page of token explanations (Figures 3 and 6).

    Each example shows one line per explainer; a token's background opacity is its score's
    magnitude divided by the line's largest. Special tokens ([CLS], [SEP], <s>, padding) are
    dropped, WordPiece ``##`` (and SentencePiece ``▁``) pieces are joined, all text escaped.

    Args:
      examples: ``{"tokens": [str], "explanations": {name: scores [tokens]}, "label": str}``
        (``label`` optional).
      path: HTML file to write.
      title: page heading.

    Returns:
      ``path`` as a ``Path``.

    Raises:
      ValueError: an explanation's length differs from the example's token count.
    """
    body = [f"<h1>{html.escape(title)}</h1>"] if title else []
    for k, example in enumerate(examples):
        tokens = list(example["tokens"])
        keep = [i for i, t in enumerate(tokens) if t not in SPECIAL_TOKENS]
        pieces = _join_pieces([tokens[i] for i in keep])
        label = example.get("label")
        head = f"example {k + 1}" + (f" — label: {html.escape(str(label))}" if label is not None else "")
        body.append(f'<div class="example"><div class="head">{head}</div>')
        for name, scores in example["explanations"].items():
            scores = np.abs(np.asarray(scores, dtype=np.float64).reshape(-1))
            if scores.shape[0] != len(tokens):
                raise ValueError(f"explainer {name!r} gives {scores.shape[0]} scores for {len(tokens)} tokens")
            kept = scores[keep]
            alpha = kept / kept.max() if kept.size and kept.max() > 0 else np.zeros_like(kept)
            spans = "".join(
                (" " if space else "")
                + f'<span title="{s:.4g}" style="background:rgba(220,60,30,{a:.3f})">{html.escape(text)}</span>'
                for (text, space), s, a in zip(pieces, kept, alpha)
            )
            body.append(f'<div class="line"><span class="name">{html.escape(str(name))}:</span> {spans}</div>')
        body.append("</div>")
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title or 'explanations')}</title><style>"
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        ".example{margin:1.2em 0;padding:.5em;border-top:1px solid #ccc}.head{color:#555;margin-bottom:.3em}"
        ".line{line-height:1.9;margin:.2em 0}.name{font-weight:bold;margin-right:.4em}"
        "</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def patch_grid(scores: np.ndarray, height: int, width: int, patch_size: int) -> np.ndarray:
    """Spreads ViT token scores (CLS first, then patches row-major) over the image pixels.

    Args:
      scores: ``[n, 1 + (height / patch_size) * (width / patch_size)]``.
      height: image height in pixels.
      width: image width in pixels.
      patch_size: side of a square patch in pixels.

    Returns:
      ``[n, height, width]``: each patch's score repeated over its pixels (CLS dropped).

    Raises:
      ValueError: the image is not tiled by the patches or the token count does not match.
    """
    if height % patch_size or width % patch_size:
        raise ValueError(f"image {height}x{width} is not tiled by {patch_size}x{patch_size} patches")
    rows, cols = height // patch_size, width // patch_size
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != 1 + rows * cols:
        raise ValueError(
            f"explanations of shape {scores.shape} do not match the patch grid: expected [n, 1 + {rows}*{cols}]"
            f" = [n, {1 + rows * cols}] tokens (CLS + patches)"
        )
    grid = scores[:, 1:].reshape(-1, rows, cols)
    return np.kron(grid, np.ones((1, patch_size, patch_size)))


def _display_image(image: np.ndarray) -> np.ndarray:
    """[h, w] or [h, w, c] uint8 / float image -> float in [0, 1] (floats min-max scaled)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if np.issubdtype(image.dtype, np.integer):
        return image.astype(np.float64) / 255.0
    image = image.astype(np.float64)
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def image_overlay(
    images: np.ndarray,
    explanations: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    patch_size: int,
    names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Grid of images and their patch explanations overlaid on the grayscale image (Figure 4).

    Rows are examples; the first column is the input image, then one column per explainer
    (in ``explanations`` order) with the per-example max-normalized score magnitude as a heatmap.

    Args:
      images: ``[n, h, w]`` or ``[n, h, w, c]``, uint8 (0..255) or float (min-max scaled).
      explanations: ``{explainer name: [n, 1 + (h/patch_size)*(w/patch_size)]}``, CLS first.
      path: PNG to write.
      patch_size: ViT patch side in pixels.
      names: per-example captions (e.g. gold labels) shown over the input image.
      title: figure title.

    Returns:
      ``path`` as a ``Path``.

    Raises:
      ValueError: shapes of images, explanations and ``names`` disagree.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be [n, h, w] or [n, h, w, c], got shape {images.shape}")
    n, height, width = images.shape[:3]
    if names is not None and len(names) != n:
        raise ValueError(f"{len(names)} names for {n} images")
    heats = {}
    for name, scores in explanations.items():
        if np.shape(scores)[0] != n:
            raise ValueError(f"explainer {name!r} has {np.shape(scores)[0]} examples for {n} images")
        heat = np.abs(patch_grid(scores, height, width, patch_size))
        top = heat.reshape(n, -1).max(axis=1)[:, None, None]
        heats[name] = np.divide(heat, top, out=np.zeros_like(heat), where=top > 0)
    shown = [_display_image(im) for im in images]
    gray = [im[..., :3] @ np.array([0.299, 0.587, 0.114]) if im.ndim == 3 else im for im in shown]
    fig = _figure(2.0 * (1 + len(heats)), 2.0 * n + (0.4 if title else 0.0))
    axes = fig.subplots(n, 1 + len(heats), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(shown[i][..., :3] if shown[i].ndim == 3 else shown[i], cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(names[i] if names is not None else ("input image" if i == 0 else ""), fontsize=8)
        for j, (name, heat) in enumerate(heats.items(), start=1):
            axes[i, j].imshow(gray[i], cmap="gray", vmin=0, vmax=1)
            axes[i, j].imshow(heat[i], cmap="magma", alpha=0.55, vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    if title:
        fig.suptitle(_wrap(title, fig))
    return _save(fig, path)


def _to_python(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {(k.item() if isinstance(k, np.generic) else k): _to_python(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_python(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Writes ``obj`` as indented JSON atomically (temp file + ``os.replace``).

    Args:
      path: destination; parent folders are created.
      obj: JSON-able data, where numpy scalars and arrays become Python numbers and lists.

    Returns:
      ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_to_python(obj), f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
