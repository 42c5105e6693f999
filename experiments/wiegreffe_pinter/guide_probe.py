"""Why a guide helps or hurts the diagnostic MLP (W&P Table 3):
``python -m experiments.wiegreffe_pinter.guide_probe sst:cpu``.

Table 3 reads "BASE LSTM > TRAINED MLP > UNIFORM" as evidence that the base model's attention
carries information a context-free model can use. This probe varies the guide and measures:

1. two base BiLSTMs, trained for the config's epochs and for 2 epochs (selected as the
   config says), and the sharpness of their attention (mean max weight, mean entropy over
   ``ln(length)``) on train and test;
2. the guided MLP over ``mlp_seeds`` (one vmapped run each) with the uniform guide, each base
   model's attention, and the 8-epoch base attention imposed at test time only (uniform in
   training) or at training time only (uniform at test); and the MLP with its own attention;
3. how much weight each guide puts on words that are polar on their own: the guide-weighted
   mean of |unigram log-odds| (add-one smoothed, from the training split) on test, and the
   share of test sentences whose highest-weighted token is the sentence's most polar word.

Writes ``results/<config name>-guide-probe/{aggregate.json,table.md}``; models are cached as
in the main run. ``--mlp-seeds K`` trains the MLPs for the first K seeds only (IMDB on a CPU:
~25 s per epoch for 3 seeds, ~85 s for 9).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from baselines.adversary import adversary_data, adversary_summary, consistent_adversary_loss
from baselines.guided import GuidedMLPConfig, guide_data, guided_mlp
from baselines.models import BiLSTMConfig, bilstm_classifier
from baselines.train import encode_split, predict
from experiments.common import compilation, finish, parser, write_report
from experiments.wiegreffe_pinter.configs import get_config
from experiments.wiegreffe_pinter.run import config_vectors, fit_models, load_splits
from smat.data.vectors import embedding_matrix
from smat.data.vocab import build_vocabulary


def sharpness(attention: np.ndarray) -> dict[str, float]:
    """Mean max weight and mean normalized entropy of rows of attention (zeros = masked)."""
    support = attention > 0
    n = np.maximum(support.sum(1), 2)
    entropy = -np.where(support, attention * np.log(np.where(support, attention, 1.0)), 0.0).sum(1)
    return {"max": float(attention.max(1).mean()), "norm_entropy": float((entropy / np.log(n)).mean())}


def unigram_polarity(ids: np.ndarray, labels: np.ndarray, support: np.ndarray, vocab_size: int) -> np.ndarray:
    """|log-odds| of each vocabulary id between the classes, add-one smoothed: [vocab]."""
    counts = np.ones((2, vocab_size))
    for c in (0, 1):
        np.add.at(counts[c], ids[(labels == c)[:, None] & support], 1)
    p = counts / counts.sum(1, keepdims=True)
    return np.abs(np.log(p[1]) - np.log(p[0]))


def polarity_focus(guide: np.ndarray, ids: np.ndarray, polarity: np.ndarray) -> dict[str, float]:
    """Guide-weighted mean |log-odds|, and how often the top-weighted token is the most polar one."""
    support = guide > 0
    pol = np.where(support, polarity[ids[:, :guide.shape[1]]], -1.0)
    weighted = (guide * np.maximum(pol, 0)).sum(1) / guide.sum(1)
    top_is_polar = pol[np.arange(len(pol)), guide.argmax(1)] == pol.max(1)
    return {"weighted_polarity": float(weighted.mean()), "top_is_most_polar": float(top_is_polar.mean())}


def f1_summary(record: dict) -> dict[str, float]:
    """Median, min and max over seeds of a model group's test F1."""
    f1 = np.asarray(record["metrics"]["test"]["f1"])
    return {"median": float(np.median(f1)), "min": float(f1.min()), "max": float(f1.max())}


def probe(cfg, out_root: Path = Path("results"), *, mlp_seeds: int | None = None, adversary: bool = False,
          progress: bool = True) -> dict:
    """Runs the probe; ``mlp_seeds`` keeps only the first seeds of ``cfg.mlp_seeds`` (IMDB on a CPU);
    ``adversary`` adds Table 3's ADVERSARY guide: W&P's model-consistent adversary at
    ``cfg.mlp_lambda``, trained for ``cfg.adversary_epochs`` against the full-length base model."""
    started = time.perf_counter()
    suffix = ""
    if mlp_seeds is not None and mlp_seeds < len(cfg.mlp_seeds):
        cfg, suffix = dataclasses.replace(cfg, mlp_seeds=cfg.mlp_seeds[:mlp_seeds]), f"-{mlp_seeds}seeds"
    cfg = dataclasses.replace(cfg, name=cfg.name + "-guide-probe")
    out = out_root / cfg.name
    splits, min_df, notes = load_splits(cfg)
    vocab = build_vocabulary(splits["train"][0], min_df)
    vectors, vectors_title = config_vectors(cfg, vocab.words, notes)
    embeddings, _ = embedding_matrix(vocab.words, vectors)
    data = {s: encode_split(vocab, t, y) for s, (t, y) in splits.items()}
    additive = bilstm_classifier(BiLSTMConfig(vocab_size=len(vocab), embedding_dim=embeddings.shape[1]))

    bases, outputs, fields = {}, {}, {"bases": {}, "guided_mlp_f1": {}, "polarity_focus": {}}
    for epochs in sorted({cfg.train.epochs, 2}, reverse=True):
        record, params = fit_models(out, f"base-{epochs}ep", additive, data,
                                    dataclasses.replace(cfg.train, epochs=epochs), (cfg.base_seed,), embeddings,
                                    progress)
        outputs[epochs] = {s: predict(additive, params, data[s]) for s in data}
        bases[epochs] = {s: o[1][0] for s, o in outputs[epochs].items()}
        fields["bases"][f"{epochs} epochs"] = {"best_epoch": record["best_epoch"][0],
                                               "test_f1": record["metrics"]["test"]["f1"][0],
                                               **{s: sharpness(bases[epochs][s]) for s in ("train", "test")}}
    full = bases[cfg.train.epochs]
    uniform = {s: (a > 0) / np.maximum((a > 0).sum(1, keepdims=True), 1) for s, a in full.items()}

    guides = {"uniform": uniform, **{f"base, {e} epochs": b for e, b in bases.items()},
              "uniform in training, base at test": {"train": uniform["train"], "dev": full["dev"],
                                                    "test": full["test"]},
              "base in training, uniform at test": {"train": full["train"], "dev": uniform["dev"],
                                                    "test": uniform["test"]}}
    if adversary:
        lam, base = cfg.mlp_lambda, outputs[cfg.train.epochs]
        adv_data = adversary_data(data, {s: o[0][0] for s, o in base.items()}, full)
        record, params = fit_models(out, f"adversary-lambda{lam:g}", additive, adv_data,
                                    dataclasses.replace(cfg.train, select_metric="loss", epochs=cfg.adversary_epochs),
                                    (cfg.base_seed,), embeddings, progress, loss=consistent_adversary_loss(lam))
        adv = {s: predict(additive, params, data[s]) for s in data}
        summary = adversary_summary(adv["test"][0][0, :, 0], adv["test"][1][0], base["test"][0][0, :, 0],
                                    full["test"], data["test"]["attention_mask"] > 0)
        fields["adversary"] = {"lambda": lam, "epochs": cfg.adversary_epochs,
                               "test_f1": record["metrics"]["test"]["f1"][0],
                               "mean_tvd": float(summary["mean_tvd"]), "mean_jsd": float(summary["mean_jsd"])}
        guides[f"adversary (λ = {lam:g})"] = {s: o[1][0] for s, o in adv.items()}
    mlp = guided_mlp(GuidedMLPConfig(vocab_size=len(vocab), embedding_dim=embeddings.shape[1], guide="imposed"))
    for i, (name, guide) in enumerate(guides.items()):
        record, _ = fit_models(out, f"mlp-guide{i}{suffix}", mlp, guide_data(data, guide), cfg.train, cfg.mlp_seeds,
                               embeddings, progress)
        fields["guided_mlp_f1"][name] = f1_summary(record)
    # the MLP with its own learned attention (Table 3's TRAINED MLP row), for reference
    trained = guided_mlp(GuidedMLPConfig(vocab_size=len(vocab), embedding_dim=embeddings.shape[1], guide="trained"))
    record, trained_params = fit_models(out, f"mlp-trained{suffix}", trained, data, cfg.train, cfg.mlp_seeds,
                                        embeddings, progress)
    fields["guided_mlp_f1"]["its own attention (TRAINED MLP)"] = f1_summary(record)
    guides["TRAINED MLP's attention (first seed)"] = {"test": predict(trained, trained_params, data["test"])[1][0]}

    train_ids = data["train"]["input_ids"]
    polarity = unigram_polarity(train_ids, data["train"]["labels"], full["train"] > 0, len(vocab))
    for name in ("uniform", *(f"base, {e} epochs" for e in bases), "TRAINED MLP's attention (first seed)"):
        fields["polarity_focus"][name] = polarity_focus(guides[name]["test"], data["test"]["input_ids"], polarity)

    body = [f"# Diagnostic-MLP guide probe ({cfg.name})", "",
            "| base model | selected epoch | test F1 | train max / norm. entropy | test max / norm. entropy |",
            "|---|:-:|:-:|:-:|:-:|"]
    for name, b in fields["bases"].items():
        body.append(f"| {name} | {b['best_epoch']} | {b['test_f1']:.3f} | {b['train']['max']:.3f} / "
                    f"{b['train']['norm_entropy']:.3f} | {b['test']['max']:.3f} / {b['test']['norm_entropy']:.3f} |")
    body += ["", f"Guided MLP, test F1 median [min, max] over seeds {list(cfg.mlp_seeds)}:", "",
             "| guide | F1 |", "|---|:-:|"]
    body += [f"| {n} | {v['median']:.3f} [{v['min']:.3f}, {v['max']:.3f}] |"
             for n, v in fields["guided_mlp_f1"].items()]
    if "adversary" in fields:
        a = fields["adversary"]
        body += ["", f"The adversary (λ = {a['lambda']:g}, {a['epochs']} epochs): test F1 {a['test_f1']:.3f}, "
                 f"mean TVD {a['mean_tvd']:.3f} and JSD {a['mean_jsd']:.3f} from the {cfg.train.epochs}-epoch base model."]
    body += ["", "Weight on words that are polar on their own (test; |unigram log-odds| from train):", "",
             "| guide | weighted mean \\|log-odds\\| | top token is the most polar word |", "|---|:-:|:-:|"]
    body += [f"| {n} | {v['weighted_polarity']:.3f} | {v['top_is_most_polar']:.3f} |"
             for n, v in fields["polarity_focus"].items()]
    summary = write_report(out, cfg, body, [*notes, f"word vectors: {vectors_title}"], fields, started=started)
    return summary


def main(argv=None) -> dict:
    p = parser(__doc__, "dataset", "sst | imdb | path/to/data.csv, optionally :cpu or :smoke")
    p.add_argument("--select-on", choices=("dev", "test"), default="test",
                   help="model selection split (test = the paper's protocol, the default here)")
    p.add_argument("--mlp-seeds", type=int, default=None, help="only the first K of the config's 9 MLP seeds")
    p.add_argument("--adversary", action="store_true", help="add Table 3's ADVERSARY guide (trains the adversary)")
    args = p.parse_args(argv)
    with compilation(args):
        return finish(args.out, probe(get_config(args.dataset, select_on=args.select_on), args.out,
                                      mlp_seeds=args.mlp_seeds, adversary=args.adversary, progress=not args.quiet))


if __name__ == "__main__":
    main()
