"""Neely et al. (2022): ``python -m experiments.agreement.run sst[:cpu|:smoke] [--models bilstm]``.

Pipeline per task (every trained model checkpointed; finished steps are loaded, not redone):

1. data: the task's train / validation / test splits (the report names every deviation);
2. models: per seed, the softmax-attention model and the uniform-attention one (Table 3):
   the BiLSTM (``baselines``; all seeds in one vmapped run) and the transformer (smat's
   encoder + a classification head, fine-tuned per seed);
3. explanations: per seed, ``random.Random(seed).sample`` of the test instances, explained by
   every method of :mod:`agreement.attributions` in one jitted call per length bucket
   (probability of the predicted class, pad-embedding baseline, ``|sum over dims|``), plus
   attention: the BiLSTM's weights, the transformer's rollout and flow (scipy max-flow). Saved per
   (model, seed) under ``scores/`` for reuse (each transformer seed right after its training,
   with its test accuracy under ``runs/``: both are small, travel with ``results/``, and let a
   later checkout resume without the finished seeds' models);
4. agreement: per instance Kendall tau-b (and Spearman, Pearson, and Krishna et al.'s top-k
   feature and rank agreement) between every pair on the ranked tokens (the transformer: every
   real token but [CLS]/[SEP], which the reference also ranked: ``--set special_tokens=include``;
   the BiLSTM: the words); mean and std over all (seed, instance) values, per-seed means, and
   the count of undefined (constant) rankings, which are reported rather than dropped;
5. ``table.md`` (Tables 1-6 with the paper's numbers beside ours), ``aggregate.json``,
   heatmaps of the tau matrices and Figure-1 style token heatmaps.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import random
import time
import warnings
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from agreement import attention as attention_lib
from agreement import attributions, metrics
from baselines.models import BiLSTMConfig, PAD_ID, bilstm_classifier, content_mask, flat_pair
from baselines.train import encode_pairs, encode_split
from experiments.agreement import paper
from experiments.agreement.configs import AgreementConfig, get_config
from experiments.common import add_set_option, apply_overrides, compilation, finish, parser, write_report
from experiments.smat import report
from smat.data.batching import bucket_lengths, iterate_batches, map_batches
from smat.data.cache import save_arrays_atomic
from smat.data.vectors import embedding_matrix
from smat.data.vocab import build_vocabulary

__all__ = ["Explainable", "load_task", "explain", "agreement_table", "run", "main"]

LABELS = {"attention": "Attn", "flow": "Attn Flow", "lime": "LIME", "integrated_gradients": "Int-Grad",
          "deeplift": "DeepLIFT", "gradient_shap": "Grad-SHAP", "deep_shap": "Deep-SHAP"}
MEASURES = {"kendall_tau": metrics.kendall_tau, "spearman": metrics.spearman, "pearson": metrics.pearson}
RANK_MEASURES = ("kendall_tau", "spearman")  # functions of the order alone: computed on exact_ranks
TOP_K = {"feature_agreement": metrics.feature_agreement, "rank_agreement": metrics.rank_agreement}


# ----------------------------------------------------------------------------- data


def load_task(cfg: AgreementConfig) -> tuple[dict[str, tuple[list, np.ndarray]], list[str]]:
    """``{train, valid, test: (texts or (premise, hypothesis) pairs, labels)}`` and notes."""
    notes = []
    if cfg.task == "sst":
        from smat.data import load_sst_jain_wallace

        sst = load_sst_jain_wallace(length_filter=False)
        splits = {"train": sst.train, "valid": sst.dev, "test": sst.test}
        splits = {k: (list(v.texts), np.asarray(v.labels)) for k, v in splits.items()}
        notes.append("SST-2 (sentences, 6,920 / 872 / 1,821, as the paper) from Jain & Wallace's unfiltered file: "
                     "lower-cased and space-tokenised (the reference kept the trees' case)")
    elif cfg.task == "imdb":
        from experiments.wiegreffe_pinter.configs import get_config as wp_config
        from experiments.wiegreffe_pinter.run import load_splits

        wp, _, wp_notes = load_splits(wp_config("imdb"))
        texts, labels = wp["test"]
        keep = [i for i, t in enumerate(texts) if len(t.split()) <= cfg.max_words]
        splits = {"train": wp["train"], "valid": wp["dev"], "test": ([texts[i] for i in keep], labels[keep])}
        notes += wp_notes + [f"IMDb test reviews of at most {cfg.max_words} words: {len(keep)} of {len(texts)} "
                             "(the reference: 3,482 of J&W's 4,363)"]
    elif cfg.task == "snli":
        from smat.data import load_snli

        snli = load_snli()
        whole = lambda split: (list(split.pairs), np.asarray(split.labels))  # noqa: E731
        if snli.train is not None:
            splits = {"train": whole(snli.train), "valid": whole(snli.dev), "test": whole(snli.test)}
        else:
            order = np.random.default_rng(0).permutation(len(snli.dev.labels))
            held, rest = order[:1000], order[1000:]
            pick = lambda idx: ([snli.dev.pairs[i] for i in idx], np.asarray(snli.dev.labels)[idx])  # noqa: E731
            splits = {"train": pick(rest), "valid": pick(held), "test": whole(snli.test)}
            notes.append(f"SNLI train is not available offline: the models train on SNLI dev minus 1,000 held-out "
                         f"pairs ({len(rest)}) and select on those 1,000; test = SNLI test (the paper: 550k train)")
    else:
        from smat.data import load_mnli, load_qqp, load_xnli

        data = (load_mnli if cfg.task == "mnli" else load_qqp)()
        whole = lambda split: (list(split.pairs), np.asarray(split.labels))  # noqa: E731
        if cfg.task == "mnli":  # the reference: train, dev matched, and XNLI's English test pairs
            splits = {"train": whole(data.train), "valid": whole(data.dev), "test": whole(load_xnli("en").test)}
            notes.append("mnli: train, validation = the matched dev set, test = XNLI 1.0's English test pairs "
                         "(MultiNLI has no labelled test set; the reference's choice)")
        else:
            order = np.random.default_rng(0).permutation(len(data.train.labels))
            held, rest = order[:2000], order[2000:]
            pick = lambda idx: ([data.train.pairs[i] for i in idx], np.asarray(data.train.labels)[idx])  # noqa: E731
            splits = {"train": pick(rest), "valid": pick(held), "test": whole(data.dev)}
            notes.append("qqp: test = GLUE's dev set, validation = 2,000 held-out train pairs (the reference's "
                         "80 / 10 / 10 Quora split is an unpublished file)")
    rng = np.random.default_rng(0)
    for split, cap in (("train", cfg.train_examples), ("valid", cfg.valid_examples), ("test", cfg.test_examples)):
        texts, labels = splits[split]
        if cap and cap < len(labels):
            keep = np.sort(rng.permutation(len(labels))[:cap])
            splits[split] = ([texts[i] for i in keep], labels[keep])
            notes.append(f"{split}: a seeded sample of {cap} of {len(labels)} examples")
    return splits, notes


# ---------------------------------------------------------------------------- models


class Explainable(NamedTuple):
    """What the study needs of a classifier, as pure functions of ``(params, batch)``.

    Attributes:
      name: "bilstm" or "transformer".
      embed: ``(params, batch) -> [batch, seq, dim]``: what attributions are taken against.
      logits: ``(params, batch, embeddings) -> [batch, classes]``.
      baseline: ``(params, batch) -> [batch, seq, dim]``: the pad-token reference.
      features: ``(batch) -> [batch, seq]`` bool: the tokens explained and ranked.
      attention: ``(params, batch) -> {"attention": [batch, seq]}`` (and ``"attentions"``
        [layers, batch, heads, seq, seq] for attention flow).
      seq_keys: per-token fields of its batches.
      tokens: ``ids [seq] -> list[str]`` for the figures.
    """

    name: str
    embed: Callable
    logits: Callable
    baseline: Callable
    features: Callable
    attention: Callable
    seq_keys: tuple[str, ...]
    tokens: Callable


def _bilstm(model, vocab) -> Explainable:
    def logits(params, batch, embeddings):
        return model.apply(params, batch, embeddings=embeddings)[0]

    def baseline(params, batch):
        table = params["premise"]["embedding"] if model.config.pair else params["embedding"]
        return jnp.broadcast_to(table[PAD_ID], (*batch["input_ids"].shape, table.shape[-1]))

    def attention(params, batch):
        return {"attention": model.apply(params, batch)[1]["attention"]}

    return Explainable("bilstm", model.embed, logits, baseline, content_mask, attention,
                       ("input_ids", "attention_mask", "segment_ids"),
                       lambda ids: [vocab.words[i] for i in ids])


def _transformer(encoder, tokenizer, flow: bool, specials: bool) -> Explainable:
    from smat.teacher import encoder_teacher

    teacher_fn = encoder_teacher(encoder)

    def embed(params, batch):
        return encoder.embed(params, batch["input_ids"], batch.get("token_type_ids"))

    def logits(params, batch, embeddings):
        return teacher_fn(params, batch, embeddings=embeddings).logits

    def baseline(params, batch):  # LN(E[pad] + P[pos] (+ T)): the reference's pad embedding with positions
        pad = jnp.full_like(batch["input_ids"], encoder.config.pad_token_id)
        return encoder.embed(params, pad, batch.get("token_type_ids"))

    def attention(params, batch):
        out = encoder.encode(params, embed(params, batch), batch["attention_mask"], output_attentions=True)
        result = {"attention": attention_lib.rollout(out.attentions, batch["attention_mask"])}
        return result | ({"attentions": out.attentions} if flow else {})

    def features(batch):
        real = batch["attention_mask"] > 0
        return real if specials else real & (batch["special_mask"] == 0)

    return Explainable("transformer", embed, logits, baseline, features, attention,
                       ("input_ids", "attention_mask", "token_type_ids", "special_mask"),
                       lambda ids: [tokenizer.id_to_token(int(i)) for i in ids])


# LIME, integrated gradients and Grad-SHAP run their draws in chunks of (draws x instances)
# sequences: at 128 tokens as many as the SST CPU plan ran at 16 instances (LIME 100 x 16, IG
# 10 x 16, Grad-SHAP 5 x 16), and for a transformer, whose attention memory grows with seq^2,
# proportionally fewer at longer sequences (IMDb's 320 tokens: LIME 16 samples, IG 1 path
# point at 16 instances; the SST chunks asked XLA for 29 GB there on the 2-core machine,
# 2026-12-02). The values do not depend on the chunking (beyond float rounding).
CHUNK_SEQUENCES = {"lime": 1600, "integrated_gradients": 160, "gradient_shap": 80}
CHUNK_AT = 128


def chunk_draws(method: str, batch: int, seq: int, quadratic: bool) -> int:
    """Draws (LIME samples, IG path points, Grad-SHAP samples) per chunk for ``batch`` x ``seq``."""
    sequences = CHUNK_SEQUENCES[method] * ((CHUNK_AT / max(seq, CHUNK_AT)) ** 2 if quadratic else 1.0)
    return max(1, int(sequences // batch))


def _settings(cfg: AgreementConfig, method: str, reference, stack, shape: tuple[int, int], quadratic: bool) -> dict:
    draws = functools.partial(chunk_draws, batch=shape[0], seq=shape[1], quadratic=quadratic)
    chunk = {"lime": {"n_samples": cfg.lime_samples, "baseline": reference,
                      "samples_per_batch": min(100, cfg.lime_samples, draws("lime"))},
             "integrated_gradients": {"steps": cfg.ig_steps, "baseline": reference,
                                      "steps_per_batch": min(10, cfg.ig_steps, draws("integrated_gradients"))},
             "deeplift": {"baseline": reference},
             "gradient_shap": {"n_samples": cfg.shap_samples, "baselines": stack,
                               "samples_per_batch": min(cfg.shap_samples, draws("gradient_shap"))},
             "deep_shap": {"baselines": stack}}
    return chunk[method] | {"output": cfg.output}


def explain(model: Explainable, cfg: AgreementConfig) -> Callable:
    """The jitted ``(params, batch, key) -> {method: [batch, seq] |scores|, ...}`` of every method."""

    @jax.jit
    def run(params, batch, key):
        embeddings = model.embed(params, batch)
        mask = model.features(batch)
        forward = lambda e: model.logits(params, batch, e)  # noqa: E731
        logits = forward(embeddings)
        reference = model.baseline(params, batch)
        stack = jnp.broadcast_to(reference, (cfg.shap_baselines, *reference.shape))
        out = {"logits": logits, "features": mask}
        for method, k in zip(cfg.methods, jax.random.split(key, len(cfg.methods))):
            fn = attributions.get(method)
            out[method] = jnp.abs(fn(forward, embeddings, mask, None, key=k,
                                     **_settings(cfg, method, reference, stack, mask.shape,
                                                 model.name == "transformer")))
        return out | model.attention(params, batch)

    return run


def _explain_split(model: Explainable, run: Callable, params, arrays: dict, cfg: AgreementConfig, key,
                   progress: bool, desc: str) -> dict[str, np.ndarray]:
    """Runs ``run`` (:func:`explain`) over instances in length buckets; outputs at the split's full width."""
    n, width = arrays["input_ids"].shape
    fields = {k: v for k, v in arrays.items() if k in model.seq_keys}
    buckets = bucket_lengths(width, step=cfg.explain_bucket, minimum=cfg.explain_bucket)
    out: dict[str, np.ndarray] = {}
    batches = iterate_batches(fields, arrays["lengths"], cfg.explain_batch, seed=None, buckets=buckets,
                              seq_keys=model.seq_keys)
    for i, batch in enumerate(tqdm(batches, total=-(-n // cfg.explain_batch), desc=desc, disable=not progress)):
        index, valid = batch.pop("index"), batch.pop("valid") > 0
        result = jax.device_get(run(params, {k: jnp.asarray(v) for k, v in batch.items()}, jax.random.fold_in(key, i)))
        attentions = result.pop("attentions", None)
        if attentions is not None:  # Table 4: max-flow per instance, on the host
            result["flow"] = attention_lib.attention_flow(attentions, batch["attention_mask"])
        for name, value in result.items():
            value = np.asarray(value)
            if name not in out:
                shape = (n, width) if value.ndim == 2 and name != "logits" else (n, *value.shape[1:])
                out[name] = np.zeros(shape, value.dtype)
            if out[name].ndim == 2 and name != "logits":
                out[name][index[valid], :value.shape[1]] = value[valid]
            else:
                out[name][index[valid]] = value[valid]
    return out


# -------------------------------------------------------------------------- training


def _bilstm_models(cfg: AgreementConfig, out: Path, splits, notes, progress) -> tuple[Explainable, dict, dict]:
    from experiments.wiegreffe_pinter.run import config_vectors, fit_models

    texts = splits["train"][0]
    words = [" ".join(p) for p in texts] if cfg.pair else texts
    vocab = build_vocabulary(words)
    vectors, vectors_name = config_vectors(cfg, vocab.words, notes)
    allennlp = cfg.embedding_init == "allennlp"
    embeddings, found = embedding_matrix(vocab.words, vectors, oov=cfg.embedding_init,
                                         pad_id=None if allennlp else PAD_ID)
    init = ("drawn from N(mean, std) of the vectors, as the reference's AllenNLP embedding" if allennlp else
            "start at zero (the reference: drawn at random)")
    notes.append(f"BiLSTM: vocabulary {len(vocab)} train words, {found.mean():.1%} in {vectors_name}; OOV rows and "
                 f"the pad row {init}")
    encode = (lambda t, y: encode_pairs(vocab, [p for p, _ in t], [h for _, h in t], y)) if cfg.pair else \
        (lambda t, y: encode_split(vocab, t, y))
    data = {name: encode(*splits[split]) for name, split in (("train", "train"), ("dev", "valid"), ("test", "test"))}
    classes = int(max(splits["train"][1].max(), splits["test"][1].max())) + 1
    arch = BiLSTMConfig(vocab_size=len(vocab), embedding_dim=embeddings.shape[1],
                        num_classes=1 if classes == 2 else classes, pair=cfg.pair, zero_pad_row=not allennlp)
    wrap = flat_pair if cfg.pair else (lambda m: m)
    params, accuracy = {}, {}
    for variant in ("softmax", "uniform") if cfg.uniform else ("softmax",):
        model = wrap(bilstm_classifier(dataclasses.replace(arch, attention="additive" if variant == "softmax"
                                                           else "uniform")))
        record, stacked = fit_models(out, f"bilstm-{variant}", model, data, cfg.bilstm_train, cfg.seeds, embeddings,
                                     progress)
        accuracy[variant] = record["metrics"]["test"]["accuracy"]
        if variant == "softmax":
            explainable = _bilstm(model, vocab)
            params = {s: jax.tree.map(lambda x, i=i: x[i], stacked) for i, s in enumerate(cfg.seeds)}
    if cfg.pair:
        notes.append("BiLSTM pairs: Jain & Wallace's pair model (attention over the premise, conditioned on the "
                     "hypothesis); the reference attended over both sequences, so here attention is compared on the "
                     "premise words only, the other methods on both sequences' words")
    return explainable, params, {"test": data["test"], "accuracy": accuracy}


def _transformer_models(cfg: AgreementConfig, out: Path, splits, notes, progress) -> tuple[Explainable, dict, dict]:
    from smat.data.tokenization import encode_texts, load_tokenizer
    from smat.models import HubUnavailableError, build, load_pretrained
    from smat.teacher import encoder_teacher, fit_teacher, with_classification_head

    try:
        pretrained, name = load_pretrained(cfg.transformer), cfg.transformer
    except HubUnavailableError as err:
        pretrained, name = load_pretrained(cfg.fallback_transformer), cfg.fallback_transformer
        notes.append(f"OFFLINE SUBSTITUTION: {cfg.transformer} cannot be loaded here ({type(err).__name__}); the "
                     f"transformer is {name} ({pretrained.config.num_layers} layers x {pretrained.config.num_heads} "
                     "heads, BERT's pooler + linear head) fine-tuned per seed")
    tokenizer = load_tokenizer(name)

    def arrays(texts, labels):
        first, second = ([p for p, _ in texts], [h for _, h in texts]) if cfg.pair else (texts, None)
        enc = encode_texts(tokenizer, first, second, max_length=cfg.max_length)
        width = int(enc.lengths.max())
        mask = enc.attention_mask[:, :width]
        return {"input_ids": enc.input_ids[:, :width], "attention_mask": mask,
                "special_mask": ((enc.word_ids[:, :width] < 0) & (mask > 0)).astype(np.int32),
                "token_type_ids": enc.token_type_ids[:, :width], "lengths": enc.lengths,
                "targets": np.asarray(labels, np.int32)}

    train_texts, train_labels = splits["train"]
    if cfg.transformer_examples and cfg.transformer_examples < len(train_labels):
        keep = np.sort(np.random.default_rng(1).permutation(len(train_labels))[:cfg.transformer_examples])
        train_texts, train_labels = [train_texts[i] for i in keep], train_labels[keep]
        notes.append(f"transformer: fine-tuned on a seeded sample of {len(keep)} training examples")
    data = {"train": arrays(train_texts, train_labels), "valid": arrays(*splits["valid"]),
            "test": arrays(*splits["test"])}
    cut = int((data["test"]["lengths"] >= cfg.max_length).sum())
    if cut:
        notes.append(f"transformer: {cut} test inputs reach {cfg.max_length} tokens and are truncated")
    notes.append("transformer: [CLS] / [SEP] " + ("are ranked with the words (the reference)" if
                 cfg.special_tokens == "include" else "are neither perturbed nor ranked (special_tokens='exclude'; "
                 "the reference ranked them too)"))
    classes = int(max(splits["train"][1].max(), splits["test"][1].max())) + 1
    params, accuracy = {}, {}
    for variant in ("softmax", "uniform") if cfg.uniform else ("softmax",):
        encoder = build(dataclasses.replace(pretrained.encoder.config, uniform_attention=variant == "uniform"))
        accuracy[variant] = []
        for seed in cfg.seeds:
            with_head, start = with_classification_head(encoder, pretrained.params, classes, jax.random.key(seed))
            if variant == "softmax":
                explainable = _transformer(with_head, tokenizer, cfg.flow, cfg.special_tokens == "include")
            record = out / "runs" / f"transformer-{variant}-{seed}.json"
            if record.exists():
                accuracy[variant].append(json.loads(record.read_text())["test_accuracy"])
                if variant != "softmax" or _scores_path(out, "transformer", seed).exists():
                    continue  # finished in an earlier run (record and scores travel with results/): no model needed
            teacher_fn = encoder_teacher(with_head)
            (out / "models").mkdir(parents=True, exist_ok=True)
            trained, history = fit_teacher(teacher_fn, start, data["train"], data["valid"],
                                           dataclasses.replace(cfg.transformer_train, seed=seed),
                                           checkpoint=out / "models" / f"transformer-{variant}-{seed}.npz",
                                           progress=progress)
            if not record.exists():
                accuracy[variant].append(_accuracy(teacher_fn, trained, data["test"]))
                report.write_json(record, {"history": history, "test_accuracy": accuracy[variant][-1]})
            if variant == "softmax":
                params[seed] = trained
                # explained now, not after every seed is trained: a killed run keeps each finished seed
                _scores(dataclasses.replace(cfg, seeds=(seed,)), out, explainable, params, data["test"], progress)
    return explainable, params, {"test": data["test"], "accuracy": accuracy}


def _accuracy(teacher_fn, params, arrays) -> float:
    predict = jax.jit(lambda p, b: teacher_fn(p, b).logits.argmax(-1))  # params an argument, not constants
    inputs = {k: arrays[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    pred = map_batches(lambda b: {"pred": predict(params, b)}, inputs, arrays["lengths"], 64,
                       seq_keys=tuple(inputs))["pred"]
    return float((pred == arrays["targets"]).mean())


# ------------------------------------------------------------------------- agreement


def _pairs(names) -> list[tuple[str, str]]:
    return list(itertools.combinations(names, 2))


def exact_ranks(x: np.ndarray) -> np.ndarray:
    """Dense ranks of each row's values (ties share one), as float32, NaN kept.

    The order-based measures see the order and ties of the scores at their own precision:
    attention flow is float64, and casting it to float32 on device would merge nearby values
    into ties. Dense ranks are exact in float32 below 2**24 entries per row.
    """
    x = np.asarray(x)
    order = np.argsort(x, axis=-1, kind="stable")
    ascending = np.take_along_axis(x, order, axis=-1)
    new = np.concatenate([np.zeros((*x.shape[:-1], 1), np.int64),
                          (np.diff(ascending, axis=-1) != 0).astype(np.int64)], axis=-1)
    ranks = np.empty(x.shape, np.int64)
    np.put_along_axis(ranks, order, np.cumsum(new, axis=-1), axis=-1)
    return np.where(np.isnan(x), np.nan, ranks).astype(np.float32)


def correlations(scores: dict[str, np.ndarray], names, premise_only: bool = False, top_k: int = 5) -> dict[str, dict]:
    """Per-instance agreement ``{measure: {"a|b": [instances]}}`` (NaN where undefined): the
    :data:`MEASURES` and the :data:`TOP_K` agreements at ``top_k`` (Krishna et al.; on the
    magnitudes, which is what the saved scores are).

    Tokens ranked: ``scores["features"]``; with ``premise_only`` (the BiLSTM's pair attention),
    pairs with attention use its support (the premise words) only.
    """
    features = np.asarray(scores["features"]).astype(bool)
    pairs = _pairs(names)
    masks = np.stack([features & (scores["segment_ids"] == 0) if premise_only and "attention" in pair else features
                      for pair in pairs])
    ranks = {n: exact_ranks(np.abs(scores[n])) for n in names}  # |.|: a no-op on the saved scores
    raw = {n: np.asarray(scores[n], np.float32) for n in names}
    stacked = [np.stack([given[side] for side in pair]) for given in (ranks, raw) for pair in zip(*pairs)]
    values = jax.device_get(_pair_measures(*stacked, masks, top_k=top_k))  # every pair at once: [pairs, rows]
    return {measure: {f"{a}|{b}": np.asarray(values[measure][i], np.float64) for i, (a, b) in enumerate(pairs)}
            for measure in (*MEASURES, *TOP_K)}  # jit returns dicts key-sorted


@functools.partial(jax.jit, static_argnames="top_k")
def _pair_measures(ranks_a, ranks_b, raw_a, raw_b, masks, *, top_k: int) -> dict[str, jax.Array]:
    """The :data:`MEASURES` and :data:`TOP_K` of pairs stacked on a leading axis: one program per shape."""
    out = {}
    for measure, fn in MEASURES.items():
        corr = fn(*((ranks_a, ranks_b) if measure in RANK_MEASURES else (raw_a, raw_b)), masks)
        out[measure] = corr.value.astype(jnp.float32)  # NaN where undefined
    for measure, fn in TOP_K.items():
        out[measure] = fn(ranks_a, ranks_b, top_k, masks).astype(jnp.float32)
    return out


def position_bias(scores: dict[str, np.ndarray], names, premise_only: bool = False) -> dict[str, np.ndarray]:
    """Per instance, Kendall τ between each method's scores and the token position (> 0: later tokens rank higher).

    A diagnostic for agreement between methods that share, or oppose, a preference for early
    or late tokens (attention flow on SST favours the first words). Same tokens as
    :func:`correlations` (the premise only for the pair BiLSTM's attention).
    """
    features = np.asarray(scores["features"]).astype(bool)
    masks = np.stack([features & (scores["segment_ids"] == 0) if premise_only and name == "attention" else features
                      for name in names])
    ranks = np.stack([exact_ranks(scores[name]) for name in names])
    position = np.broadcast_to(np.arange(features.shape[-1], dtype=np.float32), ranks.shape)
    values = np.asarray(_tau(ranks, position, masks), np.float64)  # every method at once: [methods, rows]
    return dict(zip(names, values))


@jax.jit
def _tau(a, b, mask) -> jax.Array:
    return metrics.kendall_tau(a, b, mask).value.astype(jnp.float32)  # NaN where undefined


def agreement_table(model: str, task: str, summary: dict, names, *, std: bool) -> list[str]:
    """Tables 1/2 (means) or 5/6 (mean +- std): ours, with the paper's value beside it."""
    header = ["", *(LABELS[n] for n in names[1:])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, a in enumerate(names[:-1]):
        cells = [LABELS[a]]
        for j, b in enumerate(names[1:], start=1):
            if j <= i:
                cells.append("")
                continue
            ours = summary[f"{a}|{b}"]
            theirs = paper.tau(model, task, a, b)
            text = f"{ours['mean']:.3f}" + (f" ± {ours['std']:.3f}" if std else "")
            if theirs is not None:
                text += f" ({theirs[0]:.3f}" + (f" ± {theirs[1]:.3f})" if std else ")")
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _heatmap(summary: dict, names, title: str, path: Path, model: str, task: str) -> Path:
    from matplotlib.figure import Figure

    k = len(names)
    ours, theirs = np.full((k, k), np.nan), np.full((k, k), np.nan)
    for i, j in itertools.product(range(k), range(k)):
        if i == j:
            ours[i, j] = theirs[i, j] = 1.0
        elif f"{names[min(i, j)]}|{names[max(i, j)]}" in summary:
            ours[i, j] = summary[f"{names[min(i, j)]}|{names[max(i, j)]}"]["mean"]
            published = paper.tau(model, task, names[i], names[j])
            theirs[i, j] = np.nan if published is None else published[0]
    fig = Figure(figsize=(9.5, 4.2), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, matrix, label in ((axes[0], ours, "ours"), (axes[1], theirs, "paper")):
        image = ax.imshow(matrix, vmin=-0.2, vmax=1.0, cmap="Blues")
        ax.set_xticks(range(k), [LABELS[n] for n in names], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(k), [LABELS[n] for n in names], fontsize=8)
        for i, j in itertools.product(range(k), range(k)):
            if not np.isnan(matrix[i, j]):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > 0.6 else "black")
        ax.set_title(label, fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8, label="mean Kendall τ")
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _min_max(row: np.ndarray) -> np.ndarray:
    span = row.max() - row.min()
    return (row - row.min()) / span if span > 0 else np.zeros_like(row)


def _token_heatmap(tokens: list[str], rows: dict[str, np.ndarray], title: str, path: Path) -> Path:
    """Figure 1: one instance, one row per explanation, each min-max scaled (tau sees only the order).

    Min-max rather than / max: attention flow gives every token nearly the same large value, which
    / max paints as one dark row and hides the order the agreement is computed on.
    """
    from matplotlib.figure import Figure

    matrix = np.stack([_min_max(r) for r in rows.values()])
    fig = Figure(figsize=(max(6.0, 0.32 * len(tokens) + 1.5), 0.4 * len(rows) + 1.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(tokens)), tokens, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [LABELS[n] for n in rows], fontsize=8)
    fig.colorbar(image, ax=ax, shrink=0.8, label="(|score| - min) / (max - min)")
    ax.set_title(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


# ------------------------------------------------------------------------------- run


def _scores_path(out: Path, model_name: str, seed: int) -> Path:
    return out / "scores" / f"{model_name}-{seed}.npz"


def _scores(cfg: AgreementConfig, out: Path, model: Explainable, params: dict, test: dict,
            progress: bool) -> list[dict]:
    """Per seed of ``cfg.seeds``, the explanations of its sample of test instances (computed once,
    then loaded; ``params`` needs only the seeds not explained yet).

    The files hold scores, segment ids and the instances' indices into ``test``, not the token
    ids (those are the data's): a run's ``scores/`` can be committed, and a later checkout resumes
    with the seeds explained there without their models.
    """
    per_seed, explain_fn = [], None
    for seed in cfg.seeds:
        path = _scores_path(out, model.name, seed)
        if not path.exists():
            n = len(test["lengths"])
            pick = np.sort(random.Random(seed).sample(range(n), min(cfg.instances, n)))
            subset = {k: v[pick] for k, v in test.items()}
            t0 = time.perf_counter()
            explain_fn = explain_fn or explain(model, cfg)
            scores = _explain_split(model, explain_fn, params[seed], subset, cfg, jax.random.key(seed), progress,
                                    f"{model.name} seed {seed}: explain")
            segments = subset.get("segment_ids", subset.get("token_type_ids"))  # BiLSTM / transformer pairs
            segments = np.zeros_like(subset["input_ids"]) if segments is None else segments
            scores |= {"index": pick, "segment_ids": segments,
                       "seconds": np.asarray(time.perf_counter() - t0)}
            save_arrays_atomic(path, scores)
        scores = dict(np.load(path))
        scores["input_ids"] = test["input_ids"][scores["index"]]
        per_seed.append(scores)
    return per_seed


def _summaries(per_seed: list[dict], names, premise_only: bool, top_k: int) -> tuple[dict[str, dict], list[dict]]:
    """``{measure: {"a|b": summary}}`` over every (seed, instance), tau also with per-seed means;
    and the per-seed, per-instance values (:func:`correlations`)."""
    corr = [correlations(s, names, premise_only=premise_only, top_k=top_k) for s in per_seed]
    out = {m: {pair: {k: float(v) for k, v in metrics.summarize(np.concatenate([c[m][pair] for c in corr])).items()}
               for pair in corr[0][m]} for m in corr[0]}
    for pair, summary in out["kendall_tau"].items():
        means = [float(np.nanmean(c["kendall_tau"][pair])) for c in corr]
        summary |= {"seed_means": means, "seed_std": float(np.std(means, ddof=1)) if len(means) > 1 else 0.0}
    return out, corr


def figure_one_instances(values: dict[str, dict], short: np.ndarray) -> dict[str, tuple[int, float, float]]:
    """The paper's two Figure-1 examples among the ``short`` instances of one seed: ``"alike"``,
    where the methods pick the same top tokens but rank the rest differently (the largest
    mean top-k feature agreement among instances with a mean tau below the median; Figure 1a's
    SST example: "the methods are all highlighting roughly the same words", mean tau 0.01),
    and ``"disagree"``, the lowest mean tau (Figure 1b). Values: (row, mean tau, mean feature
    agreement) over every pair of explanations."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (one-token instances) stay NaN
        tau = np.nanmean(np.stack(list(values["kendall_tau"].values())), axis=0)
        agree = np.nanmean(np.stack(list(values["feature_agreement"].values())), axis=0)
    candidates = short & ~np.isnan(tau) & ~np.isnan(agree)
    if not candidates.any():
        candidates = ~np.isnan(tau) & ~np.isnan(agree)
    if not candidates.any():
        return {"alike": (0, float("nan"), float("nan"))}
    rows = np.flatnonzero(candidates)
    low = rows[tau[rows] <= np.median(tau[rows])]
    alike = int(low[np.argmax(agree[low])])
    disagree = int(rows[np.argmin(tau[rows])])
    return {name: (row, float(tau[row]), float(agree[row])) for name, row in (("alike", alike), ("disagree", disagree))}


def _flow_table(cfg: AgreementConfig, tau: dict) -> list[str]:
    published = paper.FLOW_TAU.get(cfg.task, {})
    cells = [f"{tau[f'{m}|flow']['mean']:.3f}" + (f" ({published[m]:.3f})" if m in published else "")
             for m in cfg.methods]
    return ["## transformer: attention flow vs the attribution methods (Table 4)", "",
            "| | " + " | ".join(LABELS[m] for m in cfg.methods) + " |", "|---|" + "---|" * len(cfg.methods),
            "| Attn Flow | " + " | ".join(cells) + " |", f"| rollout vs flow | {tau['attention|flow']['mean']:.3f} |", ""]


def _measures_table(model_name: str, summary: dict, names, k: int) -> list[str]:
    """Every measure per pair (means over all instances): the rank correlations and Krishna et
    al.'s top-k agreements, which ask whether two methods pick the same few tokens."""
    columns = [("kendall_tau", "Kendall τ"), ("spearman", "Spearman ρ"), ("pearson", "Pearson r"),
               ("feature_agreement", f"feature agr. @{k}"), ("rank_agreement", f"rank agr. @{k}")]
    lines = [f"### {model_name}: every measure per pair (means; top-k: Krishna et al. 2022, the {k} tokens of "
             "largest magnitude, k capped at an instance's tokens)", "",
             "| pair | " + " | ".join(label for _, label in columns) + " |", "|---|" + "---|" * len(columns)]
    for a, b in _pairs(names):
        lines.append(f"| {LABELS[a]} - {LABELS[b]} | " +
                     " | ".join(f"{summary[m][f'{a}|{b}']['mean']:.3f}" for m, _ in columns) + " |")
    return lines + [""]


def _accuracy_rows(model_name: str, task: str, accuracy: dict) -> list[str]:
    rows = []
    for variant in ("uniform", "softmax"):
        if variant in accuracy:
            values = np.asarray(accuracy[variant], np.float64)
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            published = paper.ACCURACY.get(model_name, {}).get(task, {}).get(variant)
            rows.append(f"| {model_name} | {variant} | {values.mean():.3f} ± {spread:.3f} | " +
                        (f"{published[0]:.3f} ± {published[1]:.3f}" if published else "") + " |")
    return rows


def _report_model(cfg: AgreementConfig, out: Path, model: Explainable, per_seed: list[dict], accuracy: dict,
                  body: list[str], figures: list[Path]) -> dict:
    """Appends one model's tables and figures; returns its ``aggregate.json`` entry."""
    flow = model.name == "transformer" and cfg.flow
    names = ("attention", *cfg.methods)
    ranked = names + (("flow",) if flow else ())
    summary, per_instance = _summaries(per_seed, ranked, premise_only=cfg.pair and model.name == "bilstm",
                                       top_k=cfg.top_k)
    tau = summary["kendall_tau"]
    table = ("1", "5") if model.name == "transformer" else ("2", "6")
    attn = "attention rollout" if model.name == "transformer" else "attention weights"
    instances = sum(len(s["index"]) for s in per_seed)
    body += [f"## {model.name}: mean Kendall τ (Table {table[0]}; {attn}; {instances} instances over "
             f"{len(cfg.seeds)} seeds; the paper's value in parentheses)", "",
             *agreement_table(model.name, cfg.task, tau, names, std=False), "",
             f"### {model.name}: mean ± std (Table {table[1]})", "",
             *agreement_table(model.name, cfg.task, tau, names, std=True), "",
             f"Std over instances (as the paper's); the std of the {len(cfg.seeds)} per-seed means is in "
             "aggregate.json (`seed_std`). Deep-SHAP with the reference's two identical pad baselines is "
             "DeepLIFT exactly, so their τ is 1 here; the paper's 0.45-0.87 for that pair is not explained by "
             "the reference code (Captum's DeepLiftShap over identical baselines equals its DeepLift too).", ""]
    undefined = sorted({int(v["undefined"]) for v in tau.values()} - {0})
    if undefined:
        body += [f"Undefined τ (a constant ranking, e.g. a one-word input), counted and left out of the means: "
                 f"{', '.join(map(str, undefined))} instance(s) per pair (aggregate.json has each count).", ""]
    if flow:
        body += _flow_table(cfg, tau)
    body += _measures_table(model.name, summary, ranked, cfg.top_k)
    positions = [position_bias(s, ranked, premise_only=cfg.pair and model.name == "bilstm") for s in per_seed]
    position_tau = {n: {k: float(v) for k, v in metrics.summarize(np.concatenate([p[n] for p in positions])).items()}
                    for n in ranked}
    body += [f"### {model.name}: position bias (mean Kendall τ of each method's scores with the token position; "
             "> 0: later tokens rank higher)", "",
             "| " + " | ".join(LABELS[n] for n in ranked) + " |", "|" + "---|" * len(ranked),
             "| " + " | ".join(f"{position_tau[n]['mean']:.3f} ± {position_tau[n]['std']:.3f}" for n in ranked) + " |",
             ""]
    figures.append(_heatmap(tau, names, f"{cfg.name}: {model.name} mean Kendall τ", out / f"tau_{model.name}.png",
                            model.name, cfg.task))
    first = per_seed[0]
    examples = figure_one_instances(per_instance[0], first["features"].sum(-1) <= 40)
    for kind, (row, mean_tau, mean_agree) in examples.items():
        keep = np.flatnonzero(first["features"][row])
        figures.append(_token_heatmap(
            model.tokens(first["input_ids"][row][keep]), {n: first[n][row][keep] for n in ranked},
            f"{cfg.name}: {model.name}, test instance {int(first['index'][row])} (seed {cfg.seeds[0]}); "
            f"{'methods alike in their top tokens' if kind == 'alike' else 'lowest agreement'}: mean τ "
            f"{mean_tau:.2f}, mean feature agr. @{cfg.top_k} {mean_agree:.2f} over every pair",
            out / (f"tokens_{model.name}.png" if kind == "alike" else f"tokens_{model.name}_{kind}.png")))
    return {**summary, "top_k": cfg.top_k, "position_tau": position_tau, "test_accuracy": accuracy,
            "explain_seconds_per_instance": [float(s["seconds"]) / len(s["index"]) for s in per_seed]}


def run(cfg: AgreementConfig, out_root: Path = Path("results"), *, progress: bool = True) -> dict:
    """Trains (or loads) every model, explains, scores agreement and writes the report."""
    started = time.perf_counter()
    out = out_root / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    splits, notes = load_task(cfg)
    builders = {"bilstm": _bilstm_models, "transformer": _transformer_models}
    body, figures, fields = [f"# Agreement study (Neely et al. 2022): {cfg.task}", ""], [], {"models": {}}
    accuracy_rows = []
    for model_name in cfg.models:
        model, params, extra = builders[model_name](cfg, out, splits, notes, progress)
        per_seed = _scores(cfg, out, model, params, extra["test"], progress)
        fields["models"][model_name] = _report_model(cfg, out, model, per_seed, extra["accuracy"], body, figures)
        accuracy_rows += _accuracy_rows(model_name, cfg.task, extra["accuracy"])
    body += ["## Test accuracy, uniform vs softmax attention (Table 3; mean ± std over seeds)", "",
             "| model | attention | ours | paper |", "|---|---|---|---|", *accuracy_rows]
    return write_report(out, cfg, body, notes, fields, started=started, figures=figures)


def main(argv=None) -> dict:
    p = parser(__doc__, "config", "sst | imdb | snli | mnli | qqp, optionally :cpu or :smoke")
    p.add_argument("--models", default=None, help="comma-separated subset of bilstm,transformer")
    p.add_argument("--instances", type=int, default=None, help="explained test instances per seed (default: config)")
    add_set_option(p, "--set embedding_init=allennlp --set 'seeds=(87,)'")
    args = p.parse_args(argv)
    cfg = get_config(args.config)
    if args.models:
        cfg = dataclasses.replace(cfg, models=tuple(args.models.split(",")))
    if args.instances:
        cfg = dataclasses.replace(cfg, instances=args.instances, name=f"{cfg.name}-{args.instances}")
    cfg = apply_overrides(cfg, args.set)
    with compilation(args):
        return finish(args.out, run(cfg, args.out, progress=not args.quiet))


if __name__ == "__main__":
    main()
