"""`make demo`: a short real pipeline on the offline default model (all-MiniLM-L6-v2).

Until the full SMaT demo lands (issue 5) this loads the real MiniLM weights into our
JAX encoder, and explains why two sentences are similar in two ways: the static
attention explainer of SMaT (softmax over tokens of the mean per-head row-mean
logits) and gradient x input of the cosine similarity with respect to the
embedding output. It prints a token table and writes an HTML heatmap.
"""

from __future__ import annotations

import argparse
import html
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tokenizers import Tokenizer

from smat.models import load_pretrained

PAIRS = [
    ("The film was a masterpiece of quiet, devastating performances.",
     "A brilliant movie with superb acting."),
    ("The plot collapses into a dull, predictable mess by the second hour.",
     "A boring film with a weak story."),
]


def mean_pool(hidden, mask):
    m = mask[..., None].astype(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--out", default="results/demo")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    model = load_pretrained(args.model)
    tok = Tokenizer.from_file(str(model.path / "tokenizer.json"))
    tok.no_padding()
    print(f"loaded {args.model} from {model.path} "
          f"({model.config.num_layers} layers x {model.config.num_heads} heads, hidden {model.config.hidden_size})")

    texts = [t for pair in PAIRS for t in pair]
    encs = tok.encode_batch(texts)
    seq = max(len(e.ids) for e in encs)
    ids = np.zeros((len(texts), seq), np.int32)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)], mask[i, : len(e.ids)] = e.ids, 1

    @jax.jit
    def explain(params, ids, mask):
        emb = model.embed(params, ids)

        def similarity(emb):
            out = model.encode(params, emb, mask)
            vec = mean_pool(out.last_hidden_state, mask)
            vec = vec / jnp.linalg.norm(vec, axis=-1, keepdims=True)
            sims = (vec[0::2] * vec[1::2]).sum(-1)  # sentence i vs its partner
            return sims.sum(), (sims, out.head_scores)

        grad, (sims, scores) = jax.grad(similarity, has_aux=True)(emb)
        pad = jnp.where(mask > 0, 0.0, -jnp.inf)
        attention = jax.nn.softmax(scores.mean(axis=(1, 2)) + pad, axis=-1)
        gxi = jnp.abs((grad * emb).sum(-1))
        gxi = gxi / jnp.maximum(gxi.sum(-1, keepdims=True), 1e-12)
        return sims, attention, gxi

    sims, attention, gxi = jax.device_get(explain(model.params, ids, mask))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for p, (a, b) in enumerate(PAIRS):
        print(f"\ncosine({a!r}, {b!r}) = {sims[p]:.3f}")
        for i in (2 * p, 2 * p + 1):
            tokens = encs[i].tokens
            print(f"  {'token':<14}{'attention':>10}{'grad x input':>14}")
            for t, (tk, s_att, s_gxi) in enumerate(zip(tokens, attention[i], gxi[i])):
                print(f"  {tk:<14}{s_att:>10.3f}{s_gxi:>14.3f}")
            rows.append((tokens, attention[i, : len(tokens)], gxi[i, : len(tokens)]))
    page = out_dir / "explanations.html"
    page.write_text(_html(rows))
    print(f"\nwrote {page}  ({time.perf_counter() - t0:.1f}s)")


def _html(rows) -> str:
    def line(tokens, scores):
        top = max(float(scores.max()), 1e-12)
        return " ".join(
            f'<span style="background: rgba(220,60,40,{float(s) / top:.2f})">{html.escape(t)}</span>'
            for t, s in zip(tokens, scores))

    body = "".join(f"<p><b>attention</b> {line(t, a)}<br><b>grad&times;input</b> {line(t, g)}</p>"
                   for t, a, g in rows)
    return f"<!doctype html><meta charset=utf-8><title>smat demo</title><body style='font-family:sans-serif'>{body}"


if __name__ == "__main__":
    main()
