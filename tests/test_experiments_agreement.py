"""The agreement study end to end at smoke scale (``make agreement:smoke``), on the real SST and SNLI files."""

import dataclasses
import json

import numpy as np
import pytest

from agreement import metrics
from experiments.agreement import run as agreement_run
from experiments.agreement.configs import get_config

pytestmark = pytest.mark.usefixtures("real_data")


@pytest.fixture(scope="module")
def real_data(shared_data):
    if not (shared_data / "sst").exists() or not (shared_data / "snli").exists():
        pytest.skip("../shared/data/sst or snli is absent")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMAT_DATA_DIR", str(shared_data))
        yield


@pytest.fixture(scope="module")
def sst_smoke(tmp_path_factory, real_data):
    out = tmp_path_factory.mktemp("agreement")
    summary = agreement_run.run(get_config("sst:smoke"), out, progress=False)
    return out / "agreement-sst-smoke", summary


def test_smoke_writes_every_table_and_figure(sst_smoke):
    folder, summary = sst_smoke
    table = (folder / "table.md").read_text()
    for heading in ("Table 1", "Table 2", "Table 3", "Table 4", "Table 5", "Table 6"):
        assert heading in table
    assert "OFFLINE SUBSTITUTION" in table  # MiniLM stands in for DistilBERT, and says so
    assert "OFFLINE SUBSTITUTION: fastText wiki-news-300d-1M" in table  # GloVe for the BiLSTM's vectors
    for name in ("tau_bilstm.png", "tau_transformer.png", "tokens_bilstm.png", "tokens_transformer.png",
                 "tokens_bilstm_disagree.png", "tokens_transformer_disagree.png"):
        assert (folder / name).stat().st_size > 0
    saved = json.loads((folder / "aggregate.json").read_text())
    assert set(saved["models"]) == {"bilstm", "transformer"}
    assert len(saved["models"]["bilstm"]["kendall_tau"]) == 15  # 6 explanations, every pair once
    assert len(saved["models"]["transformer"]["kendall_tau"]) == 21  # + attention flow
    for model in saved["models"].values():
        for value in model["kendall_tau"].values():
            assert -1.0 <= value["mean"] <= 1.0 or value["count"] == 0
        assert set(model["test_accuracy"]) == {"softmax", "uniform"}


def test_saved_scores_reproduce_the_reported_agreement(sst_smoke):
    """The per-instance scores are kept for reuse; tau recomputed from them with scipy matches."""
    from scipy.stats import kendalltau

    folder, summary = sst_smoke
    scores = dict(np.load(folder / "scores" / "transformer-87.npz"))
    features = scores["features"].astype(bool)
    assert features.any(1).all() and (scores["lime"][~features] == 0).all()
    assert not features[:, 0].any()  # [CLS] is neither perturbed nor ranked (special_tokens="exclude")
    taus = []
    for row in range(len(features)):
        keep = features[row]
        value = kendalltau(scores["lime"][row][keep], scores["integrated_gradients"][row][keep]).statistic
        taus.append(value)
    reported = summary["models"]["transformer"]["kendall_tau"]["lime|integrated_gradients"]
    np.testing.assert_allclose(reported["mean"], np.nanmean(taus), atol=1e-5)
    assert reported["undefined"] == int(np.isnan(taus).sum())
    # the other measures beside it: Spearman (scipy) and Krishna et al.'s top-k agreements (by hand)
    from scipy.stats import spearmanr

    k, pair = summary["models"]["transformer"]["top_k"], ("lime", "integrated_gradients")
    rho, shared, same_rank = [], [], []
    for row, keep in enumerate(features):
        a, b = (scores[m][row][keep] for m in pair)
        rho.append(spearmanr(a, b).statistic)
        top = [np.argsort(-x, kind="stable")[:min(k, keep.sum())] for x in (a, b)]
        shared.append(len(set(top[0]) & set(top[1])) / len(top[0]))
        same_rank.append(np.mean(top[0] == top[1]))
    measures = summary["models"]["transformer"]
    np.testing.assert_allclose(measures["spearman"]["lime|integrated_gradients"]["mean"], np.nanmean(rho), atol=1e-5)
    np.testing.assert_allclose(measures["feature_agreement"]["lime|integrated_gradients"]["mean"], np.mean(shared))
    np.testing.assert_allclose(measures["rank_agreement"]["lime|integrated_gradients"]["mean"], np.mean(same_rank))
    assert f"feature agr. @{k}" in (folder / "table.md").read_text()
    # the position-bias diagnostic: tau of the flow scores with the token index, over the same tokens
    by_position = [kendalltau(scores["flow"][row][keep], np.flatnonzero(keep)).statistic
                   for row, keep in enumerate(features)]
    position = summary["models"]["transformer"]["position_tau"]["flow"]
    np.testing.assert_allclose(position["mean"], np.nanmean(by_position), atol=1e-5)
    assert "position bias" in (folder / "table.md").read_text()


def test_figure_one_picks_an_alike_and_a_disagreeing_instance():
    nan = np.nan
    values = {"kendall_tau": {"a|b": np.array([0.9, 0.1, -0.2, 0.0, nan]), "a|c": np.array([0.8, 0.0, -0.4, 0.1, nan])},
              "feature_agreement": {"a|b": np.array([1.0, 1.0, 0.2, 0.4, 1.0]),
                                    "a|c": np.array([1.0, 0.8, 0.2, 0.6, 1.0])}}
    picked = agreement_run.figure_one_instances(values, short=np.array([True, True, True, True, True]))
    assert picked["alike"][0] == 1 and picked["disagree"][0] == 2  # row 4: tau undefined
    np.testing.assert_allclose(picked["alike"][1:], (0.05, 0.9))
    only_long = agreement_run.figure_one_instances(values, short=np.zeros(5, bool))
    assert only_long["disagree"][0] == 2  # no short instance: any instance


def test_exact_ranks_keep_float64_ties_and_nan():
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, (6, 9)).astype(np.float64) + 1e-12 * rng.integers(0, 2, (6, 9))  # float32 merges these
    ranks = agreement_run.exact_ranks(x)
    assert ranks.dtype == np.float32
    np.testing.assert_array_equal(ranks, rankdata(x, method="dense", axis=-1) - 1)
    flow_like = np.array([[0.1, 0.1 + 1e-12, 0.3, np.nan]])
    tau = metrics.kendall_tau(agreement_run.exact_ranks(flow_like), np.array([[1.0, 2.0, 3.0, 4.0]]),
                              mask=np.array([[1, 1, 1, 0]]))
    assert float(tau.value[0]) == 1.0  # in float32 the first two would tie: 0.816
    assert np.isnan(agreement_run.exact_ranks(flow_like)[0, 3])


def test_deep_shap_with_identical_baselines_is_deeplift(sst_smoke):
    """The reference's Deep-SHAP averages DeepLIFT over two copies of the pad baseline."""
    folder, _ = sst_smoke
    for model in ("bilstm", "transformer"):
        scores = np.load(folder / "scores" / f"{model}-87.npz")
        np.testing.assert_allclose(scores["deep_shap"], scores["deeplift"], rtol=1e-4, atol=1e-7)


def test_a_finished_run_is_reused_not_recomputed(sst_smoke, tmp_path):
    folder, first = sst_smoke
    stamps = {p.name: p.stat().st_mtime_ns for p in (folder / "scores").iterdir()}
    again = agreement_run.run(get_config("sst:smoke"), folder.parent, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "scores").iterdir()} == stamps
    assert again["models"]["bilstm"]["kendall_tau"] == first["models"]["bilstm"]["kendall_tau"]


def test_a_checkout_with_the_saved_scores_resumes_without_the_models(sst_smoke, tmp_path, monkeypatch):
    """``runs/`` and ``scores/`` travel with ``results/`` (the models do not): a run in a fresh
    checkout takes the finished transformer seeds from them, trains nothing, and reports the same."""
    import shutil

    import smat.teacher

    folder, first = sst_smoke
    for path in (folder / "scores").iterdir():
        assert "input_ids" not in np.load(path).files  # token ids are the data's: not saved
    for name in ("runs", "scores"):
        shutil.copytree(folder / name, tmp_path / folder.name / name)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished seed was trained again")

    monkeypatch.setattr(smat.teacher, "fit_teacher", no_training)
    again = agreement_run.run(dataclasses.replace(get_config("sst:smoke"), models=("transformer",)), tmp_path,
                              progress=False)
    assert not (tmp_path / folder.name / "models").exists()
    for field in ("kendall_tau", "test_accuracy", "position_tau"):
        assert again["models"]["transformer"][field] == first["models"]["transformer"][field]


def test_pair_bilstm_compares_attention_on_the_premise_only(tmp_path):
    """SNLI with the flat pair BiLSTM: attention lives on the premise, the attributions on both sequences."""
    cfg = dataclasses.replace(get_config("snli:smoke"), models=("bilstm",), uniform=False)
    summary = agreement_run.run(cfg, tmp_path, progress=False)
    scores = np.load(tmp_path / "agreement-snli-smoke" / "scores" / "bilstm-87.npz")
    hypothesis = (scores["segment_ids"] == 1) & scores["features"].astype(bool)
    assert hypothesis.any()
    assert (scores["attention"][hypothesis] == 0).all() and (scores["integrated_gradients"][hypothesis] > 0).any()
    corr = agreement_run.correlations(scores, ("attention", "lime"), premise_only=True)["kendall_tau"]["attention|lime"]
    premise = scores["features"].astype(bool) & (scores["segment_ids"] == 0)
    want = metrics.kendall_tau(scores["attention"], scores["lime"], premise)
    np.testing.assert_allclose(corr, np.where(want.defined, want.value, np.nan), atol=1e-6)
    assert "premise" in (tmp_path / "agreement-snli-smoke" / "table.md").read_text()
    assert summary["models"]["bilstm"]["test_accuracy"]["softmax"]


def test_pair_transformer_ranks_both_sentences_but_no_special_token(tmp_path):
    """SNLI with the transformer: [CLS] premise [SEP] hypothesis [SEP], segment ids from the
    tokenizer; every word of both sentences is ranked, no [CLS] / [SEP]; rollout and flow too."""
    from smat.data.tokenization import load_tokenizer

    cfg = dataclasses.replace(get_config("snli:smoke"), models=("transformer",), uniform=False)
    summary = agreement_run.run(cfg, tmp_path, progress=False)
    folder = tmp_path / "agreement-snli-smoke"
    scores = dict(np.load(folder / "scores" / "transformer-87.npz"))
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(load_tokenizer("minilm").to_str())  # a copy: truncation set here only
    tokenizer.enable_truncation(cfg.max_length, strategy="longest_first")  # HF's for pairs
    ids = agreement_run.load_task(cfg)[0]["test"]
    features = scores["features"].astype(bool)
    for row, index in enumerate(scores["index"]):
        premise, hypothesis = ids[0][index]
        words = tokenizer.encode(premise, hypothesis)  # the tokenizers library's own pair encoding
        special, n = np.asarray(words.special_tokens_mask, bool), len(words.ids)
        np.testing.assert_array_equal(features[row, :n], ~special)  # [CLS] and both [SEP] left out
        assert special.sum() == 3 and not features[row, n:].any()
        np.testing.assert_array_equal(scores["segment_ids"][row, :n], words.type_ids)
        assert features[row, :n][np.asarray(words.type_ids) == 1].any()  # hypothesis words are ranked
    padding = np.stack([np.arange(features.shape[1]) >= len(tokenizer.encode(*ids[0][i]).ids) for i in scores["index"]])
    for name in ("attention", "flow", "lime", "integrated_gradients"):
        assert (scores[name][features] > 0).any() and (scores[name][padding] == 0).all(), name
    for name in ("lime", "integrated_gradients"):  # [CLS] / [SEP] are not perturbed; rollout and flow give them mass
        assert (scores[name][~features] == 0).all(), name
    tau = summary["models"]["transformer"]["kendall_tau"]
    assert len(tau) == 21 and tau["attention|flow"]["count"] > 0


def test_mnli_tests_on_xnli_english_and_qqp_on_glue_dev(monkeypatch):
    """The reference's MNLI split (train, dev matched to select, XNLI-en test) and QQP's stand-in."""
    import smat.data
    from smat.data import DatasetSplits, Split

    def splits(name, **parts):
        made = {k: Split(ids=[f"{k}{i}" for i in range(n)], pairs=[(f"{name} {k} {i}", "h") for i in range(n)],
                         labels=(np.arange(n) % 2).astype(np.int32)) for k, n in parts.items()}
        return DatasetSplits(name, made.get("train"), made.get("dev"), made.get("test"), {})

    monkeypatch.setattr(smat.data, "load_mnli", lambda: splits("mnli", train=30, dev=5, test=6))
    monkeypatch.setattr(smat.data, "load_xnli", lambda language: splits(f"xnli-{language}", dev=3, test=7))
    monkeypatch.setattr(smat.data, "load_qqp", lambda: splits("qqp", train=2100, dev=9))
    mnli, notes = agreement_run.load_task(get_config("mnli"))
    assert [len(mnli[k][1]) for k in ("train", "valid", "test")] == [30, 5, 7]
    assert mnli["test"][0][0] == ("xnli-en test 0", "h") and mnli["valid"][0][0] == ("mnli dev 0", "h")
    assert any("XNLI" in n for n in notes)
    qqp, _ = agreement_run.load_task(get_config("qqp"))
    assert [len(qqp[k][1]) for k in ("train", "valid", "test")] == [100, 2000, 9]


def test_set_overrides_and_the_reference_embedding_init(tmp_path):
    """``--set embedding_init=allennlp``: OOV and pad rows drawn like court-of-xai's, in its own folder."""
    summary = agreement_run.main(["sst:smoke", "--out", str(tmp_path), "--quiet", "--models", "bilstm",
                                  "--set", "embedding_init=allennlp", "--set", "uniform=False"])
    folder = tmp_path / "agreement-sst-smoke__embedding_init=allennlp__uniform=False"
    assert summary["experiment"] == folder.name and (folder / "table.md").exists()
    assert any("N(mean, std)" in n for n in summary["notes"])
    with np.load(folder / "models" / "bilstm-softmax.npz") as saved:
        (table,) = [saved[k][0] for k in saved.files if saved[k].ndim == 3 and saved[k].shape[-1] == 50]
    assert np.abs(table[0]).sum() > 0  # the pad row (LIME's replacement, the baselines' input) is not zero
    with pytest.raises(ValueError, match="embedding_init"):
        agreement_run.main(["sst:smoke", "--out", str(tmp_path), "--quiet", "--set", "embedding_init=normal"])


def test_draw_chunks_shrink_with_transformer_length_only():
    chunk = agreement_run.chunk_draws
    # 128 tokens, 16 instances: the SST plan's chunks (LIME 100, IG 10, Grad-SHAP 5 draws)
    assert [chunk(m, 16, 128, True) for m in ("lime", "integrated_gradients", "gradient_shap")] == [100, 10, 5]
    assert [chunk(m, 16, 320, True) for m in ("lime", "integrated_gradients", "gradient_shap")] == [16, 1, 1]
    assert chunk("lime", 16, 320, False) == 100  # the BiLSTM's memory is linear in seq
    assert chunk("lime", 4, 2048, True) == 1
    settings = agreement_run._settings(get_config("sst:smoke"), "lime", None, None, (4, 32), True)
    assert settings["samples_per_batch"] == 64  # capped by the smoke plan's 64 LIME samples
