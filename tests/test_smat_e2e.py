"""SMaT end to end on real data: a fine-tuned MiniLM teacher on SST, MiniLM students.

The learned (meta-trained) attention explainer must leave the student with a lower
validation simulation loss than the static all-layers explainer from the same start
(same student init, data order and dropout keys; only phi_T differs).

Scale (CPU-sized, everything else as the paper): the teacher is all-MiniLM-L6-v2 with a
mean-pooled linear head fine-tuned for one epoch on 800 SST training sentences; the
students start from the public checkpoint and see 256 other training sentences, with 256
more for validation. Deviations from the paper's plan, needed to learn anything in 128
steps: inner SGD lr 0.05 (paper 5e-3, tuned for ~10x more steps), meta lr 5e-3 (5e-4),
a linear student head. The measured losses are printed (``pytest -s``).

Status (measured 2026-11-23, 2-core CPU): this does NOT hold reliably yet, so the test is
marked slow (``make test-slow``) instead of being weakened. Best-epoch validation
simulation loss, learned vs static all-layers:
  seed 0, inner lr 0.05, 8 epochs:  0.302 vs 0.324 (learned lower at 7 of 8 epochs)
  seed 1, inner lr 0.05, 8 epochs:  0.390 vs 0.344
  seed 2, inner lr 0.05, 8 epochs:  0.429 vs 0.398 (simulability 0.809 vs 0.805)
  seed 1, inner lr 0.02, 12 epochs: 0.309 vs 0.171 (learned behind from epoch 2 on)
At this scale (128 meta steps, a teacher fine-tuned for 25 steps whose attention is still
close to the students' pretrained starting point) single-seed trajectories differ more
by SGD noise than by the explainer, and phi_T moving at meta lr 5e-3 gives the student a
moving target.

Measured 2026-12-01 (same CPU; students and valid from sentences 3000-3512 of the shuffled
train split, the teacher fine-tuned longer: 2,000 sentences x 3 epochs, teacher train loss
0.18 at lr 1e-4 / 0.21 at lr 3e-4, accuracy against gold 0.797 / 0.785 on the students'
valid), learned minus static validation simulation loss at the best-simulability epoch:
  teacher lr 1e-4: seed 1 -0.029 (0.516 vs 0.545)
  teacher lr 3e-4: seed 0 +0.011 (0.488 vs 0.477), seed 1 -0.025 (0.522 vs 0.547)
Per-epoch losses swing by up to 0.25 (inner lr 0.05), so one seed cannot separate the two.
(Reproduce one with SMAT_E2E_DATA_SEED=0 SMAT_E2E_TEACHER_N=2000 SMAT_E2E_TEACHER_EPOCHS=3
SMAT_E2E_TEACHER_LR=3e-4 SMAT_E2E_STUDENT_START=3000 SMAT_E2E_SEED=1 TEST_WORKERS=0
PYTEST_ARGS="-s -k learned_explainer" make test-slow, which prints the losses; the teacher's epoch losses are
[0.573, 0.34, 0.211] at lr 3e-4, [0.559, 0.317, 0.179] at lr 1e-4.)
The teacher's heads do differ from the students' start: KL(teacher || pretrained) of the
all-layers explanation on the valid sentences is 0.18 (this fixture's teacher), 0.13 and
0.16 (the longer ones); per head up to 1.3-1.9 nats (layers 3-4); for scale, the pretrained
explanation is 1.32 nats from uniform.

Measured 2026-12-01 (same CPU, the 2,000 x 3 teacher at lr 1e-4, the paper's meta lr 5e-4
instead of 5e-3, everything else as above; /tmp script, not committed), best-epoch valid
simulation loss, no explainer / static all layers / learned:
  seed 0: 0.487 / 0.476 / 0.476   seed 1: 0.464 / 0.545 / 0.536   seed 2: 0.583 / 0.440 / 0.440
Learned <= static in 3 of 3 seeds, but by 0.0005-0.008: at meta lr 5e-4 phi_T barely moves in
128 steps, so the two runs stay together until the best epoch, and the no-explainer student is
as good (seed 1: better). The curves swing from 0.44 to 1.2 between epochs at inner lr 0.05
(e.g. static seed 2: 0.544, 1.199, 0.440, 0.479, 1.041), so the students' instability at this
inner lr, not the explainer, sets the comparison. Next (GPU): 5 seeds x N = 500 at the paper's inner lr
and meta lr, the no-explainer student as a reference, a median over seeds in the assertion.

Measured 2026-12-02 (`python -m experiments.smat.diagnose imdb:cpu`, README "SMaT results"): at a run's
start the meta-gradient on phi_T is batch noise (16 batch pairs: mean cosine -0.05 / 0.02 / -0.05, seeds
0 / 9 / 11), yet Adam at meta lr 5e-3 drops 40-52 of 72 heads in 32 steps; a single short run's learned explainer
is therefore partly a draw, which a median over seeds (or a meta-gradient averaged over valid batches)
has to absorb before this assertion can be expected to hold.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smat
from smat.data import load_sst_jain_wallace
from smat.data.tokenization import encode_texts, load_tokenizer
from smat.models import load_pretrained
from smat.teacher import TeacherTrainConfig, fit_teacher

SEED = int(os.environ.get("SMAT_E2E_SEED", "0"))
DATA_SEED = int(os.environ.get("SMAT_E2E_DATA_SEED", str(SEED)))  # the shuffle of SST train
TEACHER_N = int(os.environ.get("SMAT_E2E_TEACHER_N", "800"))
TEACHER_EPOCHS = int(os.environ.get("SMAT_E2E_TEACHER_EPOCHS", "1"))
TEACHER_LR = float(os.environ.get("SMAT_E2E_TEACHER_LR", "1e-4"))
STUDENT_START = int(os.environ.get("SMAT_E2E_STUDENT_START", str(TEACHER_N)))  # 256 train, then 256 valid
INNER_LR = float(os.environ.get("SMAT_E2E_LR", "0.05"))
EPOCHS = int(os.environ.get("SMAT_E2E_EPOCHS", "8"))


def _mean_pool_teacher(model):
    def teacher_fn(params, batch, embeddings=None):
        e = model.embed(params["encoder"], batch["input_ids"]) if embeddings is None else embeddings
        out = model.encode(params["encoder"], e, batch["attention_mask"])
        m = batch["attention_mask"][..., None].astype(e.dtype)
        pooled = (out.last_hidden_state * m).sum(1) / jnp.maximum(m.sum(1), 1.0)  # padding rows: no tokens
        return smat.TeacherOutput(pooled @ params["w"] + params["b"], out.head_scores, e)

    return teacher_fn


@pytest.fixture(scope="module")
def setting(shared_data):
    path = shared_data / "sst" / "jain_wallace" / "sst_dataset.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    sst = load_sst_jain_wallace(path)
    model = load_pretrained("minilm")
    tokenizer = load_tokenizer("minilm")
    order = np.random.default_rng(DATA_SEED).permutation(len(sst.train.texts))
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
def test_learned_explainer_beats_the_static_one(setting):
    teacher_fn, params, data, model, history = setting
    predicted = data["valid"]["teacher_outputs"].argmax(-1)
    assert 0.2 < predicted.mean() < 0.8, "the teacher must not be one-class for simulability to mean anything"
    student = smat.make_student(model.encoder, 2, head_activation=None, head_dropout=0.0)
    results = {}
    for name in ("attention_all_layers", "attention"):
        config = smat.SmatConfig(explainer=name, batch_size=16, max_epochs=EPOCHS, patience=EPOCHS, seed=SEED,
                                 meta=smat.MetaConfig(mode="jvp", inner_lr=INNER_LR, meta_lr=5e-3))
        results[name] = smat.train_explainer(teacher_fn, params, data, config, student=student,
                                             student_encoder_params=model.params, progress=False)
    static, learned = results["attention_all_layers"], results["attention"]
    curve = {k: [round(h["valid_sim_loss"], 4) for h in r.history] for k, r in results.items()}
    print(f"\nteacher loss per epoch {[round(h['train_loss'], 3) for h in history]}; valid sim loss per epoch: {curve}")
    print({k: r.metrics for k, r in results.items()})
    coeffs = np.asarray(smat.simplex.sparsemax(learned.state.teacher_expl_params["head_coeffs"]))
    assert (coeffs == 0).sum() > 0, "sparsemax should have switched some heads off"
    assert learned.metrics["valid_sim_loss"] < static.metrics["valid_sim_loss"]
