"""Offline-first data sets in their official formats, as one columnar split structure.

Every loader takes a local ``path`` in the data set's official format; without one it
looks in ``$SMAT_DATA_DIR/<folder>`` and then asks the Hugging Face hub / TFDS (see
:mod:`smat.data.sources`). What it read is checked against a manifest of published
counts and content hashes (:mod:`smat.data.manifest`); ``verify=False`` skips that.

Examples:
  >>> from smat.data import load_sst_jain_wallace
  >>> sst = load_sst_jain_wallace("../shared/data/sst/jain_wallace")  # doctest: +SKIP
  >>> len(sst.train), sst.meta["label_names"]  # doctest: +SKIP
  (6355, ('neg', 'pos'))
"""

from smat.data.corpora import (
    MLQE_PAIRS,
    NLI_LABELS,
    jain_wallace_length_filter,
    load_ag_news,
    load_eraser_movies,
    load_imdb,
    load_mlqe_pe,
    load_mnli,
    load_qqp,
    load_xnli,
    load_snli,
    load_sst2,
    load_sst_jain_wallace,
    load_twenty_newsgroups,
)
from smat.data.images import FASHION_MNIST_LABELS, load_cifar100, load_digits, load_fashion_mnist
from smat.data.manifest import MANIFESTS, Manifest, ManifestError, content_sha256, file_sha256
from smat.data.mimic import MIMIC_TASKS, load_mimic
from smat.data.sources import SOURCES, DataFormatError, DataUnavailableError
from smat.data.splits import DatasetSplits, Split
from smat.data.tables import load_table

__all__ = [
    "Split",
    "DatasetSplits",
    "Manifest",
    "ManifestError",
    "DataFormatError",
    "DataUnavailableError",
    "MANIFESTS",
    "SOURCES",
    "MLQE_PAIRS",
    "NLI_LABELS",
    "FASHION_MNIST_LABELS",
    "content_sha256",
    "file_sha256",
    "jain_wallace_length_filter",
    "load_imdb",
    "load_eraser_movies",
    "load_sst_jain_wallace",
    "load_sst2",
    "load_snli",
    "load_mnli",
    "load_qqp",
    "load_xnli",
    "load_mlqe_pe",
    "load_twenty_newsgroups",
    "load_ag_news",
    "load_mimic",
    "MIMIC_TASKS",
    "load_fashion_mnist",
    "load_digits",
    "load_cifar100",
    "load_table",
]
