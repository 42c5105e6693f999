"""The persistent compilation cache: a second process reads back what the first compiled."""

import os
import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent("""
    import jax, jax.numpy as jnp
    from smat.runtime import enable_compilation_cache
    events = []
    jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
    folder = enable_compilation_cache(min_compile_seconds=0.0)
    f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())
    print(folder, float(f(jnp.ones((8, 8)))), events.count("/jax/compilation_cache/cache_hits"))
""")


def _run(env: dict) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True,
                         timeout=300)
    return out.stdout.split()


@pytest.mark.parametrize("how", ["SMAT_CACHE_DIR", "SMAT_COMPILATION_CACHE"])
def test_a_second_process_hits_the_cache(tmp_path, how):
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "SMAT_COMPILATION_CACHE")}
    env[how] = str(tmp_path)
    folder = str(tmp_path / "jax") if how == "SMAT_CACHE_DIR" else str(tmp_path)
    first, second = _run(env), _run(env)
    assert first[0] == second[0] == folder and first[1] == second[1]
    assert first[2] == "0" and int(second[2]) >= 1  # compiled, then read back
    assert any(name.endswith("-cache") for name in os.listdir(folder))


def test_zero_leaves_the_cache_off(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env |= {"SMAT_CACHE_DIR": str(tmp_path), "SMAT_COMPILATION_CACHE": "0"}
    assert _run(env)[0] == "None" and _run(env)[2] == "0"
    assert not (tmp_path / "jax").exists()


def test_fast_compilation_turns_xla_optimizations_off_inside_and_restores_the_setting():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from smat.runtime import fast_compilation

    def flag():
        return jax.config.values["jax_disable_most_optimizations"]

    x = jnp.linspace(-2.0, 2.0, 64).reshape(8, 8)
    reference = jax.jit(lambda a: jnp.tanh(a @ a.T).sum(0))(x)
    assert flag() is False
    with fast_compilation():
        assert flag() is True
        fast = jax.jit(lambda a: jnp.tanh(a @ a.T).sum(0))(x)  # a new function: compiled inside
        with fast_compilation(False):  # False changes nothing, it does not turn the setting off
            assert flag() is True
    assert flag() is False
    np.testing.assert_allclose(fast, reference, atol=1e-5)  # sums of tanh near +-1: float32 rounding
    with pytest.raises(RuntimeError), fast_compilation():
        raise RuntimeError
    assert flag() is False


@pytest.mark.parametrize("argv, fast", [(["imdb:smoke"], True), (["imdb:cpu"], False), (["imdb"], False),
                                        (["imdb:smoke", "--compile", "full"], False),
                                        (["imdb:cpu", "--compile", "fast"], True)])
def test_runners_compile_fast_for_smoke_variants_unless_told(argv, fast):
    import jax

    from experiments.common import compilation, parser

    args = parser("doc", "experiment", "help").parse_args(argv)
    with compilation(args):
        assert jax.config.values["jax_disable_most_optimizations"] is fast
    assert jax.config.values["jax_disable_most_optimizations"] is False
