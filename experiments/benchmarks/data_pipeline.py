"""Tokenize and cache all 50k IMDB reviews: cold (tokenize + write) and warm (read the cache).

  python experiments/benchmarks/data_pipeline.py --imdb ../shared/data/imdb/aclImdb_labeled.tar.gz
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time

from smat.data import load_imdb
from smat.data.pipeline import tokenize_split
from smat.data.tokenization import load_tokenizer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imdb", default=None, help="aclImdb folder or tarball (default: SMAT_DATA_DIR / hub)")
    parser.add_argument("--tokenizer", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    imdb = load_imdb(args.imdb)
    t_load = time.perf_counter() - t0
    tokenizer = load_tokenizer(args.tokenizer)
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for phase in ("cold", "warm"):
            t0 = time.perf_counter()
            total = 0
            for split_name, split in imdb.items():
                arrays = tokenize_split(split, tokenizer, max_length=args.max_length, name=f"imdb-{split_name}",
                                        cache_dir=cache_dir)
                total += len(arrays["input_ids"])
            rows.append((phase, total, time.perf_counter() - t0))
    print(f"\nIMDB tokenize + cache at {args.max_length} tokens ({args.tokenizer}); "
          f"{os.cpu_count()} CPUs, {platform.machine()}, {datetime.date.today().isoformat()}")
    print(f"load (read + manifest check): {t_load:.1f} s")
    print("| phase | reviews | seconds |\n|---|---|---|")
    for phase, total, seconds in rows:
        print(f"| {phase} | {total:,} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
