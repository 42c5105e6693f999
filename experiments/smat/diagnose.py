"""Is the meta-gradient a signal or batch noise? ``python -m experiments.smat.diagnose imdb:cpu [--seed S]
[--batches K] [--epochs 0 2] [--set F=V]``.

SMaT moves the teacher's head coefficients phi_T along the pilot step's meta-gradient, one
(train batch, valid batch) pair at a time. Whether that follows the data or the batch draw is
measurable: at one fixed state (the run's start, and after E epochs of its meta steps) this
computes the meta-gradient on K different batch pairs and reports how much they agree:

- ``|mean g| / mean |g|``: 1 when every pair gives the same direction; about 1/sqrt(K) when the
  pairs' gradients are independent noise around zero (printed beside it);
- the mean cosine between pairs (0 for noise); unlike the ratio it weighs every pair alike, so a
  ratio above the noise level with a cosine near 0 means a few large gradients dominate the mean
  (``max |g| / median |g|`` is printed too);
- coordinates (heads) whose mean over the K pairs is more than 2 standard errors from 0.

With Adam (each step moves phi by about the meta lr per coordinate, whatever the gradient's
size) a noise-level direction still moves phi, and sparsemax zeroes a head once its
coefficient falls 1 / (layers x heads) below the mean: the report prints both scales.
The SMaT run is the experiment's "Attention (SMaT)" row for one seed and N (the first of
``sizes``), on the experiment's teacher and cache (built if absent, as ``run`` does);
results go to ``results/<experiment>[__<overrides>]__meta-gradients__seed<S>/`` (the table, and the
gradients themselves in ``meta_gradients.npz``).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path

import jax
import numpy as np
from jax.flatten_util import ravel_pytree
from tqdm.auto import tqdm

import smat
from experiments.common import add_set_option, apply_overrides, compilation, finish, parser, write_report
from experiments.smat.configs import get_config
from experiments.smat.run import STUDENT_SIDE, prepare_task, student_data
from smat.data.batching import device_batches

__all__ = ["agreement", "meta_gradients", "main"]


def agreement(grads: np.ndarray) -> dict:
    """How much K gradients agree: ``grads`` [K, P] -> the statistics in the module docstring."""
    grads = np.asarray(grads, np.float64)
    k = len(grads)
    if k < 2:
        raise ValueError("agreement needs at least two gradients")
    norms = np.linalg.norm(grads, axis=1)
    mean = grads.mean(0)
    unit = grads / np.maximum(norms, 1e-300)[:, None]
    cosines = (unit @ unit.T)[np.triu_indices(k, 1)]
    sem = grads.std(0, ddof=1) / np.sqrt(k)
    with np.errstate(divide="ignore", invalid="ignore"):  # sem = 0: every pair agrees (|t| = inf) or all are 0
        t = np.where(sem > 0, mean / sem, np.where(mean != 0, np.inf, 0.0))
    return {"batches": k, "coordinates": grads.shape[1], "mean_norm": float(norms.mean()),
            "norm_of_mean": float(np.linalg.norm(mean)), "ratio": float(np.linalg.norm(mean) / norms.mean()),
            "noise_ratio": float(1 / np.sqrt(k)), "mean_cosine": float(cosines.mean()),
            "norm_spread": float(norms.max() / np.median(norms)),
            "significant": int((np.abs(t) > 2).sum())}


def _stream(arrays, batch_size: int, seed: int):
    """Shuffled batches, epoch after epoch, without end."""
    return itertools.chain.from_iterable(device_batches(arrays, batch_size, seed=seed, epoch=epoch)
                                         for epoch in itertools.count())


def meta_gradients(run: smat.train.Setup, state, batches: int, seed: int, batch_size: int,
                   valid_batch_size: int | None = None) -> np.ndarray:
    """The meta-gradient on phi_T at ``state`` for ``batches`` (train, valid) batch pairs: [K, P]
    (valid batches of ``valid_batch_size``, default ``batch_size``)."""
    gradient = jax.jit(run.trainer.meta_gradient)
    sizes = {"train": batch_size, "valid": valid_batch_size or batch_size}
    train, valid = (_stream(run.splits[split], sizes[split], seed + 1000 + i)
                    for i, split in enumerate(("train", "valid")))
    keys = jax.random.split(jax.random.key(seed + 1000), batches)
    out = []
    for key, train_batch, valid_batch in zip(keys, train, valid):
        g = gradient(state.student_params, state.opt_state, state.teacher_expl_params, train_batch, valid_batch, key)
        out.append(np.asarray(ravel_pytree(g)[0], np.float64))
    return np.stack(out)


def _heads_kept(state, normalizer: str) -> int:
    return int((np.asarray(smat.simplex.get(normalizer)(state.teacher_expl_params["head_coeffs"])) > 0).sum())


def diagnose(cfg, out_root: Path, *, seed: int, batches: int, epochs: tuple[int, ...],
             task_from=None, progress: bool = True) -> dict:
    """Runs the measurement (module docstring); the teacher and its cache come from ``task_from``
    (default ``cfg``) as in :func:`experiments.smat.run.run_experiment`. Returns the report's summary."""
    started = time.perf_counter()
    source = task_from or cfg
    if source.teacher_from:
        source = get_config(source.teacher_from)
    task = prepare_task(source, out_root / source.name, progress, rows=("Attention (SMaT)",),
                        student_head=cfg.student_head)
    n = cfg.sizes[0]
    data = student_data(task, n, seed)  # the run's own student subset
    config = dataclasses.replace(cfg.smat, explainer="attention", seed=seed)
    run = smat.train.setup(task.teacher_fn, task.teacher_params, data, config, task.student,
                           task.student_encoder_params, progress=progress)
    state, key, rows, steps, grads = run.state, run.key, [], 0, {}
    for epoch in tqdm(range(max(epochs) + 1), desc="meta-gradients", disable=not progress):
        if epoch in epochs:
            grads[f"epoch{epoch}"] = meta_gradients(run, state, batches, seed, config.batch_size,
                                                    smat.train.meta_valid_batch_size(config))
            stats = agreement(grads[f"epoch{epoch}"])
            rows.append({"epoch": epoch, "meta_steps": steps, "heads_kept": _heads_kept(state, config.normalizer),
                         **stats})
        if epoch == max(epochs):
            break
        state, key, metrics = smat.train.train_epoch(run.trainer, state, run.splits, config, epoch, key, meta=True)
        steps += len(metrics)
    coefficients = rows[0]["coordinates"]
    body = [f"**{cfg.name}: meta-gradient agreement over {batches} (train, valid) batch pairs, seed {seed}, "
            f"N = {n}**", "",
            "| epoch | meta steps | heads kept | mean \\|g\\| | max / median \\|g\\| | \\|mean g\\| / mean \\|g\\| | "
            "noise level 1/sqrt(K) | mean cosine | heads with \\|t\\| > 2 |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    body += [f"| {r['epoch']} | {r['meta_steps']} | {r['heads_kept']} / {coefficients} | {r['mean_norm']:.3g} | "
             f"{r['norm_spread']:.1f} | {r['ratio']:.3f} | {r['noise_ratio']:.3f} | {r['mean_cosine']:.3f} | "
             f"{r['significant']} |" for r in rows]
    body += ["", f"Scales: Adam moves each coefficient by up to the meta lr ({config.meta.meta_lr:g}) per step; "
             f"sparsemax drops a head {1 / coefficients:.4f} below the mean coefficient."]
    name = f"{cfg.name}__meta-gradients__seed{seed}"
    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "meta_gradients.npz", **grads)  # [K, layers * heads] per measurement, for further analysis
    return write_report(out, dataclasses.replace(cfg, name=name), body, task.notes,
                        {"seed": seed, "n": n, "rows": rows}, started=started)


def main(argv=None) -> dict:
    p = parser(__doc__, "experiment", "imdb | images | mlqe, optionally :cpu or :smoke")
    add_set_option(p, "--set smat.meta.meta_lr=5e-4")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batches", type=int, default=16, help="batch pairs per measurement (K)")
    p.add_argument("--epochs", type=int, nargs="+", default=[0],
                   help="measure after these many epochs of the run's meta steps (0: at the start)")
    args = p.parse_args(argv)
    base = get_config(args.experiment)
    cfg = apply_overrides(base, args.set)
    student_side = args.set and all(a.partition("=")[0].strip().startswith(STUDENT_SIDE) for a in args.set)
    with compilation(args):
        return finish(args.out, diagnose(cfg, args.out, seed=args.seed, batches=args.batches,
                                         epochs=tuple(sorted(set(args.epochs))),
                                         task_from=base if student_side else None, progress=not args.quiet))


if __name__ == "__main__":
    main()
