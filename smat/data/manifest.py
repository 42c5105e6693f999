"""Manifests: the counts and content hashes a faithful copy of each data set must have.

Every loader checks what it read against its :class:`Manifest` (unless
``verify=False``): the number of examples per split and label (or per group, such
as MLQE-PE's language pair), then a SHA-256 of the content it parsed. A truncated or
altered copy raises one :class:`ManifestError` listing every difference.

Three kinds of hash, all SHA-256:

* :func:`file_sha256`: the raw bytes of a single official file (SST csv, SNLI and
  GLUE files), streamed in 1 MiB blocks and cached per ``(path, size, mtime)`` so
  that re-loading does not re-read the file;
* :func:`content_sha256`: the members a loader parsed out of an archive or folder
  (IMDB reviews, ERASER docs and jsonl, MLQE-PE tsv / tag files), keyed by a
  normalised member name. It is the same whether the data comes as the official
  tarball or that tarball extracted, so one recorded value covers both;
* the inflated bytes of a gzip-compressed file (Fashion-MNIST's IDX files, which
  Debian re-compressed): ``zcat FILE | sha256sum``.

SST-2 is hashed over its parsed ``label<TAB>sentence`` records, so GLUE's column
order and the swapped copy give the same value.

The recorded hashes were computed from the copies in the project's
``../shared/data`` (cross-checked with its ``SHA256SUMS`` where those are raw
files), Debian's ``dataset-fashion-mnist`` and scikit-learn's bundled digits.
Counts are the published ones (see each manifest's ``reference``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from smat.data.splits import DatasetSplits

__all__ = [
    "Manifest",
    "ManifestError",
    "MANIFESTS",
    "file_sha256",
    "content_sha256",
    "observed_counts",
    "check",
    "verify_loaded",
]


class ManifestError(ValueError):
    """A data set whose counts or content hash differ from its manifest."""


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What a faithful copy of one data set holds.

    Attributes:
      name: the data set.
      counts: ``{split: {key: n}}``: examples per label name (``count_by="label"``),
        per value of an extras column (e.g. ``"langpair"``), or ``{"total": n}``
        (``count_by=None``); the split name ``"all"`` counts every loaded split together.
        Only the splits listed and loaded are checked.
      count_by: ``"label"``, an extras column name, or None for totals.
      digests: ``{resource: sha256}`` for the resources the loader hashes; a loaded
        resource missing here (e.g. SNLI train, not available offline) is reported in
        ``meta["unverified"]`` instead of failing.
      reference: where the counts are published.
    """

    name: str
    counts: Mapping[str, Mapping[str, int]]
    count_by: str | None = "label"
    digests: Mapping[str, str] = dataclasses.field(default_factory=dict)
    reference: str = ""


_HASH_CACHE: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, streamed, cached per ``(path, size, mtime)``."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def content_sha256(members: Mapping[str, bytes]) -> str:
    """SHA-256 over ``{name: bytes}`` in sorted name order, each entry length-prefixed.

    Length prefixes make the encoding unambiguous: moving bytes from one member to the
    next changes the hash.
    """
    digest = hashlib.sha256()
    for name in sorted(members):
        data = members[name]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def observed_counts(splits: DatasetSplits, count_by: str | None) -> dict[str, dict[str, int]]:
    """``{split: {key: n}}`` for a loaded data set, keyed as a :class:`Manifest` is."""
    out = {}
    for split_name, split in splits.items():
        if count_by is None:
            out[split_name] = {"total": len(split)}
            continue
        if count_by == "label":
            if split.labels is None:
                out[split_name] = {"total": len(split)}
                continue
            names = splits.meta.get("label_names")
            keys = [names[i] if names else str(i) for i in split.labels.tolist()]
        else:
            keys = [str(k) for k in split.extras[count_by]]
        values, counts = np.unique(np.asarray(keys, dtype=object), return_counts=True)
        out[split_name] = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
    return out


def check(
    manifest: Manifest,
    splits: DatasetSplits,
    digests: Mapping[str, str],
    *,
    source: str | os.PathLike,
) -> DatasetSplits:
    """Compare a loaded data set with its manifest.

    Args:
      manifest: what a faithful copy holds.
      splits: what was loaded.
      digests: ``{resource: sha256}`` the loader computed from what it read.
      source: the path (or hub name) read, for the error message.

    Returns:
      ``splits`` with ``meta["verified"] = True`` and ``meta["unverified"]`` listing
      loaded resources the manifest has no hash for.

    Raises:
      ManifestError: naming the data set, the source, every difference, and how to bypass.
    """
    problems = []
    observed = observed_counts(splits, manifest.count_by)
    if "all" in manifest.counts:  # counts of the whole set, whatever split the loader made
        merged: dict[str, int] = {}
        for counts in observed.values():
            for key, n in counts.items():
                merged[key] = merged.get(key, 0) + n
        observed["all"] = merged
    for split_name, expected in manifest.counts.items():
        got = observed.get(split_name)
        if got is None:  # a split this copy does not carry (SNLI train offline): loaders decide
            continue
        if set(got) == {"total"} and set(expected) != {"total"}:  # unlabelled (GLUE test): size only
            expected = {"total": sum(expected.values())}
        for key in sorted(set(expected) | set(got)):
            want, have = expected.get(key, 0), got.get(key, 0)
            if want != have:
                where = "" if key == "total" else f" {manifest.count_by}={key!r}"
                problems.append(f"split {split_name!r}{where}: expected {want} examples, found {have}")
    for resource, have in sorted(digests.items()):
        want = manifest.digests.get(resource)
        if want is not None and want != have:
            problems.append(f"content sha256 of {resource}: expected {want}, found {have}")
    if problems:
        listing = "\n  - ".join(problems)
        raise ManifestError(
            f"{manifest.name}: the copy at {source} does not match its manifest:\n  - {listing}\n"
            f"It may be truncated, altered or a different version ({manifest.reference}). "
            f"Re-download it, or pass verify=False to load it anyway."
        )
    unverified = tuple(sorted(r for r in digests if r not in manifest.digests))
    return splits.replace(meta={**splits.meta, "verified": True, "unverified": unverified})


def verify_loaded(
    splits: DatasetSplits,
    digests: Mapping[str, str],
    *,
    verify: bool,
    source: str | os.PathLike,
    manifest: Manifest | None = None,
) -> DatasetSplits:
    """Record ``digests`` in ``meta`` and, when ``verify``, :func:`check` the manifest.

    ``manifest`` defaults to ``MANIFESTS[splits.name]``; loaders pass a narrowed one
    when only part of a data set was asked for (some MLQE-PE pairs, some AG News classes).
    """
    splits = splits.replace(meta={**splits.meta, "digests": dict(digests)})
    if not verify:
        return splits.replace(meta={**splits.meta, "verified": False})
    return check(manifest or MANIFESTS[splits.name], splits, digests, source=source)


_SENTIMENT = ("neg", "pos")
_MLQE_PAIRS = ("en-de", "en-zh", "et-en", "ne-en", "ro-en", "ru-en", "si-en")
_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
            "Ankle boot")


def _by_label(names, *counts: int) -> dict[str, int]:
    return dict(zip(names, counts, strict=True))


# Content hashes: computed from ../shared/data, Debian's dataset-fashion-mnist and
# scikit-learn's digits with the loaders themselves (``verify=False``); raw-file ones
# agree with ../shared/data/SHA256SUMS.
_DIGESTS: dict[str, dict[str, str]] = {
    "imdb": {
        "reviews": "e387e12957f58c094950ca49ae5135e14445e014426337764a554f8f142e5d10",
    },
    "eraser_movies": {
        "movies": "5be0d128c25679666314870e9266ba0a6127d4e5133d132719e0dc79bcac3b23",
    },
    "sst_jain_wallace": {
        "sst_dataset.csv": "f1cb07e552c8522c7a35895465156dfb3206395fbc64e705808f31d67f86df23",
    },
    "sst2": {
        "train": "03db70d2a77e754988316a76733a9bb4a4688107d42d02831162153cc4bd1d6b",
        "dev": "e0658314c672976297db0545ee1b6de2b80619a228afa2fe00b17c4fea45c73a",
        "test": "a6dc157612e23ab45ef2d7e78a5b7aaa3200907f79fa1aca9c9614cd903b0412",
    },
    "snli": {
        "s1.dev": "28a398b5478b10b4b851d4bb5b2e5767171519add6586015ed50b9436df11d00",
        "s2.dev": "a8c59709630b64ba103f7784c0cb7104a6baf23234562487264d9634714f5d2b",
        "labels.dev": "d164d72435c3289fe53cb01e983f7c06e104bf192c0cae9caf2e99bf2e15f974",
        "s1.test": "62cb8107dc3c56a4376e5e521842be24e0d61c92c346b94917da2bbf2a47d8be",
        "s2.test": "1174f3ad30a3c30fc0f9eeffc1b3b6a79e0514026c5a658968a8e2a324b311a1",
        "labels.test": "e25c363e5cc70d5494d6e6555d8053eced22dca836e0f03067530eaad3d4f5f5",
    },
    "mlqe_pe": {
        "direct-assessments/train/en-de": "99927457395c2e68d1def5254ffd1e7001f53803a0a1c0d0bdeced653b0eddc0",
        "post-editing/train/en-de": "c12fb4d5b5544793ad86321be7d8915e95497ee9fa9e2229028020a1b2119b3d",
        "direct-assessments/train/en-zh": "9f818f93e9ec009f917ee8b39c4c1f3157d617c204f07bda85f29b6f147a2091",
        "post-editing/train/en-zh": "8e8b11ee392998b19e5b80c1b89e49cfd6ccf0ed047c1387bd10f67bd7745bec",
        "direct-assessments/train/et-en": "dc00912a558710c9be8c64311d8854c4cf4ba981683ffdc61bab95ef25671666",
        "post-editing/train/et-en": "b0dd17583396fadf038636d991fbae009ef062005d9928eaad980e6db0e8401d",
        "direct-assessments/train/ne-en": "676ef3413547b052cc9e6b57cd41d233f18c6e774939a462724c3b916fb1ab32",
        "post-editing/train/ne-en": "ca8eb0d8481cbffb16dbabb4769389ea432ffe3178ca059728bba0754683783b",
        "direct-assessments/train/ro-en": "9dd3ba4502809dda474993657a9b8ba56c7e535e8c6d5e80edeaa7dc076620d1",
        "post-editing/train/ro-en": "cd795df0c8cad6e90c068a380893e4a002614421a9f4f204ce8a2258d9fc0887",
        "direct-assessments/train/ru-en": "63c60fbccfaec6d82f3c50462539f253326988bfe358567ff425b1e66c2ce3f3",
        "post-editing/train/ru-en": "1f3346aacdfa2d283833fe110d2d48097664e20f71ddd5dd6a02ee9e0dab7bce",
        "direct-assessments/train/si-en": "afeca71bcb5d1fd9a35c6dd932c2724eb6b1cf275dcb5ac8fb8dc0114318a0c6",
        "post-editing/train/si-en": "025ae8aadad009870f5e6f85219377a8fe09a3008a9873e0572678707ea1f64d",
        "direct-assessments/dev/en-de": "47bc5fd3f77599d0bddc2efb6f2b1bd4b45d7cd0092a4b2ca779a2fed330a579",
        "post-editing/dev/en-de": "01797730b4ffad9f159759e7123c235e36fb6100f9cc0332fcd9501faa8be38e",
        "direct-assessments/dev/en-zh": "ec4a65247780417edd84a4054408c3a687a165acaf719b37f807636370c2b0d4",
        "post-editing/dev/en-zh": "de2fc44b8881e0dea172160bf23cd5eaef815c74f7b80439b5b8782c63c0244e",
        "direct-assessments/dev/et-en": "7b05041e5800aaaa762ccda45c51fde2c9742fc1c7dda2db513f1a800e488e26",
        "post-editing/dev/et-en": "0fbbc6b0bf1a41f359249b44865a2b5f311d18a8a97ad6a2fd70177cd4b8ef12",
        "direct-assessments/dev/ne-en": "585e59b6df1854390424f4e3ab5809d6fa962599c61be4359234971834a2e210",
        "post-editing/dev/ne-en": "b1c31601a99f17011bfe0467e60beb293cc5ec8564acd01275956f36922a087c",
        "direct-assessments/dev/ro-en": "6189f66e234e3f3dda6b9e174248b0de3b21ebd3ac958103a4e1c6f10a5a70b3",
        "post-editing/dev/ro-en": "39028c3836d476cba5b9c890493824475750dd3c6b71bd714e235f2c9e296e1d",
        "direct-assessments/dev/ru-en": "8af6c43e064b8a58982997b42894a447c89e0d8b526f2a429b797b94f1963d16",
        "post-editing/dev/ru-en": "f7db20cd9ef5f4d2a97b36aeedf4c980a13fe380bfe7045c499eafc3d1f4b4a8",
        "direct-assessments/dev/si-en": "0e2b96eb12c5ceba33a1ed4273d31d81a14881820601303c19744d0aac0dedde",
        "post-editing/dev/si-en": "bb559e40ef2caa95087f899d9a1136527b191ce2edd2c8694bb6702e2efc35a6",
        "direct-assessments/test/en-de": "f57761e2ea8809961037c378a08dc01a228130f3ecb1ec2ef53eff09194fd16a",
        "post-editing/test/en-de": "7839562f3a7390f8b75a5b17b64104d8ee337397d636d100a21e0da75e7cf18d",
        "direct-assessments/test/en-zh": "67b44048274dfa795d79ae16e21aacf57b2ca33eb9e1dd4eba5c87dc9e94b231",
        "post-editing/test/en-zh": "32d5a62914a74ced5a380b35377f90c0d31d6cfe0ef61735c95955e45792b951",
        "direct-assessments/test/et-en": "5b2bce245210151d54723dd40f8207e7ce65db5d6573892bbec73d92673c0252",
        "post-editing/test/et-en": "a0f22a3fefe24c201d2e202771d3fdaf08a0cb75503b2e8a6dfdfc30fc31302e",
        "direct-assessments/test/ne-en": "11420f296a041705840e0e784b7a1aba21341429e0180c0ff3afa75c0d11d68e",
        "post-editing/test/ne-en": "cb677a5c20c3bddb20f317ba7cc0c4604517f532295f19dd4a31a6044e927383",
        "direct-assessments/test/ro-en": "8301c11246ab97203cc836af98eb0c3279a60fa9e72656f326ba34fd8470dd74",
        "post-editing/test/ro-en": "9c2fee18c592bb62468e2fe2d3b68b115b8a2ea2647d19867f6f8a9fa54dcd1d",
        "direct-assessments/test/ru-en": "61849a5637e5993f145122f3c8a4cffe3c8c1a1da05b5f6c248d50296a6f527c",
        "post-editing/test/ru-en": "312d66c2e018e11aa370f63a85ea520c2dc10a7e0ca5a17c9ee8189147418f9e",
        "direct-assessments/test/si-en": "0688f7c666aac40643515d3bf05227b49a5c8989141c23ad22019681a8dbe92a",
        "post-editing/test/si-en": "2a4931d3dee5bd21589c85569cc65f53d886265d0fb637c3eaa63beeb233ec74",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    "digits": {
        "digits": "b7334ed41753cf0b99b3f783e160e41cdd2ab480e7f104bd417f1c131471d779",
    },
}

MANIFESTS: dict[str, Manifest] = {
    "imdb": Manifest(
        "imdb",
        {"train": _by_label(_SENTIMENT, 12500, 12500), "test": _by_label(_SENTIMENT, 12500, 12500)},
        digests=_DIGESTS["imdb"],
        reference="Maas et al. 2011: 25,000 train and 25,000 test reviews, half positive",
    ),
    "eraser_movies": Manifest(
        "eraser_movies",
        {"train": _by_label(_SENTIMENT, 800, 800), "dev": _by_label(_SENTIMENT, 100, 100),
         "test": _by_label(_SENTIMENT, 100, 99)},
        digests=_DIGESTS["eraser_movies"],
        reference="DeYoung et al. 2020, ERASER v1 movies: 1600 / 200 / 199 documents",
    ),
    "sst_jain_wallace": Manifest(
        "sst_jain_wallace",
        # train and test as published; dev (not published) as their filter leaves it
        {"train": _by_label(_SENTIMENT, 3034, 3321), "dev": _by_label(_SENTIMENT, 397, 424),
         "test": _by_label(_SENTIMENT, 863, 862)},
        digests=_DIGESTS["sst_jain_wallace"],
        reference="Jain & Wallace 2019, Table 1: train 3034 / 3321, test 863 / 862 after their length filter",
    ),
    "sst_jain_wallace_unfiltered": Manifest(
        "sst_jain_wallace_unfiltered",
        {"train": {"total": 6920}, "dev": {"total": 872}, "test": {"total": 1821}},
        count_by=None,
        digests=_DIGESTS["sst_jain_wallace"],
        reference="Socher et al. 2013, binary SST: 6920 / 872 / 1821 sentences",
    ),
    "sst2": Manifest(
        "sst2",
        {"train": _by_label(_SENTIMENT, 29780, 37569), "dev": _by_label(_SENTIMENT, 428, 444),
         "test": _by_label(_SENTIMENT, 912, 909)},
        digests=_DIGESTS.get("sst2", {}),
        reference="GLUE SST-2 (Wang et al. 2019): 67,349 / 872 / 1,821 sentences",
    ),
    "snli": Manifest(
        "snli",
        {"train": {"total": 549367}, "dev": {"total": 9842}, "test": {"total": 9824}},
        count_by=None,
        digests=_DIGESTS["snli"],
        reference="Bowman et al. 2015, pairs with a gold label: 549,367 / 9,842 / 9,824",
    ),
    "mnli": Manifest(
        "mnli",
        {"train": {"total": 392702}, "dev": {"total": 9815}, "test": {"total": 9832}},
        count_by=None,
        reference="Williams et al. 2018 / GLUE: 392,702 train, 9,815 matched, 9,832 mismatched dev",
    ),
    "xnli": Manifest(
        "xnli",
        {"dev": {"total": 2490}, "test": {"total": 5010}},
        count_by=None,
        reference="Conneau et al. 2018, XNLI 1.0: 2,490 dev and 5,010 test pairs per language",
    ),
    "qqp": Manifest(
        "qqp",
        {"train": {"total": 363846}, "dev": {"total": 40430}},
        count_by=None,
        reference="GLUE QQP (Wang et al. 2019): 363,846 train, 40,430 dev pairs",
    ),
    "mlqe_pe": Manifest(
        "mlqe_pe",
        {split: {pair: n for pair in _MLQE_PAIRS} for split, n in (("train", 7000), ("dev", 1000),
                                                                    ("test", 1000))},
        count_by="langpair",
        digests=_DIGESTS["mlqe_pe"],
        reference="Fomicheva et al. 2020: 7,000 / 1,000 / 1,000 segments per language pair",
    ),
    "fashion_mnist": Manifest(
        "fashion_mnist",
        {"train": dict.fromkeys(_FASHION, 6000), "test": dict.fromkeys(_FASHION, 1000)},
        digests=_DIGESTS["fashion_mnist"],
        reference="Xiao et al. 2017: 60,000 train and 10,000 test images, balanced over 10 classes",
    ),
    "digits": Manifest(
        "digits",
        {"all": _by_label(tuple(str(i) for i in range(10)), 178, 182, 177, 183, 181, 182, 181, 179, 174, 180)},
        digests=_DIGESTS["digits"],
        reference="scikit-learn's load_digits (UCI optical digits test set): 1,797 images",
    ),
    "cifar100": Manifest(
        "cifar100",
        {"train": {"total": 50000}, "test": {"total": 10000}},
        count_by=None,
        reference="Krizhevsky 2009: 50,000 train and 10,000 test images, 100 classes",
    ),
    "twenty_newsgroups": Manifest(
        "twenty_newsgroups",
        {"train": {"rec.sport.baseball": 597, "rec.sport.hockey": 600},
         "test": {"rec.sport.baseball": 397, "rec.sport.hockey": 399}},
        reference="20news-bydate (Lang 1995; Rennie): baseball 597 / 397, hockey 600 / 399",
    ),
    "ag_news": Manifest(
        "ag_news",
        {"train": dict.fromkeys(("World", "Sports", "Business", "Sci/Tech"), 30000),
         "test": dict.fromkeys(("World", "Sports", "Business", "Sci/Tech"), 1900)},
        reference="Zhang et al. 2015: 30,000 train and 1,900 test articles per class",
    ),
}
