"""``--set`` overrides of frozen experiment configs."""

import dataclasses

import pytest

from experiments.common import override, override_suffix
from experiments.smat import configs


def test_override_sets_nested_fields_with_the_field_types():
    cfg = configs.get_config("images:cpu")
    new = override(cfg, ["smat.meta.meta_lr=5e-4", "smat.max_epochs=20", "seeds=(0, 9)", "sizes=500",
                         "smat.meta.mode=jvp", "smat.meta.inner_lr=1"])
    assert new.smat.meta.meta_lr == 5e-4 and new.smat.max_epochs == 20
    assert new.seeds == (0, 9) and new.sizes == (500,) and new.smat.meta.mode == "jvp"
    assert isinstance(new.smat.meta.inner_lr, float) and new.smat.meta.inner_lr == 1.0
    assert dataclasses.replace(new, smat=cfg.smat, seeds=cfg.seeds, sizes=cfg.sizes) == cfg  # nothing else moved
    assert cfg.smat.meta.meta_lr != 5e-4  # frozen: the original is untouched


@pytest.mark.parametrize("assignment, message", [
    ("smat.meta.metalr=1", "no field 'metalr'"),
    ("smat.max_epochs=1.5", "the field holds a int"),
    ("seeds", "field.path=value"),
    ("smat.meta.mode=fast", "mode must be"),  # the config's own validation still runs
])
def test_override_rejects_unknown_fields_and_wrong_types(assignment, message):
    with pytest.raises(ValueError, match=message):
        override(configs.get_config("images:smoke"), [assignment])


def test_override_suffix_names_the_results_folder():
    assert override_suffix(["smat.meta.meta_lr=5e-4", "seeds=(0, 9)"]) == "__meta_lr=5e-4__seeds=0-9"
