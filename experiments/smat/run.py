"""Runs one SMaT table: ``python -m experiments.smat.run images[:demo|:smoke|:cpu] [--out results] [--set F=V]``.

Pipeline: data -> teacher (loaded, fine-tuned or trained from scratch; checkpointed) ->
one teacher cache for every row -> for each N, seed and row a student run (checkpointed
per epoch, skipped when its JSON exists) -> aggregate JSON, Markdown table (median
[q25:q75], underlined where the IQR is above "No explainer"'s), head heatmaps and
explanation figures. Killed runs resume; finished runs are never repeated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

import smat
from experiments.common import add_set_option, apply_overrides, compilation, finish, machine_name, parser, write_report
from experiments.smat import report
from experiments.smat.configs import PAPER, ROWS, ExperimentConfig, get_config
from smat import explainers
from smat.data.cache import save_arrays_atomic
from smat.data.sources import DataUnavailableError
from smat.metalearn import MetaConfig
from smat.models import HubUnavailableError, build, load_pretrained
from smat.teacher import encoder_teacher, fit_teacher, with_classification_head

__all__ = ["Task", "STUDENT_SIDE", "prepare_task", "student_data", "run_one", "run_experiment", "main"]


class Task(NamedTuple):
    """Everything the student runs need, built once per experiment."""

    teacher_fn: Callable
    teacher_params: Any
    student: smat.students.Student
    student_encoder_params: Any
    splits: dict  # pool / valid / test: per-example arrays with the teacher cache
    notes: list  # deviations from the paper, printed in the report
    display: dict  # "images" [n, h, w, c] uint8 or "tokens" list[list[str]] of the test examples drawn
    patch_size: int | None
    tokenizer: Any = None  # text tasks: the teacher's tokenizer (plausibility re-tokenizes other data with it)
    teacher_digest: str = ""  # :func:`teacher_digest` of ``teacher_params``; run records carry it


def _subset(arrays: dict, index) -> dict:
    return {k: v[index] for k, v in arrays.items()}


def _is_accuracy(history) -> bool:
    return all(h.get("valid_score", 0.0) >= 0.0 for h in history)


def _teacher(cfg: ExperimentConfig, out: Path, encoder, params, train, valid, notes, progress):
    teacher_fn = encoder_teacher(encoder)
    params, history = fit_teacher(teacher_fn, params, train, valid, cfg.teacher_train,
                                  checkpoint=out / "teacher.npz", progress=progress)
    best = max(h.get("valid_score", -np.inf) for h in history)
    metric = "accuracy" if _is_accuracy(history) else "-MSE"
    notes.append(f"teacher validation {metric} {best:.4f} after {len(history)} epoch(s) on {len(train['targets'])} "
                 f"examples ({cfg.teacher_train})")
    return teacher_fn, params


def _train_valid(n: int, teacher_examples: int | None,
                 valid_examples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Teacher train / valid indices: a seed-0 shuffle of the train split, the last 10% (at most
    5,000: CIFAR-100's 45k / 5k, as the reference) held out, train capped at ``teacher_examples``
    and valid at ``valid_examples``."""
    order = np.random.default_rng(0).permutation(n)
    n_valid = max(1, min(5000, n // 10))
    train_idx, valid_idx = order[:n - n_valid], order[n - n_valid:]
    return (train_idx[:teacher_examples] if teacher_examples else train_idx), valid_idx[:valid_examples]


def _image_normalization(path: Path) -> tuple[list[float], list[float]]:
    """The checkpoint's ``image_mean`` / ``image_std`` (``preprocessor_config.json``); ViT's 0.5 / 0.5 without one."""
    try:
        processor = json.loads((Path(path) / "preprocessor_config.json").read_text())
    except (OSError, ValueError):
        processor = {}
    return processor.get("image_mean", [0.5] * 3), processor.get("image_std", [0.5] * 3)


def _cifar_task(cfg: ExperimentConfig, out: Path, progress: bool, pretrained, cifar) -> Task:
    """Table 3 as in the paper: CIFAR-100's fine labels and a ViT checkpoint (ViT-B/16 in21k).

    The teacher is the checkpoint with a fresh head fine-tuned on 45k of the train images
    (selected on the other 5k); the students start from the same checkpoint with a fresh head
    and draw their N from those 45k, as the reference's did; their test split is the official
    one. Images stay 32 x 32 in memory and are resized to the checkpoint's size in the step.
    """
    from smat.data.batching import normalize_images, resize_images
    from smat.models.vit import resize_inputs

    size, labels = pretrained.config.image_size, cifar.meta["label_names"]
    mean, std = _image_normalization(pretrained.path)
    images, targets = cifar.train.images, np.asarray(cifar.train.labels, np.int32)
    train_idx, valid_idx = _train_valid(len(targets), cfg.teacher_examples, cfg.teacher_valid_examples)

    def pixels(x):
        return normalize_images(x, mean, std)

    encoder, params = with_classification_head(pretrained.encoder, pretrained.params, len(labels), jax.random.key(0))
    notes = [f"data: CIFAR-100 ({cifar.meta['source']}), {len(labels)} fine labels; teacher train / valid = "
             f"{len(train_idx)} / {len(valid_idx)} images of a seed-0 shuffle of train; student pool from the "
             f"teacher's train images, test from the official test split; images resized "
             f"{images.shape[1]} -> {size} px (bilinear on floats, in the jitted step; HF's processor resizes uint8 "
             f"and rounds), normalized with mean {mean} / std {std}; numpy default_rng(0) for the shuffle (the "
             f"reference's loader shuffled with seed 0 through HF datasets)",
             f"teacher: {cfg.teacher} with a fresh {len(labels)}-way head on [CLS] after the final LayerNorm "
             f"(HF's ViTForImageClassification; the reference's teacher pooled with its scalar mix); students: the "
             f"same checkpoint, a fresh one-dense head on the scalar mix of every layer (as the reference)"]
    train = {"pixel_values": pixels(images[train_idx]), "targets": targets[train_idx]}
    valid = {"pixel_values": pixels(images[valid_idx]), "targets": targets[valid_idx]}
    teacher_fn, teacher_params = _teacher(cfg, out, resize_inputs(encoder, size), params, train, valid, notes,
                                          progress)
    pool_n, valid_n, test_n = cfg.pool
    splits = {"pool": {"pixel_values": train["pixel_values"][:pool_n]},
              "valid": {"pixel_values": valid["pixel_values"][:valid_n]},
              "test": {"pixel_values": pixels(cifar.test.images[:test_n])}}
    student = smat.make_student(resize_inputs(pretrained.encoder, size), len(labels), head_activation=None,
                                head_dropout=0.0)
    # Figures overlay the 224-pixel grid of patches on the images at the size the model saw.
    shown = resize_images(jnp.asarray(cifar.test.images[:cfg.figure_examples], jnp.float32), size)
    display = {"images": np.asarray(jnp.clip(jnp.round(shown), 0, 255)).astype(np.uint8)}
    return Task(teacher_fn, teacher_params, student, pretrained.params, splits, notes, display,
                pretrained.config.patch_size)


def _images_task(cfg: ExperimentConfig, out: Path, progress: bool, student_head: str) -> Task:
    from smat.data import load_cifar100, load_digits, load_fashion_mnist
    from smat.data.batching import normalize_images

    notes = []
    if not cfg.teacher.startswith("scratch"):
        try:
            pretrained, cifar = load_pretrained(cfg.teacher), load_cifar100()
        except (HubUnavailableError, DataUnavailableError) as err:
            notes.append(f"OFFLINE SUBSTITUTION: {cfg.teacher} on CIFAR-100 is unavailable here ({type(err).__name__}); "
                         f"this run uses {cfg.fallback_teacher} instead.")
            cfg = dataclasses.replace(cfg, teacher_train=cfg.fallback_teacher_train or cfg.teacher_train)
        else:
            return _cifar_task(cfg, out, progress, pretrained, cifar)
    arch = cfg.teacher_arch
    try:
        data = load_fashion_mnist()
        name = "Fashion-MNIST"
        train_images, train_labels = data.train.images, data.train.labels
    except DataUnavailableError:
        data = load_digits(seed=0)
        name = "scikit-learn digits (Fashion-MNIST absent: apt-get install dataset-fashion-mnist)"
        arch = dataclasses.replace(arch, image_size=8, patch_size=2)
        train_images = np.concatenate([data.train.images, data.dev.images])
        train_labels = np.concatenate([data.train.labels, data.dev.labels])
        train_images = (train_images.astype(np.float32) * (255 / 16)).astype(np.uint8)
    test_images, test_labels = data.test.images, data.test.labels
    if name != "Fashion-MNIST":
        test_images = (test_images.astype(np.float32) * (255 / 16)).astype(np.uint8)
    notes.append(f"data: {name}; teacher: a ViT trained from scratch ({arch}); students: the same architecture "
                 "started from the base checkpoint the teacher was trained from (the analogue of the paper's public checkpoint)")

    train_idx, valid_idx = _train_valid(len(train_labels), cfg.teacher_examples, cfg.teacher_valid_examples)

    def arrays(images, labels):
        return {"pixel_values": normalize_images(images), "targets": labels.astype(np.int32)}

    # The paper's teacher and students start from one public checkpoint. From scratch, its
    # analogue is a base model: the same ViT trained for ``base_epochs`` on the teacher's
    # data; the teacher continues from it, the students start from it (fresh head).
    encoder = build(arch)
    train, valid = (arrays(train_images[train_idx], train_labels[train_idx]),
                    arrays(train_images[valid_idx], train_labels[valid_idx]))
    base_cfg = dataclasses.replace(cfg.teacher_train, max_epochs=cfg.base_epochs)
    base, base_history = fit_teacher(encoder_teacher(encoder), encoder.init(jax.random.key(0)), train, valid,
                                     base_cfg, checkpoint=out / "base.npz", progress=progress)
    notes.append(f"base checkpoint (the students' start): {cfg.base_epochs} epoch(s), validation accuracy "
                 f"{base_history[-1]['valid_score']:.4f}")
    teacher_fn, teacher_params = _teacher(cfg, out, encoder, base, train, valid, notes, progress)
    pool_n, valid_n, test_n = cfg.pool
    splits = {"pool": {"pixel_values": train["pixel_values"][:pool_n]},  # the teacher's images, normalized once
              "valid": {"pixel_values": valid["pixel_values"][:valid_n]},
              "test": {"pixel_values": normalize_images(test_images[:test_n])}}
    student_encoder = build(dataclasses.replace(arch, head=None))
    student = smat.make_student(student_encoder, arch.num_labels, head_activation=None, head_dropout=0.0)
    encoder_params = {k: v for k, v in base.items() if k != "head"}
    display = {"images": test_images[:cfg.figure_examples]}
    return Task(teacher_fn, teacher_params, student, encoder_params, splits, notes, display, arch.patch_size)


def _load_text_model(cfg: ExperimentConfig, notes: list):
    try:
        return load_pretrained(cfg.teacher), cfg.teacher
    except HubUnavailableError as err:
        pretrained = load_pretrained(cfg.fallback_teacher)
        notes.append(f"OFFLINE SUBSTITUTION: {cfg.teacher} cannot be loaded here ({type(err).__name__}); teacher and "
                     f"students use {cfg.fallback_teacher} ({pretrained.config.num_layers} layers x "
                     f"{pretrained.config.num_heads} heads) instead.")
        return pretrained, cfg.fallback_teacher



def _text_head(student_head: str, notes: list) -> str | None:
    """The text students' head activation: the paper's dense -> GELU -> dense, or one dense layer."""
    if student_head == "paper":
        return "gelu"
    notes.append("students: one dense layer as the head (the paper's ELECTRA / XLM-R head is dense -> GELU -> "
                 "dense, whose small init kept CPU-length runs near the start)")
    return None


def _tokens(tokenizer, arrays, k: int) -> list[list[str]]:
    """The word pieces of the first ``k`` examples (padding dropped), for the explanation pages."""
    return [[tokenizer.id_to_token(int(i)) for i, m in zip(ids, mask) if m]
            for ids, mask in zip(arrays["input_ids"][:k], arrays["attention_mask"][:k])]

def _imdb_task(cfg: ExperimentConfig, out: Path, progress: bool, student_head: str) -> Task:
    from smat.data import load_imdb
    from smat.data.tokenization import encode_texts, load_tokenizer

    notes = []
    pretrained, name = _load_text_model(cfg, notes)
    tokenizer = load_tokenizer(name)
    imdb = load_imdb()

    def arrays(texts, labels=None):
        texts = [t.replace("<br /><br />", " ") for t in texts]
        enc = encode_texts(tokenizer, texts, max_length=cfg.max_length)
        out = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask, "lengths": enc.lengths}
        return out if labels is None else out | {"targets": np.asarray(labels, np.int32)}

    train_order = np.random.RandomState(0).permutation(len(imdb.train.texts))
    test_order = np.random.RandomState(0).permutation(len(imdb.test.texts))
    if cfg.teacher_examples:
        train_order = train_order[:cfg.teacher_examples]
    pool_n, valid_n, test_n = cfg.pool
    teacher_valid_n = min(12500, len(test_order) - sum(cfg.pool))
    if cfg.teacher_examples:
        teacher_valid_n = min(teacher_valid_n, max(cfg.teacher_examples // 4, 16))
    tv = test_order[:teacher_valid_n]
    rest = test_order[12500:] if teacher_valid_n == 12500 else test_order[teacher_valid_n:]
    texts, labels = imdb.train.texts, np.asarray(imdb.train.labels)
    test_texts, test_labels = imdb.test.texts, np.asarray(imdb.test.labels)
    key = jax.random.key(0)
    encoder, params = with_classification_head(pretrained.encoder, pretrained.params, 2, key)
    teacher_fn, teacher_params = _teacher(
        cfg, out, encoder, params, arrays([texts[i] for i in train_order], labels[train_order]),
        arrays([test_texts[i] for i in tv], test_labels[tv]), notes, progress)
    pool, valid, test = rest[:pool_n], rest[pool_n:pool_n + valid_n], rest[pool_n + valid_n:pool_n + valid_n + test_n]
    splits = {name_: arrays([test_texts[i] for i in idx]) for name_, idx in
              (("pool", pool), ("valid", valid), ("test", test))}
    notes.append(f"IMDB at {cfg.max_length} tokens; teacher trained on {len(train_order)} train reviews, selected on "
                 f"{teacher_valid_n} shuffled test reviews; student pool / valid / test = {cfg.pool}")
    student = smat.make_student(pretrained.encoder, 2, head_activation=_text_head(student_head, notes))
    return Task(teacher_fn, teacher_params, student, pretrained.params, splits, notes,
                {"tokens": _tokens(tokenizer, splits["test"], cfg.figure_examples)}, None, tokenizer)


def _mlqe_task(cfg: ExperimentConfig, out: Path, progress: bool, student_head: str) -> Task:
    """MLQE-PE sentence-level DA regression (Tables 5 and 7): (source, translation) pairs -> z_mean."""
    from smat.data import load_mlqe_pe
    from smat.data.tokenization import encode_texts, load_tokenizer

    notes = []
    pretrained, name = _load_text_model(cfg, notes)
    tokenizer = load_tokenizer(name)
    mlqe = load_mlqe_pe(word_tags=False)

    def arrays(split, index, targets=False):
        pairs = [split.pairs[i] for i in index]
        enc = encode_texts(tokenizer, [a for a, _ in pairs], [b for _, b in pairs], max_length=cfg.max_length)
        out = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask,
               "token_type_ids": enc.token_type_ids, "lengths": enc.lengths}
        return out | {"targets": np.asarray(split.scores, np.float32)[index]} if targets else out

    # Shuffled with seed 0 as the reference; the students train on the first N of the teacher's data.
    train = np.random.RandomState(0).permutation(len(mlqe.train.pairs))
    dev = np.random.RandomState(0).permutation(len(mlqe.dev.pairs))
    test = np.random.RandomState(0).permutation(len(mlqe.test.pairs))
    pool_n, valid_n, test_n = cfg.pool
    teacher_train = train[:cfg.teacher_examples] if cfg.teacher_examples else train
    encoder, params = with_classification_head(pretrained.encoder, pretrained.params, 1, jax.random.key(0))
    teacher_fn, teacher_params = _teacher(cfg, out, encoder, params, arrays(mlqe.train, teacher_train, True),
                                          arrays(mlqe.dev, dev[:valid_n], True), notes, progress)
    splits = {"pool": arrays(mlqe.train, train[:pool_n]), "valid": arrays(mlqe.dev, dev[:valid_n]),
              "test": arrays(mlqe.test, test[:test_n])}
    notes.append(f"MLQE-PE, 6 language pairs pooled, {cfg.max_length} tokens as [CLS] source [SEP] translation [SEP]; "
                 f"teacher trained on {len(teacher_train)} train segments; student pool / valid / test = {cfg.pool}; "
                 "simulability = Pearson r between student and teacher outputs")
    student = smat.make_student(pretrained.encoder, 1, head_activation=_text_head(student_head, notes))
    return Task(teacher_fn, teacher_params, student, pretrained.params, splits, notes,
                {"tokens": _tokens(tokenizer, splits["test"], cfg.figure_examples)}, None, tokenizer)


def prepare_task(cfg: ExperimentConfig, out: Path, progress: bool = True,
                 rows: tuple[str, ...] | None = None, student_head: str | None = None) -> Task:
    """Data, teacher and the teacher cache of every split (cached to ``out/cache_<split>.npz``).

    ``rows``: the table rows whose teacher explanations the cache must hold (default:
    ``cfg.rows``); a cache written for other rows is extended with what is missing, so a
    variant with fewer rows never pays for the gradient explainers it does not train with.
    ``student_head``: the students' head (default: ``cfg.student_head``); a student-side variant
    may change it while sharing ``cfg``'s teacher.
    """
    builder = {"images": _images_task, "imdb": _imdb_task, "mlqe": _mlqe_task}[cfg.task]
    task = builder(cfg, out, progress, student_head or cfg.student_head)
    names = tuple(sorted({ROWS[r] for r in (rows or cfg.rows) if ROWS[r] != "fresh"} | {"attention"}))
    splits = {}
    for split, arrays in task.splits.items():
        path = out / f"cache_{split}.npz"
        if path.exists():
            with np.load(path) as saved:
                arrays = {**arrays, **{k: saved[k] for k in saved.files}}
        cached = smat.add_teacher_cache(task.teacher_fn, task.teacher_params, {split: arrays}, names,
                                        normalizer=cfg.smat.normalizer, batch_size=cfg.smat.batch_size,
                                        progress=progress)[split]
        if not path.exists() or cached.keys() != arrays.keys():
            save_arrays_atomic(path, cached)
        splits[split] = cached
    return task._replace(splits=splits, teacher_digest=teacher_digest(task.teacher_params))


def teacher_digest(params) -> str:
    """A digest of the teacher's weights (names, dtypes, shapes and bytes of every leaf).

    Run records carry it and are reused only under the same teacher: the records are committed
    with the results, the teacher (hundreds of MB) is not, and a fresh clone trains it again. On
    one machine type and jax version that is bit for bit the same teacher, and the committed runs
    count; a teacher that differs in any bit (other hardware, other jax) trains them again.
    """
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        leaf = np.ascontiguousarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}:{leaf.dtype.str}:{leaf.shape}".encode())
        digest.update(leaf.tobytes())
    return digest.hexdigest()[:16]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


_META_ONLY = ("meta_lr", "meta_clip", "mode", "warmup_steps", "valid_batches")  # MetaConfig fields only the meta step (phi_T's update) reads
_META_ROWS = ("attention", "fresh")  # ROWS values whose runs depend on phi_T's training


def run_fingerprint(cfg: ExperimentConfig, row: str, n: int, seed: int, normalizer: str, *,
                    legacy: bool = False) -> str:
    """What a finished run depends on: the task, teacher and student settings, not the table's layout.

    A stored run whose fingerprint differs (the config changed since) is trained again. Rows
    without a meta step (all but the two SMaT rows) do not read the meta-only settings (meta
    lr, meta clip, mode), so their fingerprint leaves them out: a meta-lr sweep reuses them.
    ``legacy=True`` gives the fingerprint such runs were recorded with before commit a46e7c7 (the
    meta-only settings included); it is still accepted for them (:func:`_accepted`).
    """
    if not legacy and ROWS[row] not in _META_ROWS:
        default = MetaConfig()
        cfg = dataclasses.replace(cfg, smat=dataclasses.replace(cfg.smat, meta=dataclasses.replace(
            cfg.smat.meta, **{f: getattr(default, f) for f in _META_ONLY})))
    settings = dataclasses.replace(cfg, name="", sizes=(), seeds=(), rows=(), figure_examples=0, normalizers=(),
                                   teacher_from=None)
    key = (settings, row, n, seed, normalizer)
    later = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
             if not f.repr and getattr(cfg, f.name) != f.default}  # see ExperimentConfig.student_head
    return hashlib.sha256(canonical_repr(key + (later,) if later else key).encode()).hexdigest()[:16]


def canonical_repr(value: Any) -> str:
    """``repr(value)``, leaving out the dataclass fields marked ``metadata={"fingerprint": "omit_default"}``
    while they hold their default: settings added after runs were recorded (e.g.
    ``MetaConfig.warmup_steps``) keep those runs' fingerprints until they are changed."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = [f"{f.name}={canonical_repr(getattr(value, f.name))}" for f in dataclasses.fields(value)
                 if f.repr and not (f.metadata.get("fingerprint") == "omit_default"
                                    and getattr(value, f.name) == f.default)]
        return f"{type(value).__qualname__}({', '.join(parts)})"
    if type(value) is tuple:
        inner = ", ".join(canonical_repr(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def _accepted(cfg: ExperimentConfig, row: str, n: int, seed: int, normalizer: str) -> tuple[str, ...]:
    """The fingerprints a stored run may carry to be reused: the current one first, then the legacy one."""
    current = run_fingerprint(cfg, row, n, seed, normalizer)
    return tuple(dict.fromkeys((current, run_fingerprint(cfg, row, n, seed, normalizer, legacy=True))))


def _reusable(record: dict, fingerprints: tuple[str, ...], teacher: str) -> bool:
    """Whether a stored run record stands for the run asked for: same settings, same teacher.

    Records written before runs carried a teacher digest have none; those were trained in this
    results folder from its stored teacher (they were never committed) and are accepted.
    """
    return record.get("fingerprint") in fingerprints and record.get("teacher", teacher) == teacher


def _finished_elsewhere(out: Path, row: str, n: int, seed: int, normalizer: str,
                        fingerprints: tuple[str, ...], teacher: str = "") -> dict | None:
    """The same run finished by another experiment in ``out``'s results folder, if any.

    Equal fingerprints mean equal task, teacher and student settings: a variant that changed
    only the table's layout (``--set sizes=...``, ``seeds``, ``rows``) or the normalizers
    table's sparsemax column (the mlqe table's runs) need not train it again. ``teacher``: the
    current teacher's digest, which the record must carry (or predate, see :func:`_reusable`).
    """
    for candidate in sorted(out.parent.glob(f"*/runs/{_slug(row)}__n{n}__seed{seed}*.json")):
        if candidate.parent.parent == out:
            continue
        record = json.loads(candidate.read_text())
        if _reusable(record, fingerprints, teacher) and (record.get("row"), record.get("n"), record.get("seed"),
                                                         record.get("normalizer")) == (row, n, seed, normalizer):
            return record | {"reused_from": candidate.parent.parent.name, "fingerprint": fingerprints[0],
                             "teacher": teacher}
    return None


def student_data(task: Task, n: int, seed: int) -> dict:
    """A run's splits: ``n`` pool examples drawn by ``seed`` (kept in pool order) as train, and the
    task's valid and test splits."""
    pool = task.splits["pool"]
    index = np.sort(np.random.default_rng(seed).permutation(len(next(iter(pool.values()))))[:n])
    return {"train": _subset(pool, index), "valid": task.splits["valid"], "test": task.splits["test"]}


def _as_lists(tree):
    """A pytree of arrays as nested lists (for the run's JSON record)."""
    return jax.tree.map(lambda x: np.asarray(x).tolist(), tree)


def run_one(cfg: ExperimentConfig, task: Task, row: str, n: int, seed: int, out: Path, progress: bool,
             normalizer: str | None = None) -> dict:
    normalizer = normalizer or cfg.smat.normalizer
    suffix = f"__{normalizer}" if len(cfg.normalizers) > 1 else ""
    if ROWS[row] == "none" and normalizer != cfg.normalizers[0]:
        # beta = 0: no explanation reaches the student, so the normalizer cannot change this run
        # (Table 7's constant row); one run serves every normalizer's column.
        record = run_one(cfg, task, row, n, seed, out, progress, cfg.normalizers[0])
        return {**record, "normalizer": normalizer, "column": normalizer}
    path = out / "runs" / f"{_slug(row)}__n{n}__seed{seed}{suffix}.json"
    fingerprints = _accepted(cfg, row, n, seed, normalizer)
    fingerprint = fingerprints[0]
    checkpoint = out / "checkpoints" / f"{path.stem}__{fingerprint}.npz"
    if path.exists():
        record = json.loads(path.read_text())
        if _reusable(record, fingerprints, task.teacher_digest):
            if "teacher" not in record:  # trained here from the stored teacher: say which one
                record["teacher"] = task.teacher_digest
                report.write_json(path, record)
            return record
        if record.get("fingerprint") not in fingerprints:
            print(f"{path}: written under other settings (fingerprint {record.get('fingerprint')} != {fingerprint}); "
                  "training it again")
        else:
            print(f"{path}: trained from another teacher (digest {record['teacher']} != {task.teacher_digest}, "
                  "e.g. retrained on other hardware); training it again")
    record = _finished_elsewhere(out, row, n, seed, normalizer, fingerprints, task.teacher_digest)
    if record is not None:
        record["column"] = normalizer if suffix else n
        report.write_json(path, record)
        return record
    data = student_data(task, n, seed)
    explainer = ROWS[row]
    common = dict(student=task.student, student_encoder_params=task.student_encoder_params,
                  checkpoint=checkpoint, progress=progress)
    t0 = time.perf_counter()
    if explainer == "fresh":
        smat_run = run_one(cfg, task, "Attention (SMaT)", n, seed, out, progress, normalizer)
        phi = {"head_coeffs": jnp.asarray(smat_run["teacher_expl_params"]["head_coeffs"], jnp.float32)}
        config = dataclasses.replace(cfg.smat, explainer="attention", seed=seed, normalizer=normalizer)
        result = smat.train_student(task.teacher_fn, task.teacher_params, data, config, teacher_expl_params=phi,
                                    **common)
    else:
        config = dataclasses.replace(cfg.smat, explainer=explainer, seed=seed, normalizer=normalizer)
        result = smat.train_explainer(task.teacher_fn, task.teacher_params, data, config, **common)
    record = {"row": row, "n": n, "seed": seed, "normalizer": normalizer, "explainer": explainer,
              "fingerprint": fingerprint, "teacher": task.teacher_digest,
              "column": normalizer if suffix else n, "metrics": result.metrics,
              "best_epoch": result.best_epoch, "history": result.history, "seconds": time.perf_counter() - t0,
              "teacher_expl_params": _as_lists(result.state.teacher_expl_params),
              # phi_S: the student explainer's coefficients, trained in the inner loop
              "student_expl_params": _as_lists(result.state.student_params["explainer"])}
    report.write_json(path, record)
    common["checkpoint"].unlink(missing_ok=True)
    return record


def _explanations(cfg: ExperimentConfig, task: Task, runs: list[dict]) -> dict[str, np.ndarray]:
    """Teacher explanations of the first test examples, per row (SMaT: the first run's learned phi_T)."""
    test = task.splits["test"]
    k = cfg.figure_examples
    scores = test["teacher_head_scores"][:k]
    mask = test["attention_mask"][:k]
    layers, heads = scores.shape[1:3]
    out = {}
    for row in cfg.rows:
        name = ROWS[row]
        if name in ("none", "fresh"):
            continue
        if name.startswith("attention"):
            explainer = explainers.get(name, num_layers=layers, num_heads=heads, normalizer=cfg.smat.normalizer)
            params = explainer.init()
            if name == "attention":
                smat_run = next(r for r in runs if r["row"] == row)
                params = {"head_coeffs": jnp.asarray(smat_run["teacher_expl_params"]["head_coeffs"], jnp.float32)}
            expl, _ = explainer.apply(params, explainers.ExplainerInputs(mask=jnp.asarray(mask),
                                                                          head_scores=jnp.asarray(scores)))
            out[row] = np.asarray(expl)
        else:
            out[row] = test[f"teacher_explanation/{name}"][:k]
    return out


def _figures(cfg: ExperimentConfig, task: Task, runs: list[dict], out: Path) -> list[Path]:
    paths = []
    smat_runs = [r for r in runs if r["row"] == "Attention (SMaT)"]
    if smat_runs:
        layers, heads = task.splits["test"]["teacher_head_scores"].shape[1:3]
        coeffs = {f"N={r['n']}, seed {r['seed']}" + (f", {r['normalizer']}" if len(cfg.normalizers) > 1 else ""):
                  np.asarray(smat.simplex.get(r.get("normalizer", cfg.smat.normalizer))(jnp.asarray(
                      r["teacher_expl_params"]["head_coeffs"], jnp.float32))).reshape(layers, heads)
                  for r in smat_runs if r["seed"] == cfg.seeds[0]}
        paths.append(report.head_heatmap(coeffs, out / "head_coefficients.png",
                                         title=f"{cfg.name}: learned head coefficients"))
    expl = _explanations(cfg, task, runs)
    if "images" in task.display:
        paths.append(report.image_overlay(task.display["images"], expl, out / "explanations.png",
                                          patch_size=task.patch_size, title=f"{cfg.name}: teacher explanations"))
    else:
        examples = [{"tokens": tokens, "explanations": {row: e[i][:len(tokens)] for row, e in expl.items()}}
                    for i, tokens in enumerate(task.display["tokens"])]
        paths.append(report.token_heatmap_html(examples, out / "explanations.html",
                                               title=f"{cfg.name}: teacher explanations"))
    return paths


def run_experiment(cfg: ExperimentConfig, out_root: Path = Path("results"), *, progress: bool = True,
                   task_from: ExperimentConfig | None = None) -> dict:
    """Runs (or resumes) every row x N x seed of ``cfg`` and writes the report; returns the aggregate.

    ``task_from``: an experiment whose teacher, base checkpoint and teacher cache (in
    ``out_root/<its name>/``, built there if absent) ``cfg`` shares; for variants that change
    only the students. Its (or ``cfg``'s) ``teacher_from`` is followed one step further.
    """
    out = out_root / cfg.name
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    source = task_from or cfg
    if source.teacher_from:
        source = get_config(source.teacher_from)
    task = prepare_task(source, out_root / source.name, progress, rows=cfg.rows, student_head=cfg.student_head)
    jobs = [(row, n, seed, norm) for norm in cfg.normalizers for n in cfg.sizes for seed in cfg.seeds
            for row in cfg.rows]
    runs = []
    for row, n, seed, norm in tqdm(jobs, desc=cfg.name, disable=not progress):
        runs.append(run_one(cfg, task, row, n, seed, out, progress, norm))
    by_normalizer = len(cfg.normalizers) > 1
    by_column = [{**r, "n": r["column"]} for r in runs]
    agg = report.aggregate(by_column, "test_simulability")
    columns = list(cfg.normalizers) if by_normalizer else list(cfg.sizes)
    regression = cfg.task == "mlqe"
    unit = "Pearson r" if regression else "%"
    title = (f"{cfg.name}: student simulability on the test split ({unit}), median [q25:q75] over seeds "
             f"{list(cfg.seeds)}" + (f", N = {cfg.sizes[0]}, by head-coefficient normalizer" if by_normalizer else ""))
    table = report.markdown_table(agg, rows=list(cfg.rows), columns=columns,
                                  scale=1.0 if regression else 100.0, digits=4 if regression else 2,
                                  paper=PAPER.get(cfg.name) if cfg.name in PAPER else None, title=title,
                                  baseline="No explainer" if len(cfg.seeds) >= 3 else "")
    if len(cfg.seeds) < 3:
        table += "\nNo IQR marks: fewer than 3 seeds per cell.\n"
    valid = report.markdown_table(report.aggregate(by_column, "valid_simulability"),
                                  rows=list(cfg.rows), columns=columns, scale=1.0 if regression else 100.0,
                                  digits=4 if regression else 2, baseline="",
                                  title=f"{cfg.name}: on the validation split (what runs are selected and compared on)")
    figures = _figures(cfg, task, runs, out)
    notes = list(task.notes) + _one_class_runs(task, runs, regression)
    if source.name != cfg.name:
        notes.append(f"teacher, base checkpoint and teacher cache shared with `{source.name}` "
                     f"({out_root / source.name}/)")
    return write_report(out, cfg, [table, valid], notes, {"aggregate": agg}, started=started, figures=figures)


def _one_class_runs(task: Task, runs: list[dict], regression: bool) -> list[str]:
    """A note naming the runs whose student sat at the teacher's majority-class rate on
    validation at every epoch (it predicted one class throughout: nothing was learned)."""
    if regression:
        return []
    predicted = np.asarray(task.splits["valid"]["teacher_outputs"]).argmax(-1)
    majority = float(np.bincount(predicted).max() / len(predicted))
    stuck = [r for r in runs if all(abs(h["valid_simulability"] - majority) < 1e-6 for h in r["history"])]
    if not stuck:
        return []
    names = ", ".join(f"{r['row']} (N = {r['n']}, seed {r['seed']})" for r in stuck)
    return [f"{len(stuck)} of {len(runs)} runs stayed at the teacher's majority-class rate on validation "
            f"({majority:.3f}) at every epoch, i.e. the student predicted one class throughout: {names}"]


# Overrides that change only the students: such a variant reuses the base experiment's teacher and cache.
STUDENT_SIDE = ("smat.meta.", "smat.beta", "smat.max_epochs", "smat.patience", "seeds", "sizes", "rows",
                "figure_examples", "normalizers", "student_head")


def main(argv=None) -> dict:
    p = parser(__doc__, "experiment", "images | imdb | mlqe | normalizers, optionally :cpu, :demo or :smoke")
    add_set_option(p, "--set smat.meta.meta_lr=5e-4 --set 'seeds=(0, 9)'",
                   ", and student-side overrides (smat.meta.*, smat.beta, epochs, seeds, sizes, rows, normalizers, "
                   "student_head) "
                   "reuse the base experiment's teacher and cache")
    args = p.parse_args(argv)
    base = get_config(args.experiment)
    cfg, task_from = apply_overrides(base, args.set), None
    if args.set and all(a.partition("=")[0].strip().startswith(STUDENT_SIDE) for a in args.set):
        task_from = base
    with compilation(args):
        return finish(args.out, run_experiment(cfg, args.out, progress=not args.quiet, task_from=task_from))


if __name__ == "__main__":
    main()
