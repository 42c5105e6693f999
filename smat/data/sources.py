"""Where data comes from: local paths, ``$SMAT_DATA_DIR``, archives, and the hub fallback.

Resolution order for every loader (:func:`locate`, then :func:`from_remote`):

1. the explicit ``path`` argument (a file or folder in the data set's official format);
2. ``$SMAT_DATA_DIR/<folder>``, where ``<folder>`` is the data set's entry in
   :data:`SOURCES` (the same layout as the project's ``../shared/data``);
3. the Hugging Face hub or TFDS by name, through the one adapter per data set in
   :mod:`smat.data.hub`. Any failure there (offline mode, no network, the optional
   package missing) becomes one :class:`DataUnavailableError` that lists the three
   options and the expected file layout.

Archives are read in memory, never extracted to disk: a gzip stream is inflated in
one pass and ``tarfile`` walks the inflated bytes, which is ~5x faster than
``tarfile``'s streaming gzip mode on IMDB's 50k small members.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tarfile
import zlib
from pathlib import Path
from typing import Callable, Mapping

__all__ = [
    "DataFormatError",
    "DataUnavailableError",
    "Source",
    "SOURCES",
    "data_dir",
    "locate",
    "from_remote",
    "read_tree",
    "read_bytes",
    "find_file",
    "decode",
]

ENV_VAR = "SMAT_DATA_DIR"


class DataFormatError(ValueError):
    """A file that is not in the format its loader expects (names the file and line)."""


class DataUnavailableError(RuntimeError):
    """No local copy was given or found, and the hub / TFDS could not provide one."""


@dataclasses.dataclass(frozen=True)
class Source:
    """Where one data set lives.

    Attributes:
      folder: its sub-folder of ``$SMAT_DATA_DIR`` (and of ``../shared/data``).
      layout: the official file layout a local path must follow, for error messages.
      remote: how the hub / TFDS fallback names it, or None when there is none.
      system_dirs: well-known local folders tried after ``$SMAT_DATA_DIR`` (Debian packages).
    """

    folder: str
    layout: str
    remote: str | None
    system_dirs: tuple[str, ...] = ()


SOURCES: Mapping[str, Source] = {
    "imdb": Source(
        "imdb",
        "aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, or the tarball holding that tree "
        "(aclImdb_v1.tar.gz from ai.stanford.edu/~amaas/data/sentiment, or aclImdb_labeled.tar.gz)",
        "Hugging Face hub dataset 'imdb'",
    ),
    "eraser_movies": Source(
        "eraser",
        "movies/docs/<docid>.txt and movies/{train,val,test}.jsonl, or movies.tar.gz holding them "
        "(https://www.eraserbenchmark.com/zipped/movies.tar.gz)",
        "Hugging Face hub dataset 'movie_rationales'",
    ),
    "sst_jain_wallace": Source(
        "sst/jain_wallace",
        "sst_dataset.csv with columns text,label,exp_split (Jain & Wallace 2019, "
        "github.com/successar/AttentionExplanation, preprocess/SST)",
        None,
    ),
    "sst2": Source(
        "sst/SST-2",
        "{train,dev,test}.tsv with a header naming a label column and a sentence column "
        "(GLUE SST-2: 'sentence<TAB>label')",
        "Hugging Face hub dataset 'glue', config 'sst2'",
    ),
    "snli": Source(
        "snli",
        "s1.<split>, s2.<split>, labels.<split> for split in {train,dev,test} "
        "(one example per line, as in e-SNLI / InferSent's dataset/SNLI)",
        "Hugging Face hub dataset 'snli'",
    ),
    "mnli": Source(
        "glue/MNLI",
        "train.tsv, dev_matched.tsv, dev_mismatched.tsv (GLUE MNLI: sentence1, sentence2, gold_label)",
        "Hugging Face hub dataset 'glue', config 'mnli'",
    ),
    "xnli": Source(
        "xnli",
        "xnli.test.tsv and xnli.dev.tsv of XNLI 1.0 (tab-separated, a header naming language, gold_label, "
        "sentence1, sentence2, pairID; every language's rows), directly, under XNLI-1.0/, or XNLI-1.0.zip",
        "Hugging Face hub dataset 'facebook/xnli', one config per language",
    ),
    "qqp": Source(
        "glue/QQP",
        "train.tsv, dev.tsv (GLUE QQP: question1, question2, is_duplicate)",
        "Hugging Face hub dataset 'glue', config 'qqp'",
    ),
    "mlqe_pe": Source(
        "mlqe-pe",
        "direct-assessments/{train,dev,test}/<pair>-<split>.tar.gz and "
        "post-editing/{train,dev,test}/<pair>-<split>.tar.gz (github.com/sheffieldnlp/mlqe-pe, data/), "
        "or those tarballs extracted in place",
        "Hugging Face hub dataset 'wmt20_mlqe_task1' (scores only, no word tags)",
    ),
    "fashion_mnist": Source(
        "fashion-mnist",
        "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (IDX files, github.com/zalandoresearch/fashion-mnist)",
        "TFDS dataset 'fashion_mnist' (pip install tensorflow-datasets)",
        system_dirs=("/usr/share/datasets/fashion-mnist",),  # apt-get install dataset-fashion-mnist
    ),
    "cifar100": Source(
        "cifar-100",
        "cifar-100-python/{train,test,meta} pickles, or cifar-100-python.tar.gz holding them "
        "(www.cs.toronto.edu/~kriz/cifar.html)",
        "Hugging Face hub dataset 'cifar100'",
    ),
    "twenty_newsgroups": Source(
        "20news",
        "20news-bydate-{train,test}/<newsgroup>/<message id>, or 20news-bydate.tar.gz holding them "
        "(qwone.com/~jason/20Newsgroups)",
        "scikit-learn's fetch_20newsgroups download",
    ),
    "mimic_iii": Source(
        "mimic-iii",
        "NOTEEVENTS.csv[.gz] and DIAGNOSES_ICD.csv[.gz] from MIMIC-III v1.4 (physionet.org/content/mimiciii, "
        "credentialed access: no public copy exists), plus for Diabetes CAML's {train,dev,test}_50_hadm_ids.csv "
        "(github.com/jamesmullenbach/caml-mimic, mimicdata/mimic3)",
        None,
    ),
    "fasttext": Source(
        "fasttext",
        "the vectors files as fastText publishes them (fasttext.cc/docs/en/pretrained-vectors.html, "
        "english-vectors.html): wiki.simple.vec, wiki-news-300d-1M.vec.zip (or the .vec inside it)",
        "fastText's download server (dl.fbaipublicfiles.com)",
    ),
    "ag_news": Source(
        "ag_news",
        "train.csv and test.csv without header: class index (1-4), title, description "
        "(ag_news_csv from Zhang et al. 2015)",
        "Hugging Face hub dataset 'ag_news'",
    ),
}


def data_dir() -> Path | None:
    """``$SMAT_DATA_DIR`` as a path, or None when unset or empty."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def locate(dataset: str, path: str | os.PathLike | None) -> Path | None:
    """The local copy of ``dataset`` to read, or None when the remote fallback should be tried.

    Args:
      dataset: a key of :data:`SOURCES`.
      path: the caller's explicit path; it must exist when given.

    Raises:
      FileNotFoundError: ``path`` was given but does not exist (with the expected layout).
    """
    source = SOURCES[dataset]
    if path is not None:
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{dataset}: no such file or folder: {path}\n"
                                    f"Expected layout: {source.layout}")
        return path
    root = data_dir()
    if root is not None and (root / source.folder).exists():
        return root / source.folder
    for folder in source.system_dirs:
        if Path(folder).is_dir():
            return Path(folder)
    return None


def from_remote(dataset: str, adapter: Callable[[], object] | None):
    """Call the hub / TFDS ``adapter`` for ``dataset``; any failure becomes one clear error.

    Raises:
      DataUnavailableError: listing the explicit path, ``$SMAT_DATA_DIR/<folder>`` and
        the remote option (or why there is none), with the expected file layout.
    """
    source = SOURCES[dataset]
    root = data_dir()
    env_state = f"currently {root}, which has no {source.folder}/" if root else "currently unset"
    cause = None
    if adapter is not None:
        try:
            return adapter()
        except Exception as e:  # offline mode, DNS failure, missing package: one message
            cause = e
    options = ["pass path=... pointing at a local copy in the official format",
               f"set ${ENV_VAR} so that ${ENV_VAR}/{source.folder} holds it ({env_state})"]
    if source.remote:
        options.append(f"with a network: {source.remote}, fetched when no path is given")
    listing = "".join(f"\n  {i}. {option}" for i, option in enumerate(options, start=1))
    remote = (f"\nThe remote attempt failed: {type(cause).__name__}: {cause}" if cause is not None
              else "" if source.remote else "\nThere is no hub / TFDS copy of this exact preprocessing.")
    raise DataUnavailableError(
        f"cannot load {dataset!r}: no local copy was given or found, and no remote copy is reachable.\n"
        f"Provide it in one of {len(options)} ways:{listing}\n"
        f"Expected layout: {source.layout}{remote}"
    ) from cause


def read_bytes(path: Path) -> bytes:
    """A file's bytes, inflated when it is gzip-compressed (checked to be complete)."""
    data = path.read_bytes()
    return _gunzip(data, path) if data[:2] == b"\x1f\x8b" else data


def _gunzip(data: bytes, path: Path) -> bytes:
    parts = []
    while data:
        inflater = zlib.decompressobj(wbits=31)
        try:
            parts.append(inflater.decompress(data))
            parts.append(inflater.flush())
        except zlib.error as e:
            raise DataFormatError(f"{path}: corrupted gzip stream ({e})") from e
        if not inflater.eof:
            raise DataFormatError(f"{path}: truncated gzip stream (the archive ends early; "
                                  f"re-download it)")
        data = inflater.unused_data  # concatenated gzip members, as gzip(1) allows
    return b"".join(parts)


def read_tree(path: Path, keep: Callable[[str], bool]) -> dict[str, bytes]:
    """The files of a folder or tar archive whose '/'-separated member path passes ``keep``.

    Args:
      path: a folder, or a ``.tar`` / ``.tar.gz`` / ``.tgz`` (any compression tarfile reads).
      keep: a predicate on member paths (relative to ``path`` for folders; as stored
        in the archive for tarballs).

    Returns:
      ``{member path: bytes}``.

    Raises:
      DataFormatError: naming the archive when it is truncated or corrupted.
    """
    if path.is_dir():
        out = {}
        for dirpath, _, filenames in os.walk(path):
            rel_dir = os.path.relpath(dirpath, path).replace(os.sep, "/")
            for filename in filenames:
                rel = filename if rel_dir == "." else f"{rel_dir}/{filename}"
                if keep(rel):
                    with open(os.path.join(dirpath, filename), "rb") as f:
                        out[rel] = f.read()
        return out
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        fileobj, mode = io.BytesIO(_gunzip(raw, path)), "r:"
    else:
        fileobj, mode = io.BytesIO(raw), "r:*"  # plain, bz2 or xz: tarfile detects it
    out = {}
    try:
        with tarfile.open(fileobj=fileobj, mode=mode) as archive:
            for member in archive:
                if member.isfile() and keep(member.name):
                    data = archive.extractfile(member).read()
                    if len(data) != member.size:
                        raise DataFormatError(f"{path}: truncated archive (member {member.name} "
                                              f"has {len(data)} of {member.size} bytes)")
                    out[member.name] = data
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataFormatError(f"{path}: corrupted or truncated tar archive ({e})") from e
    return out


def find_file(root: Path, names: tuple[str, ...], dataset: str) -> Path:
    """``root`` itself when it is a file, else the first of ``names`` found under ``root``.

    Raises:
      FileNotFoundError: none of ``names`` is there (with the expected layout).
    """
    if root.is_file():
        return root
    for name in names:
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(f"{dataset}: none of {list(names)} in {root}\n"
                            f"Expected layout: {SOURCES[dataset].layout}")


def decode(data: bytes, path: str, encoding: str = "utf-8") -> str:
    """``data`` decoded, with an error naming the file and line of the first bad byte."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataFormatError(f"{path}, line {line}: not valid {encoding} ({e.reason})") from e
