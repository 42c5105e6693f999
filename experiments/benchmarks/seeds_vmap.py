"""W&P's 8 variance seeds trained in one vmapped step vs one seed at a time: time per epoch.

``python -m experiments.benchmarks.seeds_vmap [--seeds 8] [--epochs 1]`` (``make bench-seeds``) on the real SST
train split (Jain & Wallace's file, GloVe 50d, the base BiLSTM + attention, batch 32).
Both modes run the same jitted step from :func:`baselines.train.step_functions` on the
same batches; compilation is excluded (a warm-up epoch first). Prints a table.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from baselines.models import BiLSTMConfig, bilstm_classifier
from baselines.train import SEQ_KEYS, TrainConfig, TrainState, default_loss, encode_split, optimizer, stack_batches, \
    step_functions
from experiments.wiegreffe_pinter.configs import SEEDS
from smat.data import load_sst_jain_wallace
from smat.data.batching import bucket_lengths, iterate_batches
from smat.data.vectors import embedding_matrix, glove_6b_50d
from smat.data.vocab import MIN_DF, build_vocabulary


def _epoch_batches(arrays, seeds, config, epoch):
    fields = {k: v for k, v in arrays.items() if k != "lengths"}
    buckets = bucket_lengths(arrays["input_ids"].shape[1], step=config.bucket_step, minimum=config.bucket_step)
    streams = [iterate_batches(fields, arrays["lengths"], config.batch_size, seed=s, epoch=epoch, buckets=buckets,
                               seq_keys=SEQ_KEYS) for s in seeds]
    out = []
    for batches in zip(*streams):
        for b in batches:
            b.pop("index")
        out.append(stack_batches(batches))
    return out


def _time_epochs(model, arrays, seeds, config, embeddings, epochs) -> float:
    labels = arrays["labels"]
    pos_weight = float((labels == 0).sum() / (labels == 1).sum())
    train_step, _ = step_functions(model, config, default_loss, pos_weight)
    params = jax.vmap(lambda k: model.init(k, embeddings))(jnp.stack([jax.random.key(s) for s in seeds]))
    state = TrainState(params, jax.vmap(optimizer(config).init)(params))
    for batch in _epoch_batches(arrays, seeds, config, epoch=0):  # warm-up: compiles every width
        state, loss = train_step(state, batch)
    jax.block_until_ready(loss)
    batches = [_epoch_batches(arrays, seeds, config, epoch=e) for e in range(1, epochs + 1)]
    start = time.perf_counter()
    for epoch in batches:
        for batch in epoch:
            state, loss = train_step(state, batch)
    jax.block_until_ready(loss)
    return (time.perf_counter() - start) / epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    sst = load_sst_jain_wallace()
    vocab = build_vocabulary(sst.train.texts, MIN_DF["sst"])
    embeddings, _ = embedding_matrix(vocab.words, glove_6b_50d())
    arrays = encode_split(vocab, sst.train.texts, sst.train.labels)
    config = TrainConfig()
    model = bilstm_classifier(BiLSTMConfig(vocab_size=len(vocab), embedding_dim=embeddings.shape[1]))
    seeds = SEEDS[:args.seeds]
    vmapped = _time_epochs(model, arrays, seeds, config, embeddings, args.epochs)
    sequential = sum(_time_epochs(model, arrays, (s,), config, embeddings, args.epochs) for s in seeds)
    device = jax.devices()[0]
    print(f"SST train ({len(arrays['labels'])} sentences, batch {config.batch_size}), {len(seeds)} seeds, "
          f"{device.device_kind} ({device.platform}), jax {jax.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"| mode | s / epoch (all {len(seeds)} seeds) | speed-up |")
    print("|---|---:|---:|")
    print(f"| sequential (one seed at a time) | {sequential:.2f} | 1.00x |")
    print(f"| vmapped (one step for all seeds) | {vmapped:.2f} | {sequential / vmapped:.2f}x |")
    return {"sequential": sequential, "vmapped": vmapped}


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
