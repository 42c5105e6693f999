"""Plausibility tables: ``python -m experiments.smat.plausibility movies|mlqe[:cpu|:smoke] [--set F=V] [--out results]``.

Table 2 of the SMaT paper scores the IMDB teacher's explainers against ERASER Movie Reviews
evidence; Table 6 scores the MLQE-PE teacher's against the post-editing dev word tags
(source and translation, per language pair and pooled). Pipeline:

1. the source simulability experiment (``imdb`` / ``mlqe`` at the same scale): its teacher
   and its "Attention (SMaT)" runs at N are loaded, or trained first when missing;
2. the median of those runs by test simulability supplies the learned coefficients;
3. one teacher pass over the labelled data (outputs, head scores, the gradient
   explainers; cached in ``cache.npz``);
4. in one jitted pass per batch: every attention explanation (all layers, last layer,
   SMaT, each single layer and each single head), summed into words and scored by
   per-example ROC-AUC; examples whose gold has one label only are skipped, as in the paper;
5. ``table.md`` (ours beside the paper), ``aggregate.json`` and ``auc_per_head.png``.

The "best layer / head" rows pick the candidate with the highest mean AUC on the same
labelled data (marked *, as in the paper: they use the human labels).
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import smat
from experiments.common import add_set_option, apply_overrides, compilation, finish, parser, write_report
from experiments.smat import report
from experiments.smat.configs import (PAPER_PLAUSIBILITY, PLAUSIBILITY_ROWS, PlausibilityConfig, get_config,
                                      get_plausibility_config)
from experiments.smat.run import prepare_task, run_one
from smat import explainers
from smat.data.align import rationale_word_mask
from smat.data.batching import map_batches
from smat.data.cache import save_arrays_atomic
from smat.data.tokenization import encode_texts
from smat.plausibility import candidate_explanations, mean_auc, roc_auc, sweep_coefficients, word_scores
from smat.teacher import build_teacher_cache

__all__ = ["labelled_examples", "score_explanations", "run_plausibility", "main"]

GRADIENT_ROWS = ("gradient_l2", "gradient_x_input", "integrated_gradients")


def _padded_tags(tags: list[np.ndarray], width: int) -> np.ndarray:
    out = np.zeros((len(tags), width), np.int8)
    for i, t in enumerate(tags):
        out[i, :min(len(t), width)] = t[:width]
    return out


def labelled_examples(cfg: PlausibilityConfig, tokenizer) -> tuple[dict[str, np.ndarray], list[str], int]:
    """Tokenized documents / segment pairs with word-aligned gold labels.

    Returns:
      ``(arrays, groups, sides)``: ``input_ids``, ``attention_mask``, ``token_type_ids``,
      ``word_ids``, ``sequence_ids``, ``lengths``, ``gold_<side>`` [examples, max_length]
      (1 = human-marked word) and ``gold_words_<side>`` (words per side); the group of each
      example (language pair, or "all"); the number of sides (1 for movies, 2 for MLQE-PE).
    """
    if cfg.dataset == "movies":
        from smat.data import load_eraser_movies

        data = load_eraser_movies()
        # The paper scores all 1,999 annotated documents (train, validation and test).
        splits = (data.train, data.dev, data.test)
        texts = [t for s in splits for t in s.texts]
        spans = [r for s in splits for r in s.rationales]
        if cfg.max_examples:  # evenly spaced across the three splits
            index = np.linspace(0, len(texts) - 1, min(cfg.max_examples, len(texts))).round().astype(int)
            texts, spans = [texts[i] for i in index], [spans[i] for i in index]
        enc = encode_texts(tokenizer, texts, max_length=cfg.max_length)
        gold = {"gold_0": rationale_word_mask(spans, cfg.max_length),
                "gold_words_0": np.asarray([len(t.split()) for t in texts], np.int32)}
        groups, sides = ["all"] * len(texts), 1
    else:
        from smat.data import load_mlqe_pe

        dev = load_mlqe_pe(word_tags=True).dev
        count = cfg.max_examples or len(dev.ids)
        # A cap keeps every language pair: take evenly spaced segments across the pooled dev set.
        index = np.linspace(0, len(dev.ids) - 1, count).round().astype(int) if cfg.max_examples else np.arange(count)
        source = [dev.extras["source_tokenized"][i] for i in index]
        target = [dev.extras["target_tokenized"][i] for i in index]
        tags = [dev.rationales[i] for i in index]
        enc = encode_texts(tokenizer, source, target, max_length=cfg.max_length)
        gold = {"gold_0": _padded_tags([t[0] for t in tags], cfg.max_length),
                "gold_1": _padded_tags([t[1] for t in tags], cfg.max_length),
                "gold_words_0": np.asarray([len(t[0]) for t in tags], np.int32),
                "gold_words_1": np.asarray([len(t[1]) for t in tags], np.int32)}
        groups, sides = [dev.extras["langpair"][i] for i in index], 2
    arrays = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.token_type_ids,
              "word_ids": enc.word_ids, "sequence_ids": enc.sequence_ids.astype(np.int32), "lengths": enc.lengths}
    return arrays | gold, groups, sides


def score_explanations(arrays: dict[str, np.ndarray], coeffs: np.ndarray, sides: int, *, batch_size: int,
                       progress: bool = True) -> dict[str, np.ndarray]:
    """Per-example word-level AUC of the cached static explanations and of every coefficient vector.

    Args:
      arrays: :func:`labelled_examples` plus ``teacher_head_scores`` and ``explanation/<name>``.
      coeffs: [candidates, layers * heads] head coefficients (used as given).
      sides: 1, or 2 for pairs (side 0 = first text, 1 = second).

    Returns:
      ``auc_<side>`` [examples, statics + candidates] (NaN where undefined), ``defined_<side>``
      [examples] (gold has both labels) and ``words_<side>`` [examples] (words visible to the model).
    """
    num_words = arrays["gold_0"].shape[1]
    fields = ("attention_mask", "word_ids", "sequence_ids", "teacher_head_scores", "statics",
              *(f"gold_{s}" for s in range(sides)))
    inputs = {k: arrays[k] for k in fields if k != "statics"}
    inputs["statics"] = np.stack([arrays[f"explanation/{n}"] for n in GRADIENT_ROWS], axis=1)
    coeffs = jnp.asarray(coeffs)

    @jax.jit
    def score(batch):
        attention = candidate_explanations(batch["teacher_head_scores"], batch["attention_mask"], coeffs)
        expl = jnp.concatenate([batch["statics"].astype(attention.dtype), attention], axis=1)
        out = {}
        for side in range(sides):
            words, present = word_scores(expl, batch["word_ids"], num_words, sequence=side,
                                         sequence_ids=batch["sequence_ids"] if sides > 1 else None)
            auc, defined = roc_auc(words, batch[f"gold_{side}"][:, None, :], present[:, None, :])
            out |= {f"auc_{side}": auc, f"defined_{side}": defined.all(-1), f"words_{side}": present.sum(-1)}
        return out

    return map_batches(score, inputs, arrays["lengths"], batch_size, desc="plausibility", progress=progress)


def _cell(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "–"


def _median_run(runs: list[dict]) -> dict:
    """The run with the median test simulability (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r["metrics"]["test_simulability"])
    return ordered[(len(ordered) - 1) // 2]


def _teacher_pass(cfg: PlausibilityConfig, task, arrays: dict, out: Path, progress: bool) -> dict:
    path = out / "cache.npz"
    if path.exists():
        with np.load(path) as saved:
            return arrays | {k: saved[k] for k in saved.files}
    static = {"gradient_l2": explainers.get("gradient_l2"), "gradient_x_input": explainers.get("gradient_x_input"),
              "integrated_gradients": explainers.integrated_gradients(steps=cfg.ig_steps)}
    inputs = {k: arrays[k] for k in ("input_ids", "attention_mask", "token_type_ids", "lengths")}
    cache = build_teacher_cache(task.teacher_fn, task.teacher_params, inputs, batch_size=cfg.batch_size,
                                static_explainers=static, keep_head_scores=True, progress=progress)
    cache = {("teacher_head_scores" if k == "head_scores" else k): v for k, v in cache.items()}
    save_arrays_atomic(path, cache)
    return arrays | cache


def _columns(groups: list[str], sides: int) -> list[tuple[str, np.ndarray, int]]:
    """(column name, example selector, side) of the table."""
    groups = np.asarray(groups)
    if sides == 1:
        return [("AUC", np.ones(len(groups), bool), 0)]
    names = {"src": 0, "tgt": 1}
    cols = [(f"{g} {s}", groups == g, i) for g in dict.fromkeys(groups) for s, i in names.items()]
    return cols + [(f"overall {s}", np.ones(len(groups), bool), i) for s, i in names.items()]


def run_plausibility(cfg: PlausibilityConfig, out_root: Path = Path("results"), *, progress: bool = True) -> dict:
    """Builds (or resumes) one plausibility table; returns its summary."""
    started = time.perf_counter()
    source = get_config(cfg.source)
    out = out_root / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    task = prepare_task(source, out_root / source.name, progress, rows=("Attention (SMaT)",))
    runs = [run_one(source, task, "Attention (SMaT)", cfg.n, seed, out_root / source.name, progress)
            for seed in (cfg.seeds or source.seeds)]
    median = _median_run(runs)

    arrays, groups, sides = labelled_examples(cfg, task.tokenizer)
    arrays = _teacher_pass(cfg, task, arrays, out, progress)
    layers, heads = arrays["teacher_head_scores"].shape[1:3]
    learned = np.asarray(smat.simplex.get(source.smat.normalizer)(
        jnp.asarray(median["teacher_expl_params"]["head_coeffs"], jnp.float32)))
    static = {"attention_all_layers": explainers.get("attention_all_layers", num_layers=layers, num_heads=heads)}
    sweep_names, sweep = sweep_coefficients(layers, heads)
    # All layers: uniform over every head; last layer: the sweep's uniform over the last layer's heads.
    fixed = np.stack([np.asarray(static["attention_all_layers"].init()["head_coeffs"]), sweep[layers - 1], learned])
    coeffs = np.concatenate([fixed.astype(np.float32), sweep])
    scores = score_explanations(arrays, coeffs, sides, batch_size=cfg.batch_size, progress=progress)

    # Segments whose words were cut by truncation do not match their gold; the reference drops them too.
    complete = np.ones(len(groups), bool)
    if sides > 1:
        for s in range(sides):
            complete &= scores[f"words_{s}"] == arrays[f"gold_words_{s}"]
    candidates = ["gradient_l2", "gradient_x_input", "integrated_gradients", "attention_all_layers",
                  "attention_last_layer", "attention", *sweep_names]
    n_layer = len(GRADIENT_ROWS) + 3
    table, best, counts, per_head = {}, {}, {}, {}
    for column, selector, side in _columns(groups, sides):
        keep = selector & complete
        means, count = mean_auc(scores[f"auc_{side}"][keep], scores[f"defined_{side}"][keep][:, None])
        counts[column] = int(count[0])
        layer_means, head_means = means[n_layer:n_layer + layers], means[n_layer + layers:]
        if counts[column]:
            best[column] = {"layer": sweep_names[int(np.argmax(layer_means))],
                            "head": sweep_names[layers + int(np.argmax(head_means))]}
        per_head[column] = head_means.reshape(layers, heads)
        values = dict(zip(candidates, means.tolist()))
        values["best_layer"], values["best_head"] = float(np.max(layer_means)), float(np.max(head_means))
        for row, key in PLAUSIBILITY_ROWS.items():
            table.setdefault(row, {})[column] = values[key]

    columns = [c for c, _, _ in _columns(groups, sides)]
    paper = PAPER_PLAUSIBILITY[cfg.dataset]
    header = ["Explainer", *columns] + (["paper"] if sides == 1 else [])
    lines = [f"{cfg.name}: plausibility of the teacher's explanations, mean per-example ROC-AUC against "
             + ("ERASER Movie Reviews evidence words" if sides == 1 else "MLQE-PE post-editing dev word tags (BAD = 1)")
             + " (* uses the human labels)", "", "| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + [":-:"] * (len(header) - 1)) + "|"]
    for row, cells in table.items():
        extra = [paper.get(row, {}).get("AUC", "–")] if sides == 1 else []
        lines.append("| " + " | ".join([row, *(_cell(cells[c]) for c in columns), *extra]) + " |")
    lines.append("| examples scored | " + " | ".join(str(counts[c]) for c in columns) + (" | |" if sides == 1 else " |"))
    if sides > 1:
        lines += ["", "The paper's Table 6 (XLM-R base teacher, N = 4,200):", "",
                  "| Explainer | " + " | ".join(columns) + " |", "|" + "|".join(["---"] + [":-:"] * len(columns)) + "|"]
        lines += ["| " + " | ".join([row, *(paper.get(row, {}).get(c, "–") for c in columns)]) + " |"
                  for row in table]
    notes = list(task.notes)
    notes.append(f"learned explainer: the median of {len(runs)} 'Attention (SMaT)' runs at N = {cfg.n} by test "
                 f"simulability (seed {median['seed']}, {median['metrics']['test_simulability']:.4f}) of "
                 f"{source.name}")
    notes.append("best layer / head per column: " + "; ".join(f"{c}: {b['layer']}, {b['head']}"
                                                             for c, b in best.items()) + " (0-based)")
    notes.append(f"{cfg.max_length} tokens per example; integrated gradients with {cfg.ig_steps} Gauss-Legendre "
                 "steps from the zero baseline; word scores = sums of their pieces' scores")
    if sides > 1:
        notes.append(f"{int((~complete).sum())} of {len(complete)} segment pairs dropped: truncation cut words "
                     "(the reference drops length-mismatched segments as well)")
    else:
        notes.append("gold words from the ERASER evidence token offsets; documents are truncated and only the "
                     "visible words scored (as the reference's 256-token truncation)")
    active = learned > 0
    for c in columns[-sides:]:
        if active.any() and not active.all():
            flat = per_head[c].reshape(-1)
            notes.append(f"{c}: mean AUC of the heads SMaT keeps (lambda > 0, {int(active.sum())}) "
                         f"{flat[active].mean():.3f} vs the heads it drops {flat[~active].mean():.3f}")
    figures = [report.head_heatmap({f"AUC per head ({c})": per_head[c] for c in columns[-sides:]},
                                   out / "auc_per_head.png", title=f"{cfg.name}: plausibility of each head",
                                   label="mean ROC-AUC"),
               report.head_heatmap(learned.reshape(layers, heads), out / "learned_coefficients.png",
                                   title=f"learned head coefficients (seed {median['seed']}, N = {cfg.n})")]
    return write_report(out, cfg, lines, notes, {"table": table, "counts": counts, "best": best,
                                                 "median_run": {"seed": median["seed"], "n": cfg.n}},
                        started=started, figures=figures)


def main(argv=None) -> dict:
    p = parser(__doc__, "table", "movies | mlqe, optionally :cpu or :smoke")
    add_set_option(p, "--set n=525 --set 'seeds=(0,)' --set max_examples=1200",
                   " (the source experiment, its teacher and runs, are shared)")
    args = p.parse_args(argv)
    cfg = apply_overrides(get_plausibility_config(args.table), args.set)
    with compilation(args):
        return finish(args.out, run_plausibility(cfg, args.out, progress=not args.quiet))


if __name__ == "__main__":
    main()
