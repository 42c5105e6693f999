"""SMaT end to end on real data: a fine-tuned MiniLM teacher on SST, students cut from MiniLM.

The learned (meta-trained) attention explainer must leave the student with a lower
validation simulation loss than the static all-layers explainer from the same start
(same student init, data order and dropout keys; only phi_T differs), in the median over
ten seeds (each seed its own student head init, re-initialized attention and batch order).
Two student sizes, the same teacher and protocol:

- ``one_layer`` (in ``make test``, ~7 min alone on 2 CPU cores): MiniLM's first layer only, its
  query and key drawn afresh. These students barely beat the teacher's majority class (validation
  simulability ~0.73-0.75 against 0.70 at the start), and an explanation costs them simulation loss,
  so the test checks that meta-learning moves phi_T towards explanations that serve the student:
  the static all-layers explanation hurts it, the learned one hardly. Measured through this test
  (2026-12-03, 2-core CPU, ``SMAT_DATA_DIR=../shared/data SMAT_E2E_NO_EXPLAINER=1 .venv/bin/python
  -m pytest -s -k one_layer tests/test_smat_e2e.py``, 10.5 min), validation simulation loss at each
  run's best-simulability epoch, seeds 0-9:
    no explainer  0.520 0.534 0.531 0.573 0.555 0.546 0.565 0.558 0.547 0.570  (median 0.551)
    static (all)  0.536 0.545 0.542 0.558 0.576 0.559 0.589 0.584 0.570 0.544  (median 0.558)
    learned       0.522 0.539 0.531 0.591 0.536 0.553 0.571 0.572 0.551 0.589  (median 0.552)
  learned minus static -0.014, -0.006, -0.011, +0.034, -0.040, -0.006, -0.018, -0.011, -0.019,
  +0.045 (median -0.011, lower in 8 of 10); static minus none median +0.015 (worse in 8 of 10),
  learned minus none +0.006. With the second teacher (``SMAT_E2E_DATA_SEED=1``, 9.9 min):
    no explainer  0.613 0.572 0.608 0.596 0.592 0.585 0.579 0.612 0.660 0.586  (median 0.594)
    static (all)  0.635 0.610 0.630 0.617 0.640 0.619 0.629 0.599 0.663 0.617  (median 0.624)
    learned       0.577 0.578 0.611 0.568 0.598 0.602 0.592 0.613 0.662 0.593  (median 0.595)
  learned minus static -0.057, -0.032, -0.019, -0.049, -0.043, -0.017, -0.038, +0.015, -0.002,
  -0.024 (median -0.028, lower in 9 of 10; simulability ahead in 7, behind in 1). A third teacher
  (``SMAT_E2E_DATA_SEED=2``, 9.6 min, run after the test was committed):
    no explainer  0.614 0.650 0.639 0.591 0.603 0.618 0.596 0.617 0.602 0.594  (median 0.609)
    static (all)  0.649 0.659 0.643 0.614 0.626 0.644 0.625 0.637 0.622 0.636  (median 0.637)
    learned       0.640 0.652 0.644 0.598 0.609 0.626 0.598 0.622 0.606 0.599  (median 0.615)
  learned minus static -0.010, -0.007, +0.001, -0.016, -0.017, -0.018, -0.027, -0.015, -0.016,
  -0.037 (median -0.016, lower in 9 of 10). Pooled, 26 of 30 lower: one-sided sign test p = 3e-5. This size was chosen for its cost (the six-layer
  students take ~3 min per seed), before these runs, and kept for what they showed.
- ``six_layers`` (slow, ``make test-slow``, ~30 min alone): all six layers, the top three's query
  and key drawn afresh; explanations there are worth something (below).

The six-layer setting: one teacher (all-MiniLM-L6-v2 with a mean-pooled linear head, fine-tuned one epoch on
800 shuffled SST training sentences, shuffle 0) for every seed; students from the same public
checkpoint whose top three layers' query and key projections start afresh (``_reinit_attention``,
``SMAT_E2E_REINIT="3 4 5"``): their heads there start near uniform, so the teacher's attention
carries something the students lack (explanation loss 0.085-0.129 nats per example at epoch 0 in
seeds 0-6 of a probe of 2026-12-02, against 0.014 with wholly pretrained students). Students see 256 other training sentences, 256
more validate, 8 epochs x 16 steps. Deviations from the paper, needed to learn anything in 128
steps: inner SGD lr 0.05 (paper 5e-3, tuned for ~10x more steps), meta lr 5e-3 (paper 5e-4)
reached after a 32-step linear warm-up (paper: none), a linear student head.

Measured through this test (2026-12-03, 2-core CPU, ``SMAT_E2E_NO_EXPLAINER=1 TEST_WORKERS=0
PYTEST_ARGS="-s -k learned_explainer" make test-slow`` before the split into two sizes, now
``-k six_layers``; 55 min, the first 25 beside a CI run),
validation simulation loss at each run's best-simulability epoch, seeds 0-9:
  no explainer  0.316 0.370 0.409 0.468 0.330 0.363 0.347 0.402 0.521 0.397  (median 0.383)
  static (all)  0.374 0.386 0.382 0.439 0.359 0.391 0.329 0.374 0.391 0.429  (median 0.384)
  learned       0.309 0.423 0.374 0.335 0.325 0.360 0.401 0.336 0.525 0.385  (median 0.367)
Learned minus static: -0.064, +0.037, -0.008, -0.104, -0.034, -0.032, +0.073, -0.039, +0.134,
-0.045 (median -0.033, lower in 7 of 10; the ten probe seeds of 2026-12-02 gave the same numbers);
best validation simulability learned minus static median +0.016 (ahead in 8 of 10). Against no
explainer: learned median -0.006 (lower in 7 of 10, IQR [-0.043, +0.016]), static -0.001 (5 of
10).
A second teacher (fine-tuned on another shuffle: ``SMAT_E2E_DATA_SEED=1``, the same command, 36 min
alone, 2026-12-03), seeds 0-9:
  no explainer  0.445 0.359 0.470 0.336 0.331 0.305 0.289 0.358 0.434 0.345  (median 0.352)
  static (all)  0.433 0.387 0.467 0.436 0.473 0.312 0.402 0.376 0.460 0.318  (median 0.417)
  learned       0.461 0.292 0.321 0.386 0.446 0.372 0.485 0.532 0.414 0.317  (median 0.400)
learned minus static median -0.014 (lower in 6 of 10; simulability level, median 0.000).
So the learned explainer beats the static one with both teachers, as the paper finds (13 of 20
lower: a one-sided sign-test p of 0.13, a consistent median, not a significant effect), while
explanations do not help these students over none: with teacher 1 no explainer is best (learned
+0.033, static +0.022 in the median), with teacher 0 the learned explainer is level with it.
One seed takes ~3 min alone (teacher ~1.5 min once), ~3.6 min with the no-explainer row, so the
test is marked slow.

Why the warm-up (README "SMaT results"): at a run's start the meta-gradient on phi_T is batch
noise (`python -m experiments.smat.diagnose imdb:cpu`: mean cosine between batch pairs
-0.05 / 0.02 / -0.05 in three seeds), yet Adam at meta lr 5e-3 drops 40-52 of 72 heads in 32
steps, so without a warm-up the learned explainer is partly a draw of its first batches.

Earlier settings (the numbers behind the choice above):
- Wholly pretrained students, each seed its own teacher (``SMAT_E2E_REINIT="" SMAT_E2E_DATA_SEED=""``;
  2026-12-02, 2-core CPU): learned minus static, seeds 0-9: +0.018, -0.018, -0.016, -0.039,
  -0.060, +0.139, +0.025, +0.180, +0.049, +0.177 (median +0.022; seeds 0-4 alone gave -0.018, which
  an earlier version of this test asserted: the draw). The explanation carried almost nothing the
  students lacked (KL(E_T || E_S) 0.014 nats per example x beta 5 against a simulation loss of
  0.45) while the students overfit 256 sentences and swung by up to 1.1 nats between epochs.
  Without the warm-up (the paper's constant meta lr), seeds 0-4: -0.022, +0.046, +0.031, -0.019,
  -0.087.
- Students not pretrained (2026-12-02, seed 0: a 2-layer x 4-head encoder, hidden 64, SGD 0.05 x 4
  epochs and 0.5 x 16 epochs): with 256 sentences they never leave the majority class (validation
  simulability 0.699 for no explainer, static and learned).
- 2026-11-23, inner lr 0.02, 12 epochs, seed 1: learned 0.309 vs static 0.171.
- 2026-12-01, a teacher fine-tuned on 2,000 sentences x 3 epochs (``SMAT_E2E_TEACHER_N=2000
  SMAT_E2E_TEACHER_EPOCHS=3 SMAT_E2E_STUDENT_START=3000``; its all-layers explanation is 0.13-0.18
  nats from the pretrained students', per head up to 1.3-1.9): learned minus static -0.029 (teacher
  lr 1e-4, seed 1), +0.011 and -0.025 (lr 3e-4, seeds 0 and 1); at the paper's meta lr 5e-4, within
  0.008 in 3 of 3 (phi_T barely moves in 128 steps at 5e-4).
"""

import dataclasses
import os
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smat
from smat.data import load_sst_jain_wallace
from smat.data.tokenization import encode_texts, load_tokenizer
from smat.models import build, load_pretrained
from smat.models.layers import INIT_STD
from smat.teacher import TeacherTrainConfig, fit_teacher

# SMAT_E2E_SEED=S runs one seed (the form of the measurements above); SMAT_E2E_SEEDS="0 1" a set.
SEEDS = tuple(int(x) for x in os.environ.get("SMAT_E2E_SEEDS", os.environ.get("SMAT_E2E_SEED", " ".join(map(str, range(10))))).split())
# The shuffle of SST train that picks the teacher's and the students' sentences: one teacher for
# every seed by default; SMAT_E2E_DATA_SEED="" gives each seed its own (the form of the 2026-12-02
# measurements with pretrained students in the docstring).
DATA_SEED = os.environ.get("SMAT_E2E_DATA_SEED", "0") or None
# Students: (layers kept from the checkpoint, layers whose query and key start afresh). The env
# overrides SMAT_E2E_STUDENT_LAYERS=K and SMAT_E2E_REINIT="..." ("" keeps the whole checkpoint)
# replace both settings' values.
STUDENTS = {"one_layer": (1, (0,)), "six_layers": (6, (3, 4, 5))}
TEACHER_N = int(os.environ.get("SMAT_E2E_TEACHER_N", "800"))
TEACHER_EPOCHS = int(os.environ.get("SMAT_E2E_TEACHER_EPOCHS", "1"))
TEACHER_LR = float(os.environ.get("SMAT_E2E_TEACHER_LR", "1e-4"))
STUDENT_START = int(os.environ.get("SMAT_E2E_STUDENT_START", str(TEACHER_N)))  # 256 train, then 256 valid
INNER_LR = float(os.environ.get("SMAT_E2E_LR", "0.05"))
EPOCHS = int(os.environ.get("SMAT_E2E_EPOCHS", "8"))
META_LR = float(os.environ.get("SMAT_E2E_META_LR", "5e-3"))
WARMUP = int(os.environ.get("SMAT_E2E_WARMUP", "32"))  # meta-lr warm-up steps (MetaConfig.warmup_steps)
# SMAT_E2E_NO_EXPLAINER=1 also trains each seed's student without explanations (printed, not asserted).
ROWS = (("none",) if os.environ.get("SMAT_E2E_NO_EXPLAINER") == "1" else ()) + ("attention_all_layers", "attention")


def _mean_pool_teacher(model):
    def teacher_fn(params, batch, embeddings=None):
        e = model.embed(params["encoder"], batch["input_ids"]) if embeddings is None else embeddings
        out = model.encode(params["encoder"], e, batch["attention_mask"])
        m = batch["attention_mask"][..., None].astype(e.dtype)
        pooled = (out.last_hidden_state * m).sum(1) / jnp.maximum(m.sum(1), 1.0)  # padding rows: no tokens
        return smat.TeacherOutput(pooled @ params["w"] + params["b"], out.head_scores, e)

    return teacher_fn


def _truncate(model, num_layers):
    """The encoder and params of ``model``'s first ``num_layers`` layers (the layer params are stacked)."""
    if num_layers == model.config.num_layers:
        return model.encoder, model.params
    config = dataclasses.replace(model.config, num_layers=num_layers)
    params = {**model.params, "layers": jax.tree.map(lambda x: x[:num_layers], model.params["layers"])}
    return build(config), params


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
    return teacher_fn, params, data, history


def _student_setting(kind):
    layers, reinit = STUDENTS[kind]
    layers = int(os.environ.get("SMAT_E2E_STUDENT_LAYERS", layers))
    if "SMAT_E2E_REINIT" in os.environ:
        reinit = tuple(int(x) for x in os.environ["SMAT_E2E_REINIT"].split())
    return layers, reinit


@pytest.fixture(scope="module")
def teachers():
    return {}  # data seed -> _setting(...), shared by both student sizes


@pytest.mark.parametrize("kind", ["one_layer", pytest.param("six_layers", marks=pytest.mark.slow)])
def test_learned_explainer_beats_the_static_one(sst_assets, teachers, kind):
    student_layers, reinit = _student_setting(kind)
    encoder, encoder_params = _truncate(sst_assets[1], student_layers)
    student = smat.make_student(encoder, 2, head_activation=None, head_dropout=0.0)
    differences, no_explainer = [], []
    for seed in SEEDS:
        data_seed = seed if DATA_SEED is None else int(DATA_SEED)
        if data_seed not in teachers:  # one teacher per data seed, the last one kept
            teachers.clear()
            teachers[data_seed] = _setting(sst_assets, data_seed)
        teacher_fn, params, data, history = teachers[data_seed]
        predicted = data["valid"]["teacher_outputs"].argmax(-1)
        assert 0.2 < predicted.mean() < 0.8, "the teacher must not be one-class for simulability to mean anything"
        results, student_start = {}, _reinit_attention(encoder_params, reinit, seed)
        for name in ROWS:
            config = smat.SmatConfig(explainer=name, batch_size=16, max_epochs=EPOCHS, patience=EPOCHS, seed=seed,
                                     meta=smat.MetaConfig(mode="jvp", inner_lr=INNER_LR, meta_lr=META_LR,
                                                          warmup_steps=WARMUP))
            results[name] = smat.train_explainer(teacher_fn, params, data, config, student=student,
                                                 student_encoder_params=student_start,
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
        if "none" in results:
            no_explainer.append({k: round(r.metrics["valid_sim_loss"] - results["none"].metrics["valid_sim_loss"], 4)
                                 for k, r in results.items() if k != "none"})
    print(f"learned - static valid sim loss per seed {({s: round(d, 4) for s, d in zip(SEEDS, differences)})}")
    if no_explainer:
        print(f"minus no explainer, per seed: {dict(zip(SEEDS, no_explainer))}")
    assert statistics.median(differences) < 0, differences
