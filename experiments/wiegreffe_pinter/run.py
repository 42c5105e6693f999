"""Wiegreffe & Pinter (2019): ``python -m experiments.wiegreffe_pinter.run sst[:smoke] [--select-on test]``.

Pipeline (every trained model checkpointed; finished models are loaded, not retrained):

1. data: SST (J&W's file), IMDB (J&W's protocol) or a binary CSV; vocabulary from train;
   embeddings from GloVe 6B 50d offline (or any vectors file);
2. Table 2: the base BiLSTM + additive attention and the frozen uniform-attention model;
3. Section 3.3 / Figure 3 (a-d): the 8 variance seeds, trained together in one vmapped
   run; per test instance the JSD between the base attention and each seed's, summarised by
   the median over seeds (the reference code) and the max (the caption), against the base
   model's max attention in 4 bins, by predicted class;
4. Figure 3 (e-f): Jain & Wallace's per-instance adversary (max JSD within |delta p| <= 0.05);
   and their random-permutation test;
5. ``table.md``, ``aggregate.json``, the violin figures, per-model JSON under ``runs/``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from baselines.adversary import (adversary_data, adversary_summary, consistent_adversary_loss, jw_adversary,
                                 permutation_test, select_adversary)
from baselines.guided import GuidedMLPConfig, guide_data, guided_mlp
from baselines.models import BiLSTMConfig, bilstm_classifier
from baselines.train import SEQ_KEYS, encode_split, predict, train
from experiments.smat import report
from experiments.common import compilation, finish, parser, write_report
from experiments.wiegreffe_pinter.configs import PAPER, WPConfig, get_config
from smat import checkpoints, simplex
from smat.data.batching import map_batches
from smat.data.vocab import MIN_DF, build_vocabulary
from smat.data.vectors import WordVectors, embedding_matrix, word_vectors

__all__ = ["load_splits", "keras_tokens", "config_vectors", "fit_models", "run", "main"]

_KERAS_FILTERS = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~\t\n]")


def keras_tokens(text: str) -> str:
    """Keras ``text_to_word_sequence`` (the tokenisation of J&W's IMDB pickle): lower-case,
    punctuation to spaces, split; ``<br />`` tags dropped first."""
    return " ".join(_KERAS_FILTERS.sub(" ", text.replace("<br />", " ").lower()).split())


def load_splits(cfg: WPConfig) -> tuple[dict[str, tuple[list[str], np.ndarray]], int, list[str]]:
    """``{train, dev, test: (space-tokenised texts, labels)}``, the vocabulary's min_df and notes."""
    notes = []
    if cfg.dataset == "sst":
        from smat.data import load_sst_jain_wallace

        sst = load_sst_jain_wallace()
        splits = {s: (list(getattr(sst, s).texts), np.asarray(getattr(sst, s).labels)) for s in ("train", "dev", "test")}
        notes.append("SST: Jain & Wallace's preprocessed sst_dataset.csv with their length filter (5 < tokens)")
        min_df = MIN_DF["sst"]
    elif cfg.dataset == "imdb":
        from smat.data import load_imdb

        imdb = load_imdb()
        rng = np.random.default_rng(1378)

        def short(split):
            texts = [keras_tokens(t) for t in split.texts]
            keep = [i for i, t in enumerate(texts) if 6 < len(t.split()) < 400]  # J&W: < 400 tokens, min_length 6
            return [texts[i] for i in keep], np.asarray(split.labels)[keep]

        texts, labels = short(imdb.train)
        order = rng.permutation(len(texts))
        cut = int(0.8 * len(order))
        test_texts, test_labels = short(imdb.test)
        sample = np.sort(rng.permutation(len(test_texts))[: int(0.2 * len(test_texts))])
        splits = {"train": ([texts[i] for i in order[:cut]], labels[order[:cut]]),
                  "dev": ([texts[i] for i in order[cut:]], labels[order[cut:]]),
                  "test": ([test_texts[i] for i in sample], test_labels[sample])}
        notes.append("IMDB: aclImdb with J&W's protocol (documents of 7-399 tokens, train / dev 80 / 20, a 20% "
                     "test sample) but Keras-style tokenisation of the raw reviews and numpy's RNG with seed 1378 "
                     "instead of their Keras pickle and sklearn splits: the documents differ from theirs")
        min_df = MIN_DF["imdb"]
    elif cfg.dataset in ("diabetes", "anemia"):
        from smat.data import load_mimic

        mimic = load_mimic(cfg.dataset)
        low = 6 if cfg.dataset == "diabetes" else 0  # J&W: Diabetes 6 < n < 4000, Anemia n < 4000

        def within(split):
            keep = [i for i, t in enumerate(split.texts) if low < len(t.split()) < 4000]
            return [split.texts[i] for i in keep], np.asarray(split.labels)[keep]

        splits = {s: within(getattr(mimic, s)) for s in ("train", "dev", "test")}
        notes += [*mimic.meta["notes"], f"MIMIC {cfg.dataset}: documents of {low + 1}-3999 tokens (J&W's Anemia "
                  "filter also dropped the shortest documents, its min_length=None quirk; kept here); J&W's "
                  "word2vec trained on MIMIC is replaced by the configured vectors"]
        min_df = MIN_DF[cfg.dataset]
    else:
        import csv

        rows = list(csv.DictReader(open(cfg.dataset, newline="", encoding="utf-8")))
        if not rows or not {"text", "label"} <= set(rows[0]):
            raise ValueError(f"{cfg.dataset}: expected a CSV header with text,label[,exp_split]")
        texts = [" ".join(r["text"].lower().split()) for r in rows]
        labels = np.asarray([int(r["label"]) for r in rows])
        if set(labels.tolist()) - {0, 1}:
            raise ValueError(f"{cfg.dataset}: labels must be 0 / 1")
        if "exp_split" in rows[0]:
            split_of = [r["exp_split"] for r in rows]
        else:
            draw = np.random.default_rng(0).random(len(rows))
            split_of = np.where(draw < 0.8, "train", np.where(draw < 0.9, "dev", "test")).tolist()
            notes.append(f"{cfg.dataset}: no exp_split column; random 80 / 10 / 10 split (seed 0)")
        splits = {s: ([t for t, p in zip(texts, split_of) if p == s], labels[np.asarray(split_of) == s])
                  for s in ("train", "dev", "test")}
        min_df = 1
    if cfg.max_examples:  # a seeded sample of each split (files may be sorted by label)
        def sample(texts, labels):
            keep = np.sort(np.random.default_rng(0).permutation(len(texts))[:cfg.max_examples])
            return [texts[i] for i in keep], labels[keep]

        splits = {s: sample(t, y) for s, (t, y) in splits.items()}
    return splits, min_df, notes


def config_vectors(cfg, words, notes: list[str]) -> tuple[WordVectors, str]:
    """``cfg.vectors`` (``cfg.fallback_vectors`` where it cannot be had, noted) restricted to
    ``words``; returns the vectors and their title for the report."""
    loaded = word_vectors(cfg.vectors, vocabulary=words, fallback=cfg.fallback_vectors)
    if loaded.substitution:
        notes.append(loaded.substitution)
    return loaded.vectors, loaded.title


def fit_models(out: Path, name: str, model, data, train_config, seeds, embeddings, progress,
               loss=None) -> tuple[dict, object]:
    """Trains (or loads) one model group (all ``seeds`` in one vmapped run, checkpointed per
    epoch, saved under ``out/models/<name>.npz``); returns its record and the selected params
    (seeds first)."""
    record_path, params_path = out / "runs" / f"{name}.json", out / "models" / f"{name}.npz"
    like = jax.vmap(lambda k: model.init(k, embeddings))(jnp.stack([jax.random.key(s) for s in seeds]))
    if record_path.exists() and params_path.exists():
        params, _ = checkpoints.load(params_path, like)
        return json.loads(record_path.read_text()), params
    t0 = time.perf_counter()
    result = train(model, data, train_config, seeds=seeds, embeddings=embeddings, progress=progress, loss=loss,
                   checkpoint=out / "checkpoints" / f"{name}.npz")
    checkpoints.save(params_path, result.params)
    record = {"name": name, "seeds": list(seeds), "best_epoch": result.best_epoch, "metrics": result.metrics,
              "history": result.history, "seconds": time.perf_counter() - t0, "train_config": repr(train_config)}
    report.write_json(record_path, record)
    (out / "checkpoints" / f"{name}.npz").unlink(missing_ok=True)
    return json.loads(record_path.read_text()), result.params


def _per_instance(fn, arrays, keys: tuple[str, ...], batch_size: int, desc: str, progress: bool) -> dict:
    """Runs a batched analysis over a split and gathers the named per-instance [batch] outputs in split order."""
    fields = {k: v for k, v in arrays.items() if k in SEQ_KEYS}
    return map_batches(lambda b: {k: v for k, v in fn(b).items() if k in keys}, fields, arrays["lengths"],
                       batch_size, seq_keys=SEQ_KEYS, desc=desc, progress=progress)


def violins(values: np.ndarray, max_attention: np.ndarray, classes: np.ndarray, path: Path, *, ylabel: str,
            title: str) -> Path:
    """Figure 3's violins: a per-instance value in 4 bins of the base model's max attention, by predicted class."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    edges = np.linspace(0, 1, 5)
    bins = np.clip(np.digitize(max_attention, edges[1:-1]), 0, 3)
    colours = {0: "tab:orange", 1: "tab:blue"}
    for c in (0, 1):
        positions, data = [], []
        for b in range(4):
            v = values[(bins == b) & (classes == c)]
            if len(v) > 1:
                data.append(v)
                positions.append(b + (c - 0.5) * 0.35)
        if data:
            parts = ax.violinplot(data, positions=positions, widths=0.33, showmedians=True)
            for body in parts["bodies"]:
                body.set_facecolor(colours[c])
                body.set_alpha(0.6)
        ax.plot([], [], color=colours[c], label=f"predicted {c}")
    ax.set_xticks(range(4), [f"{edges[b]:.2f}-{edges[b + 1]:.2f}" for b in range(4)])
    ax.set_xlabel("max attention of the base model")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def tradeoff_plot(seed_jsd, seed_tvd, uniform_point, curve, lambdas, jw_jsd, classes, *, adv_classes, path: Path,
                  title: str) -> Path:
    """Figures 5 and 6: mean TVD of outputs vs mean JSD of attention from the base model, for the
    seeds (triangles), the uniform model, the adversary's lambda curve and J&W's adversary (its
    mean max JSD within |Δp| <= 0.05, a dashed line: its TVD is bounded by the selection), overall
    and per predicted class of the base model."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 3.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (label, keep, adv_keep) in zip(axes, [("all", np.ones_like(classes, bool), np.ones_like(adv_classes, bool)),
                                                   ("predicted 0", classes == 0, adv_classes == 0),
                                                   ("predicted 1", classes == 1, adv_classes == 1)]):
        if not keep.any():
            continue
        ax.scatter(seed_jsd[:, keep].mean(1), seed_tvd[:, keep].mean(1), marker="^", color="tab:green", label="seeds")
        ax.scatter([uniform_point[0][keep].mean()], [uniform_point[1][keep].mean()], marker="s", color="tab:gray",
                   label="uniform")
        xs = [j[keep].mean() for j, _ in curve]
        ys = [t[keep].mean() for _, t in curve]
        ax.plot(xs, ys, ":o", color="tab:red", markersize=3, label="adversary (λ)")
        for x, y, lam in zip(xs, ys, lambdas):
            ax.annotate(f"{lam:g}", (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
        if adv_keep.any():
            ax.axvline(jw_jsd[adv_keep].mean(), linestyle="--", color="tab:purple", label="J&W adversary")
        ax.set_xlim(-0.02, np.log(2) + 0.02)
        ax.set_xlabel("mean JSD of attention to the base model")
        ax.set_title(label, fontsize=9)
    axes[0].set_ylabel("mean TVD of outputs (half |Δp|)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: Figures 5 (all) and 6 (by class)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def run(cfg: WPConfig, out_root: Path = Path("results"), *, progress: bool = True) -> dict:
    started = time.perf_counter()
    out = out_root / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    splits, min_df, notes = load_splits(cfg)
    vocab = build_vocabulary(splits["train"][0], min_df)
    vectors, vectors_name = config_vectors(cfg, vocab.words, notes)
    embeddings, found = embedding_matrix(vocab.words, vectors)
    notes.append(f"vocabulary {len(vocab)} words (min_df {min_df}), {found.mean():.1%} found in {vectors_name}; "
                 "OOV words start at zero vectors (torchtext's default, as the paper's runs)")
    data = {s: encode_split(vocab, t, y) for s, (t, y) in splits.items()}
    notes.append(f"model selection on {cfg.train.select_on} ROC-AUC" +
                 (" (the paper's protocol: W&P selected on the test set)" if cfg.train.select_on == "test" else
                  " (J&W's; the paper's W&P numbers were selected on test: pass --select-on test)"))
    arch = BiLSTMConfig(vocab_size=len(vocab), embedding_dim=embeddings.shape[1])
    additive = bilstm_classifier(arch)
    uniform = bilstm_classifier(dataclasses.replace(arch, attention="uniform"))

    runs = {}
    runs["base"], base_params = fit_models(out, "base", additive, data, cfg.train, (cfg.base_seed,), embeddings, progress)
    runs["uniform"], uniform_params = fit_models(out, "uniform", uniform, data, cfg.train, (cfg.base_seed,), embeddings,
                                           progress)
    runs["seeds"], seed_params = fit_models(out, "seeds", additive, data, cfg.train, cfg.seeds, embeddings, progress)

    test = data["test"]
    base_probs, base_attn = predict(additive, base_params, test)
    seed_probs, seed_attn = predict(additive, seed_params, test)
    mask = test["attention_mask"] > 0
    jsd = np.asarray(simplex.jsd(jnp.asarray(seed_attn), jnp.asarray(base_attn), jnp.asarray(mask)[None]))
    tvd = 0.5 * np.abs(seed_probs[..., 0] - base_probs[..., 0])  # the reference's half |delta p|
    base_max = base_attn[0].max(-1)
    base_class = (base_probs[0, :, 0] > 0.5).astype(int)
    figures = [violins(np.median(jsd, 0), base_max, base_class, out / "seeds_jsd_median.png",
                       ylabel="median JSD to base over seeds", title=f"{cfg.name}: seeds (reference code: median)"),
               violins(jsd.max(0), base_max, base_class, out / "seeds_jsd_max.png",
                       ylabel="max JSD to base over seeds", title=f"{cfg.name}: seeds (paper caption: max)")]

    single = jax.tree.map(lambda x: x[0], base_params)
    k = cfg.adversary_examples or len(test["lengths"])
    subset = {name: v[:k] for name, v in test.items()}
    key = jax.random.key(cfg.base_seed)
    summary_keys = ("base_max_attention", "base_class")
    adv = _per_instance(lambda b: jw_adversary(additive, single, b, cfg.adversary, key), subset,
                        ("max_jsd_within", *summary_keys), 32, "J&W adversary", progress)
    perm = _per_instance(lambda b: permutation_test(additive, single, b, key, cfg.permutations), subset,
                         ("median_output_diff", *summary_keys), 32, "permutations", progress)
    figures.append(violins(adv["max_jsd_within"], adv["base_max_attention"], adv["base_class"],
                           out / "jw_adversary_jsd.png", ylabel="max JSD within |Δp| ≤ 0.05",
                           title=f"{cfg.name}: J&W per-instance adversary"))
    figures.append(violins(perm["median_output_diff"], perm["base_max_attention"], perm["base_class"],
                           out / "permutation_output_diff.png", ylabel="median |Δp| over permutations",
                           title=f"{cfg.name}: random attention permutations"))

    # Tables 4-5: the model-consistent adversary, one model per lambda, each started from the base
    # model's initialisation (seed) and trained against its test-time outputs and attention.
    base_out = {split: predict(additive, base_params, data[split]) for split in data}
    adv_data = adversary_data(data, {k: v[0][0] for k, v in base_out.items()}, {k: v[1][0] for k, v in base_out.items()})
    adv_train = dataclasses.replace(cfg.train, select_metric="loss", epochs=cfg.adversary_epochs)
    table5, adversary_attention, curve = {}, None, []
    for lam in cfg.lambda_grid():
        record, params = fit_models(out, f"adversary-lambda{lam:g}", additive, adv_data, adv_train, (cfg.base_seed,),
                              embeddings, progress, loss=consistent_adversary_loss(lam))
        probs, attn = predict(additive, params, test)
        summary_lam = adversary_summary(probs[0, :, 0], attn[0], base_probs[0, :, 0], base_attn[0], mask)
        table5[lam] = {"f1": record["metrics"]["test"]["f1"][0], "tvd": float(summary_lam["mean_tvd"]),
                       "jsd": float(summary_lam["mean_jsd"])}
        curve.append((np.asarray(summary_lam["jsd"]), np.asarray(summary_lam["tvd"])))
        if lam == cfg.mlp_lambda:
            adversary_attention = {split: predict(additive, params, data[split])[1][0] for split in data}
    lams = list(table5)
    best = select_adversary([table5[l]["f1"] for l in lams], [table5[l]["jsd"] for l in lams])

    # Table 3: the diagnostic MLP with each guide, imposed at train and test time.
    guides = {"UNIFORM": ("uniform", None), "TRAINED MLP": ("trained", None),
              "BASE LSTM": ("imposed", {split: v[1][0] for split, v in base_out.items()}),
              "ADVERSARY": ("imposed", adversary_attention)}
    table3 = {}
    for row, (kind, guide) in guides.items():
        if kind == "imposed" and guide is None:
            notes.append(f"Table 3 {row}: no adversary with lambda {cfg.mlp_lambda} in the grid; row skipped")
            continue
        mlp = guided_mlp(GuidedMLPConfig(vocab_size=len(vocab), embedding_dim=embeddings.shape[1], guide=kind))
        name = f"mlp-{row.lower().replace(' ', '-')}"
        if tuple(cfg.mlp_seeds) != (cfg.base_seed,):
            name += f"-{len(cfg.mlp_seeds)}seeds"
        record, _ = fit_models(out, name, mlp, guide_data(data, guide) if guide else data, cfg.train, cfg.mlp_seeds,
                         embeddings, progress)
        table3[row] = record["metrics"]["test"]["f1"]

    # Figures 5 and 6: TVD vs JSD from the base model, overall and by the base model's predicted class.
    uniform_probs, uniform_attn = predict(uniform, uniform_params, test)
    uniform_point = (np.asarray(simplex.jsd(jnp.asarray(uniform_attn[0]), jnp.asarray(base_attn[0]), jnp.asarray(mask))),
                     0.5 * np.abs(uniform_probs[0, :, 0] - base_probs[0, :, 0]))
    figures.append(tradeoff_plot(jsd, tvd, uniform_point, curve, lams, adv["max_jsd_within"], base_class,
                                 adv_classes=adv["base_class"], path=out / "tvd_jsd_tradeoff.png", title=cfg.name))

    dataset = cfg.dataset if cfg.dataset in PAPER["table2"] else None
    paper = PAPER["table2"].get(dataset, {})
    f1 = {name: runs[name]["metrics"]["test"]["f1"] for name in ("base", "uniform")}
    seed_f1 = np.asarray(runs["seeds"]["metrics"]["test"]["f1"])
    lines = [f"{cfg.name}: Table 2 (positive-class F1 on test)", "",
             "| Dataset | base (ours) | uniform (ours) | W&P reproduced | W&P uniform | J&W reported |",
             "|---|:-:|:-:|:-:|:-:|:-:|",
             f"| {dataset or cfg.dataset} | {f1['base'][0]:.3f} | {f1['uniform'][0]:.3f} | {paper.get('base', '–')} | "
             f"{paper.get('uniform', '–')} | {paper.get('J&W reported', '–')} |", "",
             f"Variance seeds {list(cfg.seeds)} (one vmapped run): test F1 median {np.median(seed_f1):.3f} "
             f"[{seed_f1.min():.3f}, {seed_f1.max():.3f}]; per-instance JSD to the base attention: median over "
             f"instances of the seed-median {np.median(np.median(jsd, 0)):.3f}, of the seed-max "
             f"{np.median(jsd.max(0)):.3f}; mean TVD (half |Δp|) {tvd.mean():.4f}.",
             f"J&W adversary on {k} test instances: mean max JSD within |Δp| ≤ {cfg.adversary.select_epsilon} "
             f"{adv['max_jsd_within'].mean():.3f}; random permutations: median |Δp| {np.median(perm['median_output_diff']):.4f}."]
    paper3 = PAPER["table3"].get(dataset, {})
    lines += ["", f"Table 3 (guided MLP, positive-class F1 on test; median [min, max] over seeds {list(cfg.mlp_seeds)}):",
              "", "| Guide | ours | paper |", "|---|:-:|:-:|"]
    lines += [f"| {row} | {np.median(f):.3f} [{min(f):.3f}, {max(f):.3f}] | {paper3.get(row, '–')} |"
              for row, f in table3.items()]
    lines += ["", f"Tables 4-5 (model-consistent adversary, {cfg.adversary_epochs} epochs, test set; TVD = half |Δp| "
              "as the reference, JSD of attention to the base model's):", "",
              "| λ | F1 | TVD | JSD |", "|---:|:-:|:-:|:-:|"]
    lines += [f"| {lam:g} | {v['f1']:.3f} | {v['tvd']:.3f} | {v['jsd']:.3f} |" for lam, v in table5.items()]
    lines.append("")
    lines.append(f"Table 4 rule (highest F1 with mean JSD > 0.4): " + (
        f"λ = {lams[best]:g}, F1 {table5[lams[best]]['f1']:.3f}, TVD {table5[lams[best]]['tvd']:.3f}, "
        f"JSD {table5[lams[best]]['jsd']:.3f}" if best is not None else "no λ reaches mean JSD > 0.4"))
    fields = {
        "table2": {"base": f1["base"][0], "uniform": f1["uniform"][0], "paper": paper},
        "seeds": {"f1": seed_f1, "jsd_median_over_seeds": float(np.median(np.median(jsd, 0))),
                  "jsd_max_over_seeds": float(np.median(jsd.max(0))), "mean_tvd": float(tvd.mean())},
        "jw_adversary": {"examples": k, "mean_max_jsd_within": float(adv["max_jsd_within"].mean())},
        "permutations": {"median_output_diff": float(np.median(perm["median_output_diff"]))},
        "table3": table3, "table5": {f"{lam:g}": v for lam, v in table5.items()},
        "table4": None if best is None else {"lambda": lams[best], **table5[lams[best]]},
        "runs": {n: {"metrics": r["metrics"], "best_epoch": r["best_epoch"], "seconds": r["seconds"]}
                 for n, r in runs.items()},
    }
    return write_report(out, cfg, lines, notes, fields, started=started, figures=figures)


def main(argv=None) -> dict:
    p = parser(__doc__, "dataset", "sst | imdb | path/to/data.csv, optionally :cpu or :smoke")
    p.add_argument("--select-on", choices=("dev", "test"), default="dev",
                   help="model selection split (test = the paper's protocol)")
    args = p.parse_args(argv)
    with compilation(args):
        return finish(args.out, run(get_config(args.dataset, select_on=args.select_on), args.out,
                                    progress=not args.quiet))


if __name__ == "__main__":
    main()
