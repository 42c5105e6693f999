"""What every experiment runner shares: provenance, the two report files and the command line."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import jax

from experiments.smat.report import write_json
from smat.runtime import enable_compilation_cache, fast_compilation

__all__ = ["machine_name", "write_report", "parser", "compilation", "finish", "override", "override_suffix"]


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
    """A runner's command line: one positional argument, ``--out`` and ``--quiet``.

    Every runner starts here, so this also turns on the persistent compilation cache
    (:func:`smat.runtime.enable_compilation_cache`; ``SMAT_COMPILATION_CACHE=0`` leaves it off).
    """
    enable_compilation_cache()
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(positional, help=help)
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--compile", choices=("auto", "fast", "full"), default="auto",
                   help="XLA's effort: 'fast' skips most optimizations (about 2x faster compiles, 2x slower "
                        "steps: for runs that are mostly compiling), 'full' is XLA's default; 'auto' (default): "
                        "fast for the :smoke variants, full otherwise")
    p.set_defaults(positional=positional)
    return p


def compilation(args: argparse.Namespace):
    """The context a runner runs in: :func:`smat.runtime.fast_compilation` for ``--compile fast``
    and, under ``--compile auto``, for ``:smoke`` variants (seconds of compute, a dozen programs)."""
    variant = str(getattr(args, args.positional)).partition(":")[2]
    return fast_compilation(args.compile == "fast" or (args.compile == "auto" and variant == "smoke"))


def add_set_option(p: argparse.ArgumentParser, example: str, more: str = "") -> None:
    """``--set FIELD=VALUE`` (repeatable): config overrides, applied by :func:`apply_overrides`."""
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help=f"override a config field, e.g. {example}; results go to "
                        f"results/<name>__<field>=<value>/{more}")


def apply_overrides(cfg: Any, assignments: Sequence[str]) -> Any:
    """``cfg`` with the ``--set`` assignments applied and its name suffixed by them (unchanged without any)."""
    if not assignments:
        return cfg
    return dataclasses.replace(override(cfg, assignments), name=cfg.name + override_suffix(assignments))


def finish(out_root: Path, summary: dict) -> dict:
    """Prints the table and the figure paths of a finished run."""
    print((out_root / summary["experiment"] / "table.md").read_text())
    for path in summary["figures"]:
        print(f"figure: {path}")
    return summary


def _parse_value(text: str, current: Any) -> Any:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word: a string field (explainer names, normalizers, modes)
    if isinstance(current, bool) or current is None:
        return value
    if isinstance(current, float) and isinstance(value, int):
        return float(value)
    if isinstance(current, tuple) and isinstance(value, (list, tuple, int, str)):
        return tuple(value) if isinstance(value, (list, tuple)) else (value,)
    if type(value) is not type(current):
        raise ValueError(f"{text!r} is a {type(value).__name__}, the field holds a {type(current).__name__}")
    return value


def override(cfg: Any, assignments: Sequence[str]) -> Any:
    """``cfg`` with ``"a.b.c=value"`` assignments applied to its nested frozen dataclasses.

    Values are Python literals (``5e-4``, ``(0, 9)``, ``'softmax'``) or bare words for
    strings; ints are accepted for float fields and single values for tuple fields. Unknown
    field names and wrong types raise ``ValueError`` naming what exists.
    """
    for assignment in assignments:
        path, sep, text = assignment.partition("=")
        if not sep or not path:
            raise ValueError(f"--set expects field.path=value, got {assignment!r}")

        def set_in(obj, keys):
            names = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else []
            if keys[0] not in names:
                raise ValueError(f"{type(obj).__name__} has no field {keys[0]!r} (in {path!r}); fields: {names}")
            current = getattr(obj, keys[0])
            if len(keys) == 1:
                try:
                    return dataclasses.replace(obj, **{keys[0]: _parse_value(text, current)})
                except ValueError as e:
                    raise ValueError(f"--set {assignment}: {e}") from None
            return dataclasses.replace(obj, **{keys[0]: set_in(current, keys[1:])})

        cfg = set_in(cfg, path.strip().split("."))
    return cfg


def override_suffix(assignments: Sequence[str]) -> str:
    """A results-folder suffix naming the overrides: ``["smat.meta.meta_lr=5e-4"]`` -> ``"__meta_lr=5e-4"``."""
    parts = []
    for assignment in assignments:
        path, _, text = assignment.partition("=")
        value = "-".join("".join(c if c.isalnum() or c in ".-" else " " for c in text).split())
        parts.append(f"{path.strip().split('.')[-1]}={value}")
    return "".join(f"__{p}" for p in parts)
