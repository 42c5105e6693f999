"""Data set loaders and manifests (smat.data, issue 3 items 1-2).

The real files come from ../shared/data; every count asserted below is a published
one (or, where noted, read independently from the raw file in the test). Formats with
no offline copy (CIFAR-100, 20 Newsgroups, AG News, MNLI, QQP) are exercised on tiny
files the tests write in the official layout.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from smat import data
from smat.data import DataFormatError, DataUnavailableError, ManifestError
from smat.data.manifest import MANIFESTS, file_sha256

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def need(shared: Path, rel: str) -> Path:
    path = shared / rel
    if not path.exists():
        pytest.skip(f"{path} is absent from the shared data folder")
    return path


def sha256sums(shared: Path) -> dict[str, str]:
    lines = (shared / "SHA256SUMS").read_text().splitlines()
    return {name.removeprefix("./"): digest for digest, name in (line.split() for line in lines)}


@pytest.fixture(scope="module")
def imdb(shared_data):
    return data.load_imdb(need(shared_data, "imdb/aclImdb_labeled.tar.gz"))


@pytest.fixture(scope="module")
def eraser(shared_data):
    return data.load_eraser_movies(need(shared_data, "eraser/movies.tar.gz"))


@pytest.fixture(scope="module")
def mlqe(shared_data):
    return data.load_mlqe_pe(need(shared_data, "mlqe-pe"))


# ----------------------------------------------------------------------------- IMDB


def test_imdb_published_counts_and_rating_rule(imdb, shared_data):
    assert imdb.dev is None and imdb.meta["verified"]
    for split in (imdb.train, imdb.test):
        assert len(split) == 25_000
        assert np.bincount(split.labels).tolist() == [12_500, 12_500]
        # Maas et al.: negative reviews have ratings <= 4, positive ones >= 7
        ratings = split.extras["rating"]
        assert ratings[split.labels == 0].max() <= 4 and ratings[split.labels == 1].min() >= 7
    with tarfile.open(shared_data / "imdb/aclImdb_labeled.tar.gz") as archive:
        member = next(m for m in archive if m.isfile() and m.name.endswith(".txt"))  # the first review
        oracle = archive.extractfile(member).read().decode()
    key = member.name.removeprefix("aclImdb/").removesuffix(".txt")
    split = imdb[key.split("/")[0]]
    assert split.texts[split.ids.index(key)] == oracle


def test_imdb_folder_and_tarball_read_the_same(tmp_path):
    reviews = {"train/pos/3_8.txt": "great", "train/neg/1_2.txt": "awful <br />film",
               "test/pos/0_10.txt": "superb", "test/neg/2_1.txt": "dull", "train/unsup/5_0.txt": "skip me"}
    for rel, text in reviews.items():
        (tmp_path / "aclImdb" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "aclImdb" / rel).write_text(text)
    with tarfile.open(tmp_path / "aclImdb_v1.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "aclImdb", arcname="aclImdb")
    folder = data.load_imdb(tmp_path / "aclImdb", verify=False)
    tarball = data.load_imdb(tmp_path / "aclImdb_v1.tar.gz", verify=False)
    for a, b in ((folder.train, tarball.train), (folder.test, tarball.test)):
        assert a.ids == b.ids and a.texts == b.texts and a.labels.tolist() == b.labels.tolist()
    assert folder.train.texts == ["awful <br />film", "great"] and folder.train.labels.tolist() == [0, 1]
    assert folder.meta["digests"] == tarball.meta["digests"]
    with pytest.raises(ManifestError, match=r"(?s)imdb: .*'train' label='neg': expected 12500 examples, found 1"):
        data.load_imdb(tmp_path / "aclImdb")


# --------------------------------------------------------------------------- ERASER


def test_eraser_counts_and_rationale_spans_match_evidence_text(eraser, shared_data):
    assert [len(eraser[s]) for s in ("train", "dev", "test")] == [1600, 200, 199]
    assert eraser.meta["rationale_kind"] == "spans" and eraser.meta["verified"]
    # independent read of the jsonl: every non-empty evidence's text is its span's tokens
    with tarfile.open(shared_data / "eraser/movies.tar.gz") as archive:
        annotations = [json.loads(line) for line in
                       archive.extractfile("movies/train.jsonl").read().decode().splitlines()]
    first = annotations[0]
    i = eraser.train.ids.index(first["annotation_id"])
    tokens = eraser.train.texts[i].split()
    spans = {tuple(s) for s in eraser.train.rationales[i].tolist()}
    evidences = [e for group in first["evidences"] for e in group]
    assert {(e["start_token"], e["end_token"]) for e in evidences} == spans
    for e in evidences:
        assert " ".join(tokens[e["start_token"]:e["end_token"]]) == e["text"]
    assert ("mind", "-", "fuck", "movie") == tuple(tokens[63:67]) and (63, 67) in spans
    assert eraser.train.labels[i] == (first["classification"] == "POS")


def test_eraser_drops_empty_evidences_only(eraser, shared_data):
    with tarfile.open(shared_data / "eraser/movies.tar.gz") as archive:
        lines = archive.extractfile("movies/test.jsonl").read().decode().splitlines()
    expected = {}
    for record in map(json.loads, lines):
        spans = {(e["start_token"], e["end_token"]) for g in record["evidences"] for e in g}
        expected[record["annotation_id"]] = {s for s in spans if s[0] < s[1]}
    got = {i: {tuple(s) for s in r.tolist()} for i, r in zip(eraser.test.ids, eraser.test.rationales, strict=True)}
    assert got == expected


def test_eraser_extracted_folder_verifies_like_the_tarball(eraser, shared_data, tmp_path):
    with tarfile.open(shared_data / "eraser/movies.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    folder = data.load_eraser_movies(tmp_path / "movies")
    assert folder.meta["verified"] and folder.meta["digests"] == eraser.meta["digests"]
    assert folder.test.ids == eraser.test.ids


def test_truncated_tarball_is_reported(shared_data, tmp_path):
    raw = need(shared_data, "eraser/movies.tar.gz").read_bytes()
    (tmp_path / "movies.tar.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError, match=r"movies\.tar\.gz: truncated gzip stream"):
        data.load_eraser_movies(tmp_path / "movies.tar.gz")


# ------------------------------------------------------------------------------ SST


def test_sst_jain_wallace_length_filter_reproduces_published_counts(shared_data):
    path = need(shared_data, "sst/jain_wallace/sst_dataset.csv")
    sst = data.load_sst_jain_wallace(path)
    assert np.bincount(sst.train.labels).tolist() == [3034, 3321]
    assert np.bincount(sst.test.labels).tolist() == [863, 862]
    assert all(5 < len(t.split()) for s in (sst.train, sst.dev, sst.test) for t in s.texts)
    raw = data.load_sst_jain_wallace(path.parent, length_filter=False)
    assert [len(raw[s]) for s in ("train", "dev", "test")] == [6920, 872, 1821]
    # n > 5 alone keeps one more in train (neg) and test (pos): the longest sentence of each
    assert max(len(t.split()) for t in raw.train.texts) not in {len(t.split()) for t in sst.train.texts}


def test_jain_wallace_filter_drops_short_and_longest():
    texts = ["a b c d e", "a b c d e f", "a b c d e f g", *["x " * 9] * 2]
    assert data.jain_wallace_length_filter(texts).tolist() == [1, 2]


def test_sst2_reads_either_column_order_and_unlabelled_test(shared_data, tmp_path):
    folder = need(shared_data, "sst/SST-2")
    sst2 = data.load_sst2(folder)
    assert [len(sst2[s]) for s in ("train", "dev", "test")] == [67_349, 872, 1821]
    assert np.bincount(sst2.train.labels).tolist() == [29_780, 37_569]
    # rewrite in GLUE's own order (sentence<TAB>label): same records, same manifest hash
    for split in ("train", "dev", "test"):
        rows = [line.split("\t") for line in (folder / f"{split}.tsv").read_text().splitlines()[1:]]
        (tmp_path / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for y, t in rows))
    glue = data.load_sst2(tmp_path)
    assert glue.meta["verified"] and glue.dev.texts == sst2.dev.texts
    assert glue.dev.labels.tolist() == sst2.dev.labels.tolist()
    # GLUE's official test file has no labels: counted, not hashed
    rows = [line.split("\t") for line in (folder / "test.tsv").read_text().splitlines()[1:]]
    (tmp_path / "test.tsv").write_text("index\tsentence\n" + "".join(f"{i}\t{t}\n" for i, (_, t) in enumerate(rows)))
    unlabelled = data.load_sst2(tmp_path)
    assert unlabelled.test.labels is None and unlabelled.meta["unverified"] == ("test (unlabelled)",)


# ----------------------------------------------------------------------------- SNLI


def test_snli_published_counts(shared_data):
    folder = need(shared_data, "snli")
    snli = data.load_snli(folder)
    assert snli.train is None and (len(snli.dev), len(snli.test)) == (9842, 9824)
    first_premise = (folder / "s1.dev").read_text().splitlines()[0].strip()
    first_label = (folder / "labels.dev").read_text().splitlines()[0]
    assert snli.dev.pairs[0][0] == first_premise
    assert snli.meta["label_names"][snli.dev.labels[0]] == first_label
    assert snli.meta["digests"]["s1.dev"] == sha256sums(shared_data)["snli/s1.dev"]


def test_snli_mismatched_pair_files_are_named(shared_data, tmp_path):
    folder = need(shared_data, "snli")
    for name in ("s1.dev", "labels.dev"):
        shutil.copy(folder / name, tmp_path / name)
    (tmp_path / "s2.dev").write_text("".join((folder / "s2.dev").read_text().splitlines(True)[:-1]))
    with pytest.raises(DataFormatError, match=r"mismatched pair files for dev: .*s1\.dev 9842, .*s2\.dev 9841"):
        data.load_snli(tmp_path)


# -------------------------------------------------------------------------- MLQE-PE


def test_mlqe_counts_per_pair_without_si_en(mlqe):
    assert mlqe.meta["langpairs"] == data.MLQE_PAIRS and "si-en" not in data.MLQE_PAIRS
    for split, n in (("train", 7000), ("dev", 1000), ("test", 1000)):
        pairs, counts = np.unique(mlqe[split].extras["langpair"], return_counts=True)
        assert dict(zip(pairs.tolist(), counts.tolist(), strict=True)) == dict.fromkeys(data.MLQE_PAIRS, n)
        assert mlqe[split].scores.dtype == np.float32


def test_mlqe_scores_and_word_tags_match_the_raw_files(mlqe, shared_data):
    import pandas as pd  # an independent reader, configured as SMaT's own loader was

    with tarfile.open(shared_data / "mlqe-pe/direct-assessments/train/en-de-train.tar.gz") as archive:
        table = pd.read_csv(archive.extractfile("en-de-train/train.ende.df.short.tsv"), sep="\t", quoting=3)
    en_de = [i for i, p in enumerate(mlqe.train.extras["langpair"]) if p == "en-de"]
    np.testing.assert_allclose(mlqe.train.scores[en_de], table["z_mean"].to_numpy(), rtol=1e-6)
    assert [mlqe.train.pairs[i][1] for i in en_de[:50]] == table["translation"].tolist()[:50]
    with tarfile.open(shared_data / "mlqe-pe/post-editing/train/en-de-train.tar.gz") as archive:
        gap_tags = archive.extractfile("en-de-train/train.tags").read().decode().splitlines()
    for i in en_de[:200]:
        source_tags, target_tags = mlqe.train.rationales[i]
        assert len(source_tags) == len(mlqe.train.extras["source_tokenized"][i].split())
        assert len(target_tags) == len(mlqe.train.extras["target_tokenized"][i].split())
        assert target_tags.tolist() == [t == "BAD" for t in gap_tags[i].split()[1::2]]


def test_mlqe_tarballs_extracted_in_place_verify(shared_data, tmp_path):
    root = need(shared_data, "mlqe-pe")
    for kind in ("direct-assessments", "post-editing"):
        for split in ("train", "dev", "test"):
            with tarfile.open(root / kind / split / f"ro-en-{split}.tar.gz") as archive:
                archive.extractall(tmp_path / kind / split, filter="data")
    ro_en = data.load_mlqe_pe(tmp_path, langpairs=("ro-en",))
    assert ro_en.meta["verified"] and [len(ro_en[s]) for s in ("train", "dev", "test")] == [7000, 1000, 1000]


def test_mlqe_scores_only_and_si_en_on_request(shared_data):
    only = data.load_mlqe_pe(need(shared_data, "mlqe-pe"), langpairs=("si-en",), word_tags=False)
    assert len(only.train) == 7000 and only.train.rationales is None and only.meta["verified"]


# ---------------------------------------------------------------------------- images


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} absent (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_shapes_dtypes_and_first_label():
    fashion = data.load_fashion_mnist(FASHION_DIR)
    assert fashion.train.images.shape == (60_000, 28, 28, 1) and fashion.train.images.dtype == np.uint8
    assert fashion.test.images.shape == (10_000, 28, 28, 1) and fashion.dev is None
    assert np.bincount(fashion.test.labels).tolist() == [1000] * 10
    raw = gzip.open(FASHION_DIR / "train-labels-idx1-ubyte.gz").read()
    assert fashion.train.labels[:5].tolist() == list(raw[8:13])
    assert fashion.meta["verified"]


def test_digits_split_is_a_deterministic_stratified_partition():
    a, b, c = (data.load_digits(seed=s) for s in (0, 0, 1))
    assert a.train.ids == b.train.ids and a.test.ids == b.test.ids
    assert a.train.ids != c.train.ids
    ids = [int(i) for s in (a.train, a.dev, a.test) for i in s.ids]
    assert sorted(ids) == list(range(1797))
    assert a.train.images.shape[1:] == (8, 8, 1) and a.train.images.max() == 16
    per_class = np.bincount(np.concatenate([a.train.labels, a.dev.labels, a.test.labels]))
    assert np.all(np.abs(np.bincount(a.dev.labels) - 0.2 * per_class) <= 1)


def _cifar_pickle(obj) -> bytes:
    return pickle.dumps({k.encode(): v for k, v in obj.items()}, protocol=2)


def test_cifar100_python_format_to_nhwc(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split in ("train", "test"):
        (folder / split).write_bytes(_cifar_pickle({
            "data": pixels, "fine_labels": [0, 1, 2, 99], "coarse_labels": [4, 1, 14, 19],
            "filenames": [b"a.png", b"b.png", b"c.png", b"d.png"]}))
    (folder / "meta").write_bytes(_cifar_pickle({"fine_label_names": [f"c{i}".encode() for i in range(100)]}))
    with tarfile.open(tmp_path / "cifar-100-python.tar.gz", "w:gz") as archive:
        archive.add(folder, arcname="cifar-100-python")
    cifar = data.load_cifar100(tmp_path / "cifar-100-python.tar.gz", verify=False)
    assert cifar.train.images.shape == (4, 32, 32, 3)
    # row layout is 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    assert cifar.train.images[1, 2, 3].tolist() == [pixels[1, k * 1024 + 2 * 32 + 3] for k in range(3)]
    assert cifar.test.labels.tolist() == [0, 1, 2, 99] and cifar.meta["label_names"][99] == "c99"
    with pytest.raises(ManifestError, match="expected 50000 examples, found 4"):
        data.load_cifar100(folder)
    (folder / "train").write_bytes(pickle.dumps({b"data": os.system}))  # a pickle that would run code
    with pytest.raises(DataFormatError, match="refusing to load"):
        data.load_cifar100(folder, verify=False)


# ---------------------------------------------------------- other official formats


def test_ag_news_binary_subset_from_official_csv(tmp_path):
    rows = [("1", "Peace talks", "Leaders met."), ("2", "Cup final", "A late goal."),
            ("3", "Stocks up", "Markets, again, rose."), ("4", "New chip", "Faster.")]
    for split in ("train", "test"):
        with open(tmp_path / f"{split}.csv", "w", newline="") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)
    ag = data.load_ag_news(tmp_path, verify=False)
    assert ag.train.texts == ["Leaders met.", "Markets, again, rose."] and ag.train.labels.tolist() == [0, 1]
    assert ag.meta["label_names"] == ("World", "Business") and ag.train.extras["title"][1] == "Stocks up"
    with pytest.raises(ManifestError, match="label='World': expected 30000"):
        data.load_ag_news(tmp_path)


def test_twenty_newsgroups_bydate_subset(tmp_path):
    for split, group, message in (("train", "rec.sport.hockey", 5), ("train", "rec.sport.baseball", 7),
                                  ("test", "rec.sport.hockey", 9), ("train", "sci.space", 1)):
        path = tmp_path / f"20news-bydate-{split}" / group / str(message)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"From: x\n\n{group} caf\xe9".encode("latin-1"))
    news = data.load_twenty_newsgroups(tmp_path, verify=False)
    assert news.train.labels.tolist() == [0, 1] and news.train.texts[1].endswith("rec.sport.hockey café")
    assert news.test.ids == ["test/rec.sport.hockey/9"]


def test_mnli_and_qqp_glue_tsv(tmp_path):
    header = "index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label"
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        row = '0\t1\t1e\tfiction\tA "man" sleeps.\tA man rests.\tentailment\tentailment'
        (tmp_path / name).write_text(f"{header}\n{row}\n")
    mnli = data.load_mnli(tmp_path, verify=False)
    assert mnli.train.pairs == [('A "man" sleeps.', "A man rests.")] and mnli.test.labels.tolist() == [0]
    (tmp_path / "qqp").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / "qqp" / name).write_text("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                                             "7\t1\t2\tWhy?\tHow come?\t1\n")
    qqp = data.load_qqp(tmp_path / "qqp", verify=False)
    assert qqp.dev.ids == ["7"] and qqp.dev.labels.tolist() == [1]
    (tmp_path / "qqp" / "dev.tsv").write_text("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n7\t1\t2\tWhy?\n")
    with pytest.raises(DataFormatError, match=r"dev\.tsv, line 2: 4 fields, need at least 6"):
        data.load_qqp(tmp_path / "qqp", verify=False)


def test_xnli_one_language_from_the_tsv_folder_or_the_release_zip(tmp_path):
    import zipfile

    header = "language\tgold_label\tsentence1_binary_parse\tsentence1\tsentence2\tpromptID\tpairID"
    rows = ["en\tneutral\t( x )\tBut there are many more.\tMany still need help.\t1\t1",
            "fr\tneutral\t( x )\tMais il y en a plus.\tBeaucoup ont besoin.\t1\t1",
            "en\tcontradiction\t( x )\tA man sleeps.\tA man runs.\t2\t2"]
    folder = tmp_path / "XNLI-1.0"
    folder.mkdir()
    (folder / "xnli.test.tsv").write_text("\n".join([header, *rows]) + "\n")
    (folder / "xnli.dev.tsv").write_text("\n".join([header, *rows[:2]]) + "\n")
    english = data.load_xnli("en", tmp_path, verify=False)  # the folder above XNLI-1.0/ is found too
    assert english.train is None and english.test.ids == ["1", "2"] and english.test.labels.tolist() == [1, 2]
    assert english.test.pairs[0] == ("But there are many more.", "Many still need help.") and len(english.dev.ids) == 1
    assert data.load_xnli("fr", folder, verify=False).test.pairs == [("Mais il y en a plus.", "Beaucoup ont besoin.")]
    with zipfile.ZipFile(tmp_path / "XNLI-1.0.zip", "w") as z:
        z.write(folder / "xnli.test.tsv", "XNLI-1.0/xnli.test.tsv")
    zipped = data.load_xnli("en", tmp_path / "XNLI-1.0.zip", verify=False)
    assert zipped.test.pairs == english.test.pairs and zipped.dev is None
    with pytest.raises(ManifestError):
        data.load_xnli("en", folder)  # 2 test pairs, not XNLI's 5,010
    with pytest.raises(DataFormatError, match="no rows in language 'de'"):
        data.load_xnli("de", folder, verify=False)


# ------------------------------------------------------------------- bring your own


def test_table_csv_with_split_column_and_span_rationales(tmp_path):
    path = tmp_path / "mine.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerows([["text", "label", "evidence", "part"],
                     ["a fine, warm film", "pos", "[[1, 3]]", "train"],
                     ["dull", "neg", "", "validation"],
                     ["so bad", "neg", "[[0, 2]]", "test"]])
    table = data.load_table(path, rationale_column="evidence", split_column="part")
    assert table.meta["label_names"] == ("neg", "pos") and table.meta["rationale_kind"] == "spans"
    assert table.train.texts == ["a fine, warm film"] and table.train.labels.tolist() == [1]
    assert table.train.rationales[0].tolist() == [[1, 3]] and table.dev.rationales[0].shape == (0, 2)
    assert table.test.ids == ["mine.csv:4"]


def test_table_jsonl_pairs_scores_and_tags(tmp_path):
    path = tmp_path / "qe.jsonl"
    rows = [{"src": "ein Haus", "mt": "a house", "z": 0.5, "tags": [0, 1]},
            {"src": "gut", "mt": "good", "z": -1.25, "tags": "1"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    table = data.load_table({"test": path}, text_columns=("src", "mt"), label_column=None,
                            score_column="z", rationale_column="tags")
    assert table.train is None and table.test.pairs == [("ein Haus", "a house"), ("gut", "good")]
    assert table.test.scores.tolist() == [0.5, -1.25] and table.meta["task"] == "regression"
    assert [r.tolist() for r in table.test.rationales] == [[0, 1], [1]]
    assert table.meta["rationale_kind"] == "token_tags"


def test_table_tsv_integer_labels_and_named_errors(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("id\tsentence\tlabel\nx1\tok \"quoted\" text\t1\nx2\tmeh\t0\n")
    table = data.load_table(path, text_columns="sentence", id_column="id", split="dev")
    assert table.dev.ids == ["x1", "x2"] and table.dev.texts[0] == 'ok "quoted" text'
    assert table.meta["label_names"] == ("0", "1")
    path.write_text("id\tsentence\tlabel\nx1\tok\t1\nx2\tmeh\t2\n")
    with pytest.raises(DataFormatError, match=r"d\.tsv:3: label '2' out of range"):
        data.load_table(path, text_columns="sentence", label_names=("neg", "pos"))
    with pytest.raises(DataFormatError, match=r"d\.tsv, line 2: missing column\(s\) \['text'\]"):
        data.load_table(path)
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": 0}\n{"text": \n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl, line 2: invalid JSON"):
        data.load_table(tmp_path / "bad.jsonl")
    (tmp_path / "empty.csv").write_text("text,label\n")
    with pytest.raises(DataFormatError, match=r"empty\.csv: no rows"):
        data.load_table(tmp_path / "empty.csv")


# ----------------------------------------------------------------------- manifests


def test_manifest_reports_truncated_copy(shared_data, tmp_path):
    lines = need(shared_data, "sst/jain_wallace/sst_dataset.csv").read_text().splitlines(True)
    (tmp_path / "sst_dataset.csv").write_text("".join(lines[:-40]))  # the last 40 test sentences
    with pytest.raises(ManifestError) as error:
        data.load_sst_jain_wallace(tmp_path)
    message = str(error.value)
    assert "sst_jain_wallace" in message and str(tmp_path) in message
    assert "split 'test' label='neg': expected 863 examples" in message
    assert "content sha256 of sst_dataset.csv" in message and "verify=False" in message
    assert len(data.load_sst_jain_wallace(tmp_path, verify=False).test) < 1725


def test_manifest_reports_altered_copy_with_the_same_counts(shared_data, tmp_path):
    text = need(shared_data, "sst/jain_wallace/sst_dataset.csv").read_text()
    (tmp_path / "sst_dataset.csv").write_text(text.replace("the rock is destined", "the rock is fated", 1))
    with pytest.raises(ManifestError, match=r"content sha256 of sst_dataset\.csv: expected f1cb07e5") as error:
        data.load_sst_jain_wallace(tmp_path)
    assert "examples" not in str(error.value)  # counts are intact: only the hash differs


def test_file_hash_matches_sha256sums_and_is_cached_by_stat(shared_data, tmp_path):
    sums = sha256sums(shared_data)
    for rel in ("sst/jain_wallace/sst_dataset.csv", "snli/labels.test"):
        assert file_sha256(need(shared_data, rel)) == sums[rel]
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == hashlib.sha256(b"abc").hexdigest()
    stat = path.stat()
    path.write_bytes(b"xyz")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_sha256(path) == hashlib.sha256(b"abc").hexdigest()  # same (path, size, mtime): cached
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert file_sha256(path) == hashlib.sha256(b"xyz").hexdigest()


def test_every_manifest_names_its_reference():
    assert all(m.reference and m.counts for m in MANIFESTS.values())


# ---------------------------------------------------------------------- resolution


def test_smat_data_dir_is_used_when_no_path_is_given(shared_data, monkeypatch):
    need(shared_data, "sst/jain_wallace/sst_dataset.csv")
    monkeypatch.setenv("SMAT_DATA_DIR", str(shared_data))
    sst = data.load_sst_jain_wallace()
    assert sst.meta["source"] == str(shared_data / "sst/jain_wallace/sst_dataset.csv")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty hub cache, however the hub libraries were configured."""
    monkeypatch.delenv("SMAT_DATA_DIR", raising=False)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"), raising=False)


def test_no_path_no_env_no_network_gives_one_clear_error(offline):
    with pytest.raises(DataUnavailableError) as error:
        data.load_imdb()
    message = str(error.value)
    assert "pass path=" in message and "$SMAT_DATA_DIR/imdb" in message and "currently unset" in message
    assert "Hugging Face hub dataset 'imdb'" in message and "aclImdb/{train,test}/{pos,neg}" in message
    assert "one of 3 ways" in message and "remote attempt failed" in message


def test_data_without_a_remote_copy_says_so(offline, monkeypatch, tmp_path):
    monkeypatch.setenv("SMAT_DATA_DIR", str(tmp_path))
    pattern = r"(?s)one of 2 ways.*which has no sst/jain_wallace/.*no hub / TFDS copy"
    with pytest.raises(DataUnavailableError, match=pattern):
        data.load_sst_jain_wallace()
    with pytest.raises(FileNotFoundError, match=r"no such file or folder(.|\n)*Expected layout: sst_dataset\.csv"):
        data.load_sst_jain_wallace(tmp_path / "missing.csv")


# --------------------------------------------------------------------------- splits


def test_split_rejects_ragged_columns_and_take_keeps_them_aligned():
    with pytest.raises(ValueError, match="differ in length"):
        data.Split(ids=["a", "b"], texts=["x"])
    split = data.Split(ids=["a", "b", "c"], texts=["x", "y", "z"], labels=np.array([0, 1, 0], np.int32),
                       extras={"rating": np.array([1, 9, 2])})
    taken = split.take([2, 0])
    assert taken.ids == ["c", "a"] and taken.texts == ["z", "x"]
    assert taken.labels.tolist() == [0, 0] and taken.extras["rating"].tolist() == [2, 1]


def test_read_tree_plain_tar_and_garbage(tmp_path):
    from smat.data.sources import read_tree

    with tarfile.open(tmp_path / "plain.tar", "w") as archive:
        for name, body in (("root/keep.txt", b"yes"), ("root/skip.bin", b"no")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    assert read_tree(tmp_path / "plain.tar", lambda n: n.endswith(".txt")) == {"root/keep.txt": b"yes"}
    (tmp_path / "garbage.tar").write_bytes(b"not a tar archive at all" * 40)
    with pytest.raises(DataFormatError, match=r"garbage\.tar: corrupted or truncated tar archive"):
        read_tree(tmp_path / "garbage.tar", lambda n: True)


def test_wrong_header_and_bad_row_are_named(tmp_path):
    from smat.data import DataFormatError, load_sst2, load_sst_jain_wallace

    for name in ("train", "dev", "test"):
        (tmp_path / f"{name}.tsv").write_text("text\tpolarity\nnice film\t1\n")
    with pytest.raises(DataFormatError, match=r"train\.tsv, line 1: no column named sentence"):
        load_sst2(tmp_path)
    bad = tmp_path / "sst_dataset.csv"
    bad.write_text("text,label,exp_split\na fine and honest film,1,train\nbad,x,train\n")
    with pytest.raises(DataFormatError, match=r"sst_dataset\.csv, line 3"):
        load_sst_jain_wallace(bad, verify=False)
