"""Structure of the transcribed Neely et al. (2022) numbers in experiments.agreement.paper."""

import itertools

import pytest

from experiments.agreement import paper

UPPER_PAIRS = list(itertools.combinations(paper.METHODS, 2))


def test_tau_holds_the_upper_triangle_for_every_model_and_task():
    assert len(paper.METHODS) == 6 and len(set(paper.METHODS)) == 6
    assert set(paper.TAU) == {"transformer", "bilstm"}
    for model, by_task in paper.TAU.items():
        assert set(by_task) == set(paper.TASKS), model
        for task, pairs in by_task.items():
            assert len(pairs) == 15 and list(pairs) == UPPER_PAIRS, (model, task)
            for pair, (mean, std) in pairs.items():
                assert -1.0 <= mean <= 1.0 and 0.0 < std <= 1.0, (model, task, pair)


def test_tau_accessor_is_symmetric_and_none_when_absent():
    for model, task, (a, b) in itertools.product(paper.TAU, paper.TASKS, UPPER_PAIRS):
        assert paper.tau(model, task, a, b) == paper.tau(model, task, b, a) == paper.TAU[model][task][(a, b)]
    assert paper.tau("bilstm", "sst", "lime", "lime") is None
    assert paper.tau("bilstm", "sst", "lime", "occlusion") is None
    assert paper.tau("bilstm", "yelp", "lime", "deeplift") is None
    assert paper.tau("cnn", "sst", "lime", "deeplift") is None


@pytest.mark.parametrize("model,task,a,b,expected", [
    ("bilstm", "sst", "integrated_gradients", "gradient_shap", (0.9707, 0.0382)),
    ("bilstm", "imdb", "lime", "integrated_gradients", (0.6538, 0.1557)),
    ("bilstm", "qqp", "attention", "integrated_gradients", (0.0143, 0.2019)),
    ("bilstm", "snli", "gradient_shap", "deep_shap", (0.2219, 0.1927)),
    ("transformer", "imdb", "attention", "lime", (0.1259, 0.1000)),
    ("transformer", "imdb", "attention", "deep_shap", (0.2303, 0.0826)),
    ("transformer", "qqp", "lime", "deeplift", (0.0032, 0.1555)),
    ("transformer", "snli", "deeplift", "deep_shap", (0.5554, 0.3576)),
    ("transformer", "mnli", "integrated_gradients", "gradient_shap", (0.4780, 0.2441)),
])
def test_spot_values(model, task, a, b, expected):
    assert paper.tau(model, task, a, b) == expected
    assert paper.tau(model, task, b, a) == expected


def test_attention_flow_table():
    assert set(paper.FLOW_TAU) == {"mnli", "qqp", "snli", "sst"}
    for task, row in paper.FLOW_TAU.items():
        assert tuple(row) == paper.METHODS[1:], task
        assert all(-1.0 <= v <= 1.0 for v in row.values()), task
    assert paper.FLOW_TAU["mnli"]["deeplift"] == 0.2159
    assert paper.FLOW_TAU["sst"]["lime"] == 0.1795


def test_accuracy_tables():
    for table in (paper.ACCURACY, paper.VALID_ACCURACY, paper.TRAIN_MINUTES):
        assert set(table) == set(paper.MODELS)
        assert all(set(by_task) == set(paper.TASKS) for by_task in table.values())
    for model, task in itertools.product(paper.MODELS, paper.TASKS):
        cell = paper.ACCURACY[model][task]
        assert set(cell) == {"uniform", "softmax"}
        for mean, std in cell.values():
            assert 0.5 < mean < 1.0 and 0.0 < std < 0.05, (model, task)
        mean, std = paper.VALID_ACCURACY[model][task]  # percent
        assert 50.0 < mean < 100.0 and 0.0 < std < 5.0, (model, task)
        mean, std = paper.TRAIN_MINUTES[model][task]
        assert mean > 0.0 and std > 0.0, (model, task)
    assert paper.ACCURACY["transformer"]["mnli"] == {"uniform": (0.599, 0.002), "softmax": (0.779, 0.002)}
    assert paper.VALID_ACCURACY["bilstm"]["imdb"] == (87.975, 1.375)
    assert set(paper.SPLIT_SIZES) == set(paper.TASKS)
    assert paper.SPLIT_SIZES["sst"] == {"train": 8544, "validation": 1101, "test": 2210}
