"""Agreement-study configs (Neely et al. 2022): ``get_config("sst[:cpu|:smoke]")`` -> :class:`AgreementConfig`.

Tasks: ``sst`` (the 2-class sentence-level SST of the paper: 6,920 / 872 / 1,821, from
Jain & Wallace's unfiltered file), ``imdb`` (aclImdb with Jain & Wallace's protocol, test
reviews of at most 240 words), ``snli`` (pairs; SNLI train is not available offline, so the
models train on SNLI dev minus 1,000 held-out pairs, and the report says so), and with a
network ``mnli`` / ``qqp`` by name. Models: ``bilstm`` (``baselines``' Jain & Wallace
classifier) and ``transformer`` (DistilBERT-base-uncased from the hub, offline
all-MiniLM-L6-v2, named in the report). Variants: the paper's scale (default), ``cpu``
(fewer training examples and explained instances so that one task fits a 2-core machine)
and ``smoke`` (seconds; exercised by ``make test``).
"""

from __future__ import annotations

import dataclasses
import math

from baselines.train import TrainConfig
from smat.teacher import TeacherTrainConfig

__all__ = ["AgreementConfig", "get_config", "SEEDS", "METHODS", "TASKS", "MODELS"]

SEEDS = (87, 2134, 5555)  # court-of-xai's Config.seeds; each also draws its own 500 test instances
METHODS = ("lime", "integrated_gradients", "deeplift", "gradient_shap", "deep_shap")
TASKS = ("sst", "imdb", "snli", "mnli", "qqp")
MODELS = ("bilstm", "transformer")
PAIR_TASKS = ("snli", "mnli", "qqp")


@dataclasses.dataclass(frozen=True)
class AgreementConfig:
    """One task's agreement study (every model, seed and method).

    Attributes:
      name: results go to ``results/<name>/``.
      task: one of :data:`TASKS`.
      models: which of :data:`MODELS` to run.
      seeds: training seeds; seed s also samples the s-th set of explained test instances
        (Python ``random.Random(s).sample``, as the reference).
      instances: explained test instances per seed (500 in the paper).
      methods: attribution methods (``agreement.attributions`` names), compared with each
        other and with attention (BiLSTM weights; transformer rollout, and flow for Table 4).
      output: the explained scalar: "probability" of the predicted class (the reference),
        "logit" or "log_probability".
      lime_samples, ig_steps, shap_samples, shap_baselines: the reference's Captum settings
        (1000 masks; 50 Gauss-Legendre steps; Grad-SHAP 5 draws; 2 identical pad baselines).
      flow: attention flow for the transformer (Table 4; off for IMDb by default, as the paper
        skipped it there; scipy's max-flow makes it about 2 s per 240-token instance, so
        ``--set flow=True`` is affordable).
      special_tokens: the transformer's [CLS] / [SEP]: "exclude" (default: they are neither
        perturbed nor ranked; rollout's residual gives [CLS] a large mass that says nothing
        about the words) or "include" (the reference ranked every real token).
      max_words: drop test documents with more words (IMDb 240, the reference's filter).
      max_length: transformer tokens (longer inputs are truncated and counted in the report).
      train_examples: cap on the training examples (a seeded sample; None: all).
      transformer_examples: a smaller cap for the transformer's fine-tuning (CPU plans).
      valid_examples, test_examples: caps on the validation and test examples (smoke runs;
        test accuracy and the explained instances come from the capped test split).
      explain_batch: instances per jitted attribution call.
      explain_bucket: explained sequences are padded to multiples of this (one compilation of
        every method per width).
      transformer, fallback_transformer: the transformer, and what an offline run uses.
      transformer_train: its fine-tuning (court: HF AdamW lr 1e-5 SST / IMDb, 2e-5 pairs,
        no warmup, no decay, no clipping, batch 64, <= 40 epochs, patience 5).
      bilstm_train: the BiLSTM's (court: AMSGrad 1e-3, L2 1e-5, batch 64, <= 40 epochs,
        selection on validation AUC (accuracy for pairs)).
      vectors, fallback_vectors: the BiLSTM's word vectors (the reference's
        "fasttext-wiki-news-300d-1M"), and what stands in, noted, where they cannot be had
        (offline: "glove-6b-50d").
      embedding_init: the BiLSTM's rows without a vector and its pad row: "zeros" (torchtext,
        as the W&P runs; pad = zero, so LIME's masking and the pad baseline are "no input") or
        "allennlp" (the reference's: every such row, the pad row included, drawn from N(mean,
        std) of the vectors' values once, seed 0).
      uniform: also train uniform-attention models (Table 3).
      top_k: k of Krishna et al.'s feature and rank agreement (the top-k tokens by
        magnitude; capped at an instance's token count), reported beside the correlations.
    """

    name: str
    task: str
    models: tuple[str, ...] = MODELS
    seeds: tuple[int, ...] = SEEDS
    instances: int = 500
    methods: tuple[str, ...] = METHODS
    output: str = "probability"
    lime_samples: int = 1000
    ig_steps: int = 50
    shap_samples: int = 5
    shap_baselines: int = 2
    flow: bool = True
    special_tokens: str = "exclude"
    max_words: int | None = None
    max_length: int = 512
    train_examples: int | None = None
    transformer_examples: int | None = None
    valid_examples: int | None = None
    test_examples: int | None = None
    explain_batch: int = 16
    explain_bucket: int = 16
    transformer: str = "distilbert-base-uncased"
    fallback_transformer: str = "sentence-transformers/all-MiniLM-L6-v2"
    transformer_train: TeacherTrainConfig = TeacherTrainConfig(
        lr=1e-5, warmup_steps=0, weight_decay=0.0, clip=math.inf, batch_size=64, max_epochs=40, patience=5)
    bilstm_train: TrainConfig = TrainConfig(lr=1e-3, weight_decay=1e-5, batch_size=64, epochs=40)
    vectors: str = "fasttext-wiki-news-300d-1M"
    fallback_vectors: str | None = "glove-6b-50d"
    embedding_init: str = "zeros"
    uniform: bool = True
    top_k: int = 5

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {TASKS}")
        if self.embedding_init not in ("zeros", "allennlp"):
            raise ValueError(f"embedding_init must be 'zeros' or 'allennlp', got {self.embedding_init!r}")
        if self.special_tokens not in ("exclude", "include"):
            raise ValueError(f"special_tokens must be 'exclude' or 'include', got {self.special_tokens!r}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be positive, got {self.top_k}")
        if unknown := set(self.models) - set(MODELS):
            raise ValueError(f"unknown models {sorted(unknown)}; choose from {MODELS}")

    @property
    def pair(self) -> bool:
        return self.task in PAIR_TASKS


def get_config(arg: str) -> AgreementConfig:
    """``"<task>[:cpu|:smoke]"``, e.g. ``"sst"``, ``"imdb:cpu"``, ``"snli:smoke"``."""
    task, _, variant = arg.partition(":")
    if task not in TASKS:
        raise ValueError(f"unknown agreement task {task!r}; choose from {TASKS} (optionally :cpu or :smoke)")
    pair = task in PAIR_TASKS
    base = AgreementConfig(
        name=f"agreement-{task}", task=task, flow=task != "imdb", max_words=240 if task == "imdb" else None,
        transformer_train=dataclasses.replace(AgreementConfig.transformer_train, lr=2e-5 if pair else 1e-5,
                                              batch_size=32 if task == "mnli" else 64),
        bilstm_train=dataclasses.replace(AgreementConfig.bilstm_train, batch_size={"mnli": 512, "qqp": 1024}.get(
            task, 64), select_metric="accuracy" if pair else "auc"),
    )
    if variant == "":
        return base
    if variant == "cpu":
        # SST in about an hour on 2 cores: MiniLM fine-tuned for 1 epoch on 4k examples at <= 128
        # tokens, the BiLSTM for 8 epochs on <= 8k, 100 explained instances per seed, every
        # method at the reference's settings.
        return dataclasses.replace(
            base, name=f"{base.name}-cpu", instances=100, train_examples=8000, transformer_examples=4000,
            valid_examples=1000, max_length=128 if task != "imdb" else 320,
            transformer_train=dataclasses.replace(base.transformer_train, lr=5e-5, batch_size=32, max_epochs=1,
                                                  patience=0),
            bilstm_train=dataclasses.replace(base.bilstm_train, batch_size=32, epochs=8))
    if variant == "smoke":
        return dataclasses.replace(
            base, name=f"{base.name}-smoke", seeds=(87,), instances=4, train_examples=96, valid_examples=32,
            test_examples=48, max_length=32, lime_samples=64, ig_steps=8, shap_samples=3, explain_batch=4,
            explain_bucket=1024,  # and bilstm_train.bucket_step: one width per split (a smoke run is its compiles)
            transformer_train=dataclasses.replace(base.transformer_train, lr=5e-5, batch_size=16, max_epochs=1,
                                                  patience=0),
            bilstm_train=dataclasses.replace(base.bilstm_train, batch_size=16, epochs=1, bucket_step=1024))
    raise ValueError(f"unknown variant {variant!r} for agreement {task}: use '', 'cpu' or 'smoke'")
