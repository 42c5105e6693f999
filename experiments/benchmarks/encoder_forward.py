"""Encoder forward throughput: our jitted JAX encoder vs PyTorch transformers.

Prints a Markdown table of examples/s (median of --repeats timed runs after warm-up).

  python experiments/benchmarks/encoder_forward.py                     # MiniLM, CPU, float32
  python experiments/benchmarks/encoder_forward.py --dtypes float32 bfloat16 --shapes minilm base

``minilm`` uses the real all-MiniLM-L6-v2 weights (6 x 384, batch 32 x 128);
``base`` is a random 12 x 768 BERT (batch 16 x 128), the size of ELECTRA-base / XLM-R-base.
torch runs wherever ``--torch-device`` says (default: cuda when available, else cpu).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from smat.models import TextConfig, build, load_pretrained

SHAPES = {"minilm": (32, 128), "base": (16, 128)}


def _time(fn, repeats, inner):
    fn()  # warm-up (compile / autotune)
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def _model(shape):
    if shape == "minilm":
        return load_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    config = TextConfig(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072)
    encoder = build(config)
    return encoder, encoder.init(jax.random.key(0))


def bench_jax(shape, dtype, repeats, inner):
    loaded = _model(shape)
    encoder, params = (loaded.encoder, loaded.params) if shape == "minilm" else loaded
    params = jax.tree.map(lambda x: x.astype(dtype), params)
    batch, seq = SHAPES[shape]
    ids = jnp.asarray(np.random.default_rng(0).integers(1000, 2000, (batch, seq)), jnp.int32)
    mask = jnp.ones((batch, seq), jnp.int32)
    forward = jax.jit(lambda p, i, m: encoder.apply(p, i, m).last_hidden_state)
    seconds = _time(lambda: forward(params, ids, mask).block_until_ready(), repeats, inner)
    return batch / seconds


def bench_torch(shape, dtype, attn, device, repeats, inner):
    import torch
    import transformers

    if shape == "minilm":
        model = transformers.BertModel.from_pretrained(
            str(load_pretrained("sentence-transformers/all-MiniLM-L6-v2").path), attn_implementation=attn)
    else:
        cfg = transformers.BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                      intermediate_size=3072, attn_implementation=attn)
        model = transformers.BertModel(cfg)
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    model = model.to(device=device, dtype=tdtype).eval()
    batch, seq = SHAPES[shape]
    ids = torch.randint(1000, 2000, (batch, seq), device=device)
    mask = torch.ones_like(ids)

    def run():
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask).last_hidden_state
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return batch / _time(run, repeats, inner)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["minilm"], choices=sorted(SHAPES))
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--torch-device", default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)

    device_name = jax.devices()[0].device_kind
    torch_device = args.torch_device
    rows = []
    for shape in args.shapes:
        for dtype in args.dtypes:
            batch, seq = SHAPES[shape]
            ours = bench_jax(shape, jnp.dtype(dtype), args.repeats, args.inner)
            row = {"shape": f"{shape} {batch}x{seq}", "dtype": dtype, "smat (jax.jit)": ours}
            if not args.no_torch:
                import torch

                torch_device = torch_device or ("cuda" if torch.cuda.is_available() else "cpu")
                for attn in ("eager", "sdpa"):
                    row[f"torch {attn}"] = bench_torch(shape, dtype, attn, torch_device, args.repeats, args.inner)
            rows.append(row)

    print(f"\nencoder forward, examples/s (median of {args.repeats}x{args.inner}); "
          f"jax {jax.__version__} on {device_name}, {platform.processor() or platform.machine()}, "
          f"{datetime.date.today().isoformat()}")
    if torch_device:
        import torch
        import transformers

        print(f"torch {torch.__version__} + transformers {transformers.__version__} on {torch_device}, "
              f"{torch.get_num_threads()} threads")
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " | speed-up vs best torch |")
    print("|" + "---|" * (len(columns) + 1))
    for row in rows:
        best_torch = max((v for k, v in row.items() if k.startswith("torch")), default=None)
        cells = [row[c] if isinstance(row[c], str) else f"{row[c]:,.0f}" for c in columns]
        ratio = f"{row['smat (jax.jit)'] / best_torch:.2f}x" if best_torch else "-"
        print("| " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main()
