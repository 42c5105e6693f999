"""SMaT end to end on real data: a fine-tuned MiniLM teacher on SST, MiniLM students.

The learned (meta-trained) attention explainer must leave the student with a lower
validation simulation loss than the static all-layers explainer from the same start
(same student init, data order and dropout keys; only phi_T differs), in the median over
ten seeds (each seed its own student head init, re-initialized attention and batch order).

Setting since 2026-12-02 (second session): one teacher (SST shuffle 0) for every seed, and
students whose top three layers' query and key projections start afresh (``_reinit_attention``,
``SMAT_E2E_REINIT="3 4 5"``): their heads there start near uniform, so the teacher's attention
carries something the students lack. The explanation loss the students see at epoch 0 is then
0.085-0.129 nats per example (static and learned runs, seeds 0-6) against 0.014 on average over the
epochs with pretrained students (below), and its mean over the 8 epochs 0.024-0.039.
Measured (2026-12-02, 2-core CPU, beside the normalizers job, through ``/tmp`` probe code that
builds the same teacher, students and re-initialization as this test; the test itself was not yet
run over the ten seeds), learned minus static validation simulation loss at each run's
best-simulability epoch, seeds 0-9: -0.064, +0.037, -0.008, -0.104, -0.034, -0.032, +0.073,
-0.039, +0.134, -0.045 (median -0.033; learned lower in 7 of 10), and best validation simulability
learned minus static: +0.012, +0.020, +0.016, +0.031, +0.024, +0.016, -0.039, +0.004, -0.039, +0.016
(median +0.016; learned ahead in 8 of 10).
**The test stays an expected failure** (``xfail``, not strict) until the ten seeds have been run
through this test itself (one command, ~30 min alone; the refactored test was not yet run). Still open: whether the explanation helps at all here (no no-explainer row was run).
Students not pretrained were tried first (same day, seed 0: a 2-layer x 4-head encoder, hidden 64,
from random init, SGD 0.05 x 4 epochs and 0.5 x 16 epochs): with 256 sentences they never leave the
majority class (validation simulability 0.699 in every epoch for no explainer, static and learned).

Earlier setting (until 2026-12-02): students from the whole pretrained checkpoint, each seed its own
teacher (``SMAT_E2E_REINIT="" SMAT_E2E_DATA_SEED=""``). There it did not hold. Measured on 2 CPU cores,
2026-12-02, with those defaults (the two runs per seed of this test, histories dumped by a probe script; seeds 0-4
equal to the 5-seed run of the same day to the printed digit): learned minus static validation
simulation loss at each run's best-simulability epoch, seeds 0-9:
  +0.018, -0.018, -0.016, -0.039, -0.060, +0.139, +0.025, +0.180, +0.049, +0.177
  (median +0.022; learned ahead in 4 of 10; seeds 0-4 alone give -0.018, which an earlier
  version of this test asserted and passed: the ten seeds show that was the draw).
Other readings of the same runs agree that there is no effect to find here: the mean over
the 8 epochs, learned minus static, has median +0.042; the last epoch's -0.001; truncating the
runs to their first k epochs gives medians between -0.004 and +0.109 with the sign changing
with k; best-epoch validation simulability (accuracy) is ahead in 5, level in 1, behind in 4
(median +0.008).
Why: the explanation carries almost nothing the students do not have. The teacher is MiniLM
fine-tuned for one short epoch from the same checkpoint as the students, so KL(E_T || E_S) is
0.014 nats per example on average over the static runs' epochs (0.016 for the learned ones),
times beta 5, against a training simulation loss of 0.45 (same average); meanwhile the students,
at SGD lr 0.05 on 256 sentences, overfit (train simulation loss 0.06-0.36 at the last epoch) and
their validation loss swings by up to 1.1 nats from one epoch to the next (the learned runs' worst
epoch is worse than the static runs' in 7 of 10 seeds; cause not isolated). The difference
between the two rows is the chaos of two trajectories, not the explainer. A setting
where it could hold needs explanations that teach (a teacher whose attention differs from the
students' start, or students not pretrained) and students that settle (the paper's lr 5e-3 and
~10x the steps): GPU-sized, see README "SMaT results".

Scale (CPU-sized, everything else as the paper): the teacher is all-MiniLM-L6-v2 with a
mean-pooled linear head fine-tuned for one epoch on 800 SST training sentences; the
students start from the public checkpoint (layers 3-5's query and key drawn afresh) and see 256 other training sentences, with 256
more for validation, 8 epochs x 16 steps. Deviations from the paper's plan, needed to learn
anything in 128 steps: inner SGD lr 0.05 (paper 5e-3, tuned for ~10x more steps), meta lr
5e-3 (5e-4) reached after a 32-step linear warm-up (the paper: none), a linear student head.
The measured losses are printed (``pytest -s``). One seed takes 3 min alone on 2 CPU cores
and 5.5-6 min beside another job (2026-12-02), so the test is marked slow (``make test-slow``).

Why the warm-up (README "SMaT results"): at a run's start the meta-gradient on phi_T is batch
noise (`python -m experiments.smat.diagnose imdb:cpu`: mean cosine between batch pairs
-0.05 / 0.02 / -0.05 in three seeds, and no better with the whole validation split in the
outer loss), yet Adam at meta lr 5e-3 drops 40-52 of 72 heads in 32 steps, so without a
warm-up the learned explainer is partly a draw of its first batches.

Earlier measurements, five seeds (2-core CPU; learned minus static validation simulation loss
at each run's best-simulability epoch; `SMAT_E2E_SEEDS="0 1 2 3 4" SMAT_E2E_WARMUP=W TEST_WORKERS=0
PYTEST_ARGS="-s -k learned_explainer" make test-slow`):
  warm-up 32 (2026-12-02):  seeds 0-4: +0.018, -0.018, -0.016, -0.039, -0.060 (median -0.018;
    learned 0.342 / 0.326 / 0.382 / 0.294 / 0.363, static 0.324 / 0.344 / 0.398 / 0.333 / 0.423)
  no warm-up, the paper's constant meta lr (seed 2 2026-11-23; the others 2026-12-02, seeds 0
    and 1 equal to their 2026-11-23 runs to the digit): seeds 0-4: -0.022, +0.046, +0.031,
    -0.019, -0.087 (median -0.019; learned 0.302 / 0.390 / 0.429 / 0.314 / 0.336)
Both medians were below zero over seeds 0-4; seeds 5-9 (above) reverse it.
Per-epoch losses swing by up to 1.1 nats from one epoch to the next (inner lr 0.05: seed 4's
learned student 0.87, 0.64, 1.61, 0.55 in epochs 2-5), so single seeds cannot separate the two.

Earlier settings (one seed each unless stated; learned vs static at the best epoch):
  2026-11-23, inner lr 0.02, 12 epochs, seed 1: 0.309 vs 0.171 (learned behind from epoch 2 on).
  2026-12-01, a teacher fine-tuned on 2,000 sentences x 3 epochs (students from sentence 3000;
    SMAT_E2E_TEACHER_N=2000 SMAT_E2E_TEACHER_EPOCHS=3 SMAT_E2E_STUDENT_START=3000): teacher lr
    1e-4 seed 1 -0.029; teacher lr 3e-4 seed 0 +0.011, seed 1 -0.025. The teacher's heads do
    differ from the students' start: KL(teacher || pretrained) of the all-layers explanation on
    the valid sentences is 0.13-0.18 nats, per head up to 1.3-1.9 (layers 3-4).
  2026-12-01, that teacher at lr 1e-4 and the paper's meta lr 5e-4, seeds 0 / 1 / 2 (no
    explainer / static / learned): 0.487 / 0.476 / 0.476, 0.464 / 0.545 / 0.536, 0.583 / 0.440 /
    0.440: learned <= static in 3 of 3 but by 0.0005-0.008, since phi_T barely moves in 128
    steps at 5e-4.
"""

import os
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smat
from smat.data import load_sst_jain_wallace
from smat.data.tokenization import encode_texts, load_tokenizer
from smat.models import load_pretrained
from smat.models.layers import INIT_STD
from smat.teacher import TeacherTrainConfig, fit_teacher

# SMAT_E2E_SEED=S runs one seed (the form of the measurements above); SMAT_E2E_SEEDS="0 1" a set.
SEEDS = tuple(int(x) for x in os.environ.get("SMAT_E2E_SEEDS", os.environ.get("SMAT_E2E_SEED", " ".join(map(str, range(10))))).split())
# The shuffle of SST train that picks the teacher's and the students' sentences: one teacher for
# every seed by default; SMAT_E2E_DATA_SEED="" gives each seed its own (the form of the 2026-12-02
# measurements with pretrained students in the docstring).
DATA_SEED = os.environ.get("SMAT_E2E_DATA_SEED", "0") or None
# The students' layers whose attention (query and key) starts afresh; "" keeps the whole checkpoint.
REINIT = tuple(int(x) for x in os.environ.get("SMAT_E2E_REINIT", "3 4 5").split())
TEACHER_N = int(os.environ.get("SMAT_E2E_TEACHER_N", "800"))
TEACHER_EPOCHS = int(os.environ.get("SMAT_E2E_TEACHER_EPOCHS", "1"))
TEACHER_LR = float(os.environ.get("SMAT_E2E_TEACHER_LR", "1e-4"))
STUDENT_START = int(os.environ.get("SMAT_E2E_STUDENT_START", str(TEACHER_N)))  # 256 train, then 256 valid
INNER_LR = float(os.environ.get("SMAT_E2E_LR", "0.05"))
EPOCHS = int(os.environ.get("SMAT_E2E_EPOCHS", "8"))
META_LR = float(os.environ.get("SMAT_E2E_META_LR", "5e-3"))
WARMUP = int(os.environ.get("SMAT_E2E_WARMUP", "32"))  # meta-lr warm-up steps (MetaConfig.warmup_steps)


def _mean_pool_teacher(model):
    def teacher_fn(params, batch, embeddings=None):
        e = model.embed(params["encoder"], batch["input_ids"]) if embeddings is None else embeddings
        out = model.encode(params["encoder"], e, batch["attention_mask"])
        m = batch["attention_mask"][..., None].astype(e.dtype)
        pooled = (out.last_hidden_state * m).sum(1) / jnp.maximum(m.sum(1), 1.0)  # padding rows: no tokens
        return smat.TeacherOutput(pooled @ params["w"] + params["b"], out.head_scores, e)

    return teacher_fn


def _reinit_attention(encoder_params, layers, seed):
    """The pretrained encoder with the query and key projections of ``layers`` drawn afresh (normal,
    std 0.02, zero bias): those layers' heads start near uniform, so the teacher's attention carries
    something the students lack."""
    if not layers:
        return encoder_params
    key = jax.random.key(1000 + seed)
    index = jnp.asarray(layers)
    attention = dict(encoder_params["layers"])
    for name in ("query", "key"):
        key, sub = jax.random.split(key)
        kernel, bias = attention[name]["kernel"], attention[name]["bias"]
        fresh = INIT_STD * jax.random.normal(sub, kernel.shape, kernel.dtype)
        attention[name] = {"kernel": kernel.at[index].set(fresh[index]), "bias": bias.at[index].set(0.0)}
    return {**encoder_params, "layers": attention}


@pytest.fixture(scope="module")
def sst_assets(shared_data):
    path = shared_data / "sst" / "jain_wallace" / "sst_dataset.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return load_sst_jain_wallace(path), load_pretrained("minilm"), load_tokenizer("minilm")


def _setting(assets, data_seed):
    """A teacher fine-tuned on TEACHER_N shuffled sentences, and its cache on 256 + 256 others."""
    sst, model, tokenizer = assets
    order = np.random.default_rng(data_seed).permutation(len(sst.train.texts))
    texts = [sst.train.texts[i] for i in order]
    labels = np.asarray(sst.train.labels)[order]

    def arrays(lo, hi):
        enc = encode_texts(tokenizer, texts[lo:hi], max_length=32)
        return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask, "lengths": enc.lengths}

    teacher_fn = _mean_pool_teacher(model)
    params = {"encoder": model.params, "w": jnp.zeros((model.config.hidden_size, 2)), "b": jnp.zeros((2,))}
    gold = arrays(0, TEACHER_N) | {"targets": labels[:TEACHER_N]}
    params, history = fit_teacher(teacher_fn, params, gold, None,
                                  TeacherTrainConfig(lr=TEACHER_LR, warmup_steps=10, batch_size=32,
                                                     max_epochs=TEACHER_EPOCHS), progress=False)
    s = STUDENT_START
    data = smat.add_teacher_cache(teacher_fn, params, {"train": arrays(s, s + 256), "valid": arrays(s + 256, s + 512)},
                                  ("attention",), progress=False)
    return teacher_fn, params, data, model, history


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="with pretrained students the explainers differed by noise (ten seeds: "
                   "median +0.022); the re-initialized-attention setting gave median -0.033 in ten probe seeds, not yet "
                   "run through this test; see the module docstring")
def test_learned_explainer_beats_the_static_one(sst_assets):
    differences, settings = [], {}
    for seed in SEEDS:
        data_seed = seed if DATA_SEED is None else int(DATA_SEED)
        if data_seed not in settings:  # one teacher per data seed
            settings = {data_seed: _setting(sst_assets, data_seed)}
        teacher_fn, params, data, model, history = settings[data_seed]
        predicted = data["valid"]["teacher_outputs"].argmax(-1)
        assert 0.2 < predicted.mean() < 0.8, "the teacher must not be one-class for simulability to mean anything"
        student = smat.make_student(model.encoder, 2, head_activation=None, head_dropout=0.0)
        results = {}
        for name in ("attention_all_layers", "attention"):
            config = smat.SmatConfig(explainer=name, batch_size=16, max_epochs=EPOCHS, patience=EPOCHS, seed=seed,
                                     meta=smat.MetaConfig(mode="jvp", inner_lr=INNER_LR, meta_lr=META_LR,
                                                          warmup_steps=WARMUP))
            results[name] = smat.train_explainer(teacher_fn, params, data, config, student=student,
                                                 student_encoder_params=_reinit_attention(model.params, REINIT, seed),
                                                 progress=False)
        static, learned = results["attention_all_layers"], results["attention"]
        curve = {k: [(round(h["valid_simulability"], 3), round(h["valid_sim_loss"], 4)) for h in r.history]
                 for k, r in results.items()}
        print(f"\nseed {seed}: teacher loss per epoch {[round(h['train_loss'], 3) for h in history]}; "
              f"valid (simulability, sim loss) per epoch: {curve}")
        print({k: r.metrics for k, r in results.items()})
        coeffs = np.asarray(smat.simplex.sparsemax(learned.state.teacher_expl_params["head_coeffs"]))
        assert (coeffs == 0).sum() > 0, "sparsemax should have switched some heads off"
        differences.append(learned.metrics["valid_sim_loss"] - static.metrics["valid_sim_loss"])
    print(f"learned - static valid sim loss per seed {({s: round(d, 4) for s, d in zip(SEEDS, differences)})}")
    assert statistics.median(differences) < 0, differences
