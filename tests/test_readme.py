"""The README's examples run as written."""

import re
from pathlib import Path

import jax
import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _example(name: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- readme-example: {name} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"README example {name!r} not found"
    return match.group(1)


def test_custom_teacher_example(shared_data, monkeypatch, capsys):
    if not (shared_data / "sst" / "jain_wallace" / "sst_dataset.csv").exists():
        pytest.skip("../shared/data/sst is absent")
    monkeypatch.chdir(README.parent)
    namespace: dict = {}
    with jax.numpy_dtype_promotion("standard"):  # users' default; the suite runs strict (conftest)
        exec(compile(_example("custom-teacher"), str(README), "exec"), namespace)
    result = namespace["result"]
    assert len(result.history) == 2 and 0.0 <= result.metrics["valid_simulability"] <= 1.0
    phi = np.asarray(result.state.teacher_expl_params["head_coeffs"])
    assert phi.shape == (4,) and not np.allclose(phi, 0.25)  # meta-learned away from uniform
    assert "valid_simulability" in capsys.readouterr().out
