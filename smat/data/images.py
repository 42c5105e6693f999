"""Image data set loaders: Fashion-MNIST (IDX files), scikit-learn digits, CIFAR-100.

Images are returned as uint8 ``[n, height, width, channels]`` with the data set's
own value range (``meta["pixel_max"]``: 255, or 16 for digits); normalising and
resizing belong to batching.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
from typing import Sequence

import numpy as np

from smat.data import hub
from smat.data.manifest import content_sha256, verify_loaded
from smat.data.sources import DataFormatError, find_file, from_remote, locate, read_bytes, read_tree
from smat.data.splits import DatasetSplits, Split

__all__ = ["load_fashion_mnist", "load_digits", "load_cifar100", "read_idx",
           "FASHION_MNIST_LABELS", "stratified_partition"]

PathLike = str | os.PathLike
FASHION_MNIST_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                        "Sneaker", "Bag", "Ankle boot")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _remote(dataset: str, adapter, verify: bool) -> DatasetSplits:
    splits = from_remote(dataset, adapter)  # hub / TFDS: counts are checked, hashes do not apply
    return verify_loaded(splits, {}, verify=verify, source=splits.meta.get("source", dataset))


def read_idx(data: bytes, name: str) -> np.ndarray:
    """An array from IDX bytes (LeCun's MNIST format: magic, big-endian dims, then values).

    Raises:
      DataFormatError: naming ``name`` when the header is wrong or the data is short.
    """
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise DataFormatError(f"{name}: not an IDX file (magic {data[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataFormatError(f"{name}: IDX header says {shape} ({expected} bytes of data), "
                              f"file has {len(data) - header} (truncated?)")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def load_fashion_mnist(path: PathLike | None = None, *, verify: bool = True) -> DatasetSplits:
    """Fashion-MNIST (Xiao et al. 2017): 60k train and 10k test 28x28 grey images, 10 classes.

    Resolution: ``path``, ``$SMAT_DATA_DIR/fashion-mnist``, Debian's
    ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``),
    then TFDS. There is no dev split.

    Args:
      path: a folder with the four IDX files (gzip-compressed or not).
      verify: check 6,000 train and 1,000 test images per class, and a hash of the
        inflated IDX bytes (so Debian's re-compressed files verify too).

    Returns:
      ``images`` uint8 ``[n, 28, 28, 1]``, ``labels`` (names in ``FASHION_MNIST_LABELS``).

    Raises:
      ManifestError, DataFormatError, DataUnavailableError.
    """
    local = locate("fashion_mnist", path)
    if local is None:
        return _remote("fashion_mnist", hub.tfds_fashion_mnist, verify)
    splits, digests = {}, {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        arrays = []
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            name = f"{prefix}-{kind}"
            file = next((local / f for f in (f"{name}.gz", name) if (local / f).exists()), None)
            if file is None:
                raise FileNotFoundError(f"fashion_mnist: neither {name}.gz nor {name} in {local}")
            data = read_bytes(file)
            digests[name] = hashlib.sha256(data).hexdigest()  # = zcat FILE | sha256sum
            arrays.append(read_idx(data, str(file)))
        images, labels = arrays
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataFormatError(f"fashion_mnist: {prefix} images {images.shape} and labels "
                                  f"{labels.shape} do not pair up")
        splits[split] = Split(ids=[f"{split}/{i}" for i in range(len(labels))],
                              images=images[..., None].copy(), labels=labels.astype(np.int32))
    out = DatasetSplits("fashion_mnist", splits["train"], None, splits["test"],
                        {"label_names": FASHION_MNIST_LABELS, "task": "classification", "pixel_max": 255,
                         "source": str(local)})
    return verify_loaded(out, digests, verify=verify, source=local)


def stratified_partition(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split indices into parts of the given fractions, per class, from an explicit seed.

    Every class is shuffled with one ``np.random.default_rng(seed)`` (classes in
    ascending order) and cut at the rounded cumulative fractions, so each part keeps
    the class balance. Indices within a part are returned sorted.

    Args:
      labels: int ``[n]``.
      fractions: non-negative, summing to 1.
      seed: the only source of randomness.

    Returns:
      One sorted int64 index array per fraction; together a partition of ``range(n)``.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions.tolist()}")
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(np.int64)
        for part, chunk in zip(parts, np.split(members, cuts), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def load_digits(*, seed: int, fractions: Sequence[float] = (0.6, 0.2, 0.2),
                verify: bool = True) -> DatasetSplits:
    """scikit-learn's bundled digits (1,797 8x8 images, values 0-16), split train / dev / test.

    The split is stratified by class and fixed by ``seed`` (see :func:`stratified_partition`);
    there is no official one.

    Args:
      seed: required, so that every split is reproducible by construction.
      fractions: train, dev, test shares.
      verify: check the per-class counts of all 1,797 images and their content hash.

    Returns:
      ``images`` uint8 ``[n, 8, 8, 1]`` (``meta["pixel_max"] = 16``), ``labels`` 0-9,
      ids = the index into ``sklearn.datasets.load_digits()``.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # bundled: no network

    bunch = sklearn_digits()
    images = bunch.images.astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int32)
    digest = content_sha256({"images": images.tobytes(), "labels": labels.tobytes()})
    full = Split(ids=[str(i) for i in range(len(labels))], images=images, labels=labels)
    train, dev, test = (full.take(part) for part in stratified_partition(labels, fractions, seed))
    out = DatasetSplits("digits", train, dev, test,
                        {"label_names": tuple(str(i) for i in range(10)), "task": "classification",
                         "pixel_max": 16, "seed": seed, "fractions": tuple(fractions),
                         "source": "sklearn.datasets.load_digits"})
    return verify_loaded(out, {"digits": digest}, verify=verify, source="sklearn.datasets.load_digits")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a data file must not run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"),
                ("_codecs", "encode")}  # how protocol-2 pickles from Python 3 spell bytes

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return super().find_class(module, name)


def _unpickle(data: bytes, name: str) -> dict:
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:
        raise DataFormatError(f"{name}: not a CIFAR python pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DataFormatError(f"{name}: expected a dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


_CIFAR_MEMBER = re.compile(r"(?:^|/)cifar-100-python/(train|test|meta)$")


def load_cifar100(path: PathLike | None = None, *, verify: bool = True) -> DatasetSplits:
    """CIFAR-100 (Krizhevsky 2009), python version: 50k train and 10k test 32x32 colour images.

    Args:
      path: ``cifar-100-python.tar.gz``, the extracted ``cifar-100-python/`` folder, or a
        folder containing either.
      verify: check 50,000 / 10,000 images.

    Returns:
      ``images`` uint8 ``[n, 32, 32, 3]``, ``labels`` = the 100 fine labels (names from
      ``meta``), ``extras["coarse_label"]`` (the 20 superclasses).

    Raises:
      ManifestError, DataFormatError, DataUnavailableError.
    """
    local = locate("cifar100", path)
    if local is None:
        return _remote("cifar100", hub.cifar100, verify)
    root = local
    if local.is_dir() and local.name != "cifar-100-python":
        root = find_file(local, ("cifar-100-python", "cifar-100-python.tar.gz"), "cifar100")
    if root.is_dir():  # the extracted folder: its files are the members
        members = read_tree(root, lambda n: n in ("train", "test", "meta"))
    else:
        members = {_CIFAR_MEMBER.search(n).group(1): d
                   for n, d in read_tree(root, lambda n: _CIFAR_MEMBER.search(n) is not None).items()}
    missing = {"train", "test", "meta"} - set(members)
    if missing:
        raise FileNotFoundError(f"cifar100: cifar-100-python/{sorted(missing)} not found in {root}")
    meta = _unpickle(members["meta"], "cifar-100-python/meta")
    names = tuple(n.decode() if isinstance(n, bytes) else n for n in meta["fine_label_names"])
    splits = {}
    for split in ("train", "test"):
        d = _unpickle(members[split], f"cifar-100-python/{split}")
        try:
            data = np.asarray(d["data"], dtype=np.uint8)
            images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()  # CHW rows -> NHWC
            fine = np.asarray(d["fine_labels"], dtype=np.int32)
            coarse = np.asarray(d["coarse_labels"], dtype=np.int32)
            files = [f.decode() if isinstance(f, bytes) else str(f) for f in d["filenames"]]
        except (KeyError, ValueError) as e:
            raise DataFormatError(f"cifar-100-python/{split}: {type(e).__name__}: {e}") from e
        splits[split] = Split(ids=files, images=images, labels=fine, extras={"coarse_label": coarse})
    out = DatasetSplits("cifar100", splits["train"], None, splits["test"],
                        {"label_names": names, "task": "classification", "pixel_max": 255,
                         "source": str(root)})
    digests = {f"cifar-100-python/{k}": content_sha256({k: v}) for k, v in members.items()}
    return verify_loaded(out, digests, verify=verify, source=root)

