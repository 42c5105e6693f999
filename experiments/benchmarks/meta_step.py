"""Time per SMaT meta step, ``exact`` (reverse over reverse) vs ``jvp`` (forward over reverse).

Prints a Markdown table: ms per meta step (median of --repeats after warm-up), model
FLOPs of the step (XLA's cost analysis of the step with the layer scan unrolled, counted once per
shape on the first mode and used for every row of that shape), achieved TFLOP/s, MFU against the
measured matmul peak of this device in the step's dtype, and memory (the compiled step's buffers,
and the allocator's peak).

  python experiments/benchmarks/meta_step.py                                  # MiniLM size, float32
  python experiments/benchmarks/meta_step.py --shapes minilm base --dtypes float32 bfloat16

Shapes (random weights, real configs; teacher = the same architecture, cached head scores):
``minilm`` 6 x 384, 12 heads, batch 32 x 256; ``base`` 12 x 768, 12 heads, batch 16 x 256.
The peer to beat (quoted in issue 4, PyTorch 2.11 torch.func on one H100, float32):
112 ms (minilm) and 256 ms (base) per meta step.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import platform
import statistics
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from smat import explainers
from smat.metalearn import MetaConfig, make_trainer
from smat.models import TextConfig, build
from smat.students import cast, make_student

warnings.filterwarnings("ignore", message="Some donated buffers were not usable")

SHAPES = {
    "minilm": (TextConfig(vocab_size=30522, hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1536), 32, 256),
    "base": (TextConfig(vocab_size=30522, hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072), 16, 256),
    # a dry run of the script's code paths in seconds (not a benchmark)
    "tiny": (TextConfig(vocab_size=30522, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128), 4, 32),
}
PEER_MS = {"minilm": 112.0, "base": 256.0}
PEER_GIB = {"minilm": 16.4, "base": 23.9}


def matmul_peak(dtype, n: int = 4096 if jax.default_backend() != "cpu" else 1024) -> float:
    """Measured FLOP/s of one large square matmul chain in ``dtype`` on the default device."""
    x = jnp.ones((n, n), dtype)
    chain = jax.jit(lambda a: jax.lax.fori_loop(0, 8, lambda _, b: (b @ a) * 1e-3, a))
    chain(x).block_until_ready()
    t0 = time.perf_counter()
    chain(x).block_until_ready()
    return 8 * 2 * n**3 / (time.perf_counter() - t0)


@contextlib.contextmanager
def _unrolled_scans():
    """XLA's cost analysis counts a while-loop body once; unroll the layer scan to count every layer."""
    scan = jax.lax.scan
    jax.lax.scan = functools.partial(scan, unroll=True)
    try:
        yield
    finally:
        jax.lax.scan = scan


def model_flops(make, state, train, valid, key) -> float:
    """FLOPs of one meta step as XLA counts them, with the layer scan unrolled."""
    with _unrolled_scans():
        cost = make().meta_step.lower(state, train, valid, key).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan"))) if cost else float("nan")


def _batch(config, batch, seq, dtype, rng):
    lengths = rng.integers(seq // 2, seq + 1, batch)
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    return {
        "input_ids": jnp.asarray(rng.integers(1000, 2000, (batch, seq)) * mask, jnp.int32),
        "attention_mask": jnp.asarray(mask),
        "valid": jnp.ones((batch,), dtype),
        "teacher_outputs": jnp.asarray(rng.normal(size=(batch, 2)), dtype),
        "teacher_head_scores": jnp.asarray(rng.normal(size=(batch, config.num_layers, config.num_heads, seq)), dtype),
    }


def bench(shape: str, dtype: str, mode: str, repeats: int, flops: float | None = None) -> dict:
    """One (shape, dtype, mode) row; ``flops``: a count already made for this shape and mode (dtype-independent)."""
    config, batch, seq = SHAPES[shape]
    dtype = jnp.dtype(dtype)
    student = make_student(build(config), 2, head_dropout=0.0)
    expl = explainers.get("attention", num_layers=config.num_layers, num_heads=config.num_heads)
    make = lambda: make_trainer(student, expl, expl, MetaConfig(mode=mode))  # noqa: E731
    trainer = make()
    state = trainer.init(jax.random.key(0))
    state = cast(state, dtype)
    rng = np.random.default_rng(0)
    train, valid = _batch(config, batch, seq, dtype, rng), _batch(config, batch, seq, dtype, rng)
    key = jax.random.key(1)
    if flops is None:
        flops = model_flops(make, state, train, valid, key)
    compiled = trainer.meta_step.lower(state, train, valid, key).compile()
    memory = compiled.memory_analysis()
    static_bytes = (memory.temp_size_in_bytes + memory.argument_size_in_bytes + memory.output_size_in_bytes
                    if memory is not None else float("nan"))
    for _ in range(2):  # warm-up
        state, metrics = compiled(state, train, valid, key)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, metrics = compiled(state, train, valid, key)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use", static_bytes)
    seconds = statistics.median(times)
    return {"seconds": seconds, "flops": flops, "peak_bytes": peak, "xla_bytes": static_bytes,
            "finite": bool(np.isfinite(float(metrics["sim_loss"])))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["minilm"], choices=sorted(SHAPES))
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--modes", nargs="+", default=["exact", "jvp"], choices=["exact", "jvp"])
    parser.add_argument("--repeats", type=int, default=3 if jax.default_backend() == "cpu" else 20)
    args = parser.parse_args(argv)

    device = jax.devices()[0]
    name = getattr(device, "device_kind", device.platform)
    if device.platform == "cpu":
        name = f"{platform.processor() or platform.machine()} CPU x{jax.local_device_count()} ({__import__('os').cpu_count()} cores)"
    precision = jax.config.jax_default_matmul_precision or "default (TF32 for float32 on NVIDIA GPUs)"
    print(f"# meta step, {datetime.date.today()}, jax {jax.__version__}, {name}, matmul precision {precision}\n")
    peaks = {d: matmul_peak(jnp.dtype(d)) for d in args.dtypes}
    for d, p in peaks.items():
        print(f"measured {d} matmul peak: {p / 1e12:.2f} TFLOP/s")
    print("\n'XLA GiB': arguments + outputs + temporaries of the compiled step (this row alone); 'peak GiB': the "
          "device allocator's peak so far in this process (every earlier row included; run one shape per process "
          "for a per-shape peak). 'vs peer': the torch.func step's time (float32) / ours; its memory: "
          + ", ".join(f"{k} {v} GiB" for k, v in PEER_GIB.items()) + ".")
    print("\n| shape | dtype | mode | ms / step | GFLOP / step | TFLOP/s | MFU | XLA GiB | peak GiB | vs peer (f32) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    # Model FLOPs per shape: XLA's count of the first mode's step (the same algorithm, so the same useful work,
    # for both modes and every dtype); counting once saves the slow unrolled compile of every other row.
    flops = {}
    for shape in args.shapes:
        for dtype in args.dtypes:
            results = {}
            for mode in args.modes:
                r = results[mode] = bench(shape, dtype, mode, args.repeats, flops.get(shape))
                flops[shape] = r["flops"]
                ms = r["seconds"] * 1e3
                rate = r["flops"] / r["seconds"]
                peer = f"{PEER_MS[shape] / ms:.2f}x" if dtype == "float32" and shape in PEER_MS else ""
                print(f"| {shape} | {dtype} | {mode} | {ms:.1f} | {r['flops'] / 1e9:.0f} | {rate / 1e12:.3f} | "
                      f"{rate / peaks[dtype]:.1%} | {r['xla_bytes'] / 2**30:.2f} | {r['peak_bytes'] / 2**30:.2f} | "
                      f"{peer} |", flush=True)
            if {"exact", "jvp"} <= results.keys():
                print(f"|  |  | jvp speed-up | {results['exact']['seconds'] / results['jvp']['seconds']:.2f}x |"
                      "  |  |  |  |  |  |")


if __name__ == "__main__":
    main()
