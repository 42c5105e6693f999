"""What every experiment runner shares: provenance, the two report files and the command line."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import jax

from experiments.smat.report import write_json

__all__ = ["machine_name", "write_report", "parser", "finish"]


def machine_name() -> str:
    """The device the run used, in words (for reports)."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"
    return device.device_kind


def write_report(out: Path, cfg: Any, body: Sequence[str], notes: Sequence[str], fields: dict, *, started: float,
                 figures: Sequence[Path] = ()) -> dict:
    """Writes ``aggregate.json`` (provenance, notes, config, ``fields``) and ``table.md`` (``body``
    then when / where / how it ran, the notes and the config); returns the summary."""
    summary = {"experiment": cfg.name, "date": datetime.date.today().isoformat(), "machine": machine_name(),
               "command": " ".join(sys.argv), "jax": jax.__version__, "config": repr(cfg), "notes": list(notes),
               **fields, "seconds_this_invocation": time.perf_counter() - started,
               "figures": [str(f) for f in figures]}
    write_json(out / "aggregate.json", summary)
    lines = [*body, "", f"Run {summary['date']} on {summary['machine']} (jax {jax.__version__}) with "
             f"`{summary['command']}`.", "", *(f"- {n}" for n in notes), "", f"Config: `{cfg!r}`"]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    return summary


def parser(doc: str, positional: str, help: str) -> argparse.ArgumentParser:
    """A runner's command line: one positional argument, ``--out`` and ``--quiet``."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(positional, help=help)
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def finish(out_root: Path, summary: dict) -> dict:
    """Prints the table and the figure paths of a finished run."""
    print((out_root / summary["experiment"] / "table.md").read_text())
    for path in summary["figures"]:
        print(f"figure: {path}")
    return summary
