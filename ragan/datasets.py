"""Public medical image datasets: MedMNIST v2 files and the sample bundled with ragan.

MedMNIST v2 (Yang et al., Scientific Data 2023) publishes small, pre-split medical image sets
as ``.npz`` files with the keys ``train_images``, ``train_labels``, ``val_images``, ...; images are
``(N, H, W)`` (greyscale) or ``(N, H, W, 3)`` uint8 and labels ``(N, 1)``. This module knows the
2-D single-label ones (class names, file checksums, sizes 28/64/128/224), loads them from a local
file, a cache folder or (when asked) their official download, and ships a small subset of
PneumoniaMNIST so that every example and test works offline.

No TensorFlow is imported here.

Example:
    >>> from ragan.datasets import load_medmnist, medmnist_info, sample_path
    >>> medmnist_info("pneumoniamnist")["class_names"]
    ['normal', 'pneumonia']
    >>> arrays = load_medmnist("pneumoniamnist", path=sample_path())
    >>> arrays["train_images"].shape[1:]
    (28, 28)
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from ragan.errors import RaganError, check_choice, did_you_mean

__all__ = [
    "MEDMNIST",
    "MEDMNIST_SIZES",
    "SAMPLE_NAMES",
    "medmnist_info",
    "medmnist_file_name",
    "medmnist_url",
    "default_cache_dir",
    "load_medmnist",
    "load_sample",
    "sample_path",
    "make_sample",
]

MEDMNIST_SIZES = (28, 64, 128, 224)
MEDMNIST_SPLITS = ("train", "val", "test")
# Zenodo record of MedMNIST v2 with all four sizes (the record the medmnist package 3.x uses).
MEDMNIST_BASE_URL = "https://zenodo.org/records/10519652/files"
MEDMNIST_CITATION = (
    "Yang, J. et al. MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical "
    "image classification. Scientific Data 10, 41 (2023)."
)

_ORGANS = [
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
]


def _medmnist(description, class_names, channels, counts, md5s, license="CC BY 4.0") -> dict:
    """One entry of :data:`MEDMNIST`: ``counts`` per split (train, val, test), ``md5s`` per size (28, 64, 128, 224)."""
    return {
        "description": description,
        "class_names": class_names,
        "channels": channels,
        "num_examples": dict(zip(MEDMNIST_SPLITS, counts)),
        "license": license,
        "md5": dict(zip(MEDMNIST_SIZES, md5s)),
    }


# The 2-D, single-label MedMNIST datasets (multi-label ChestMNIST and the 3-D ones do not fit
# a one-class-per-image GAN). Class names, sample counts, licences and MD5 checksums per size
# are those published by the MedMNIST authors.
MEDMNIST: dict[str, dict] = {
    "pneumoniamnist": _medmnist(
        "Paediatric chest X-rays, normal vs pneumonia (Kermany et al., Cell 2018).",
        ["normal", "pneumonia"],
        1,
        (4708, 524, 624),
        (
            "28209eda62fecd6e6a2d98b1501bb15f",
            "8f4eceb4ccffa70c672198ea285246c6",
            "05b46931834c231683c68f40c47b2971",
            "d6a3c71de1b945ea11211b03746c1fe1",
        ),
    ),
    "breastmnist": _medmnist(
        "Breast ultrasound, malignant vs normal/benign.",
        ["malignant", "normal, benign"],
        1,
        (546, 78, 156),
        (
            "750601b1f35ba3300ea97c75c52ff8f6",
            "742edef2a1fd1524b2efff4bd7ba9364",
            "363e4b3f8d712e9b5de15470a2aaadf1",
            "b56378a6eefa9fed602bb16d192d4c8b",
        ),
    ),
    "octmnist": _medmnist(
        "Retinal optical coherence tomography, 4 diagnoses.",
        ["choroidal neovascularization", "diabetic macular edema", "drusen", "normal"],
        1,
        (97477, 10832, 1000),
        (
            "c68d92d5b585d8d81f7112f81e2d0842",
            "e229e9440236b774d9f0dfef9d07bdaf",
            "0a97e76651ace45c5d943ee3f65b63ae",
            "abc493b6d529d5de7569faaef2773ba3",
        ),
    ),
    "bloodmnist": _medmnist(
        "Blood cell microscopy, 8 cell types.",
        [
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ],
        3,
        (11959, 1712, 3421),
        (
            "7053d0359d879ad8a5505303e11de1dc",
            "2b94928a2ae4916078ca51e05b6b800b",
            "adace1e0ed228fccda1f39692059dd4c",
            "b718ff6835fcbdb22ba9eacccd7b2601",
        ),
    ),
    "dermamnist": _medmnist(
        "Dermatoscopic images of pigmented skin lesions (HAM10000), 7 diagnoses.",
        [
            "actinic keratoses and intraepithelial carcinoma",
            "basal cell carcinoma",
            "benign keratosis-like lesions",
            "dermatofibroma",
            "melanoma",
            "melanocytic nevi",
            "vascular lesions",
        ],
        3,
        (7007, 1003, 2005),
        (
            "0744692d530f8e62ec473284d019b0c7",
            "b70a2f5635c6199aeaa28c31d7202e1f",
            "2defd784463fa5243564e855ed717de1",
            "8974907d8e169bef5f5b96bc506ae45d",
        ),
        license="CC BY-NC 4.0",
    ),
    "retinamnist": _medmnist(
        "Retina fundus images, diabetic retinopathy grade 0-4.",
        ["0", "1", "2", "3", "4"],
        3,
        (1080, 120, 400),
        (
            "bd4c0672f1bba3e3a89f0e4e876791e4",
            "afda852cc34dcda56f86ad2b2457dbcc",
            "e48e916a24454daf90583d4e6efb1a18",
            "eae7e3b6f3fcbda4ae613ebdcbe35348",
        ),
    ),
    "pathmnist": _medmnist(
        "Colorectal cancer histology patches (H&E), 9 tissue types.",
        [
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ],
        3,
        (89996, 10004, 7180),
        (
            "a8b06965200029087d5bd730944a56c1",
            "55aa9c1e0525abe5a6b9d8343a507616",
            "ac42d08fb904d92c244187169d1fd1d9",
            "2c51a510bcdc9cf8ddb2af93af1eadec",
        ),
    ),
    "organamnist": _medmnist(
        "Abdominal CT, axial slices, 11 organs.",
        _ORGANS,
        1,
        (34561, 6491, 17778),
        (
            "68e3f8846a6bd62f0c9bf841c0d9eacc",
            "2dcccc29b88e6da5a01161ef20cda288",
            "eeae80d0a227a8d099027e1b3cfd3b60",
            "50747347e05c87dd3aaf92c49f9f3170",
        ),
    ),
}

SAMPLE_NAMES = ("pneumoniamnist",)
SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"


def medmnist_info(name: str) -> dict:
    """Return what ragan knows about a MedMNIST dataset.

    Args:
        name: lower-case dataset name, e.g. ``"pneumoniamnist"``.

    Returns:
        A new dict with ``name``, ``description``, ``class_names``, ``channels``,
        ``num_examples`` (per split, at 28 px), ``license``, ``md5`` (size -> checksum),
        ``urls`` (size -> download URL) and ``citation``.

    Raises:
        RaganError: for an unknown name, with the known names and a did-you-mean.

    Example:
        >>> medmnist_info("breastmnist")["channels"]
        1
    """
    key = str(name).lower()
    if key not in MEDMNIST:
        known = ", ".join(sorted(MEDMNIST))
        raise RaganError(
            f"MedMNIST dataset {name!r} is not known; known datasets: {known}.{did_you_mean(key, MEDMNIST)}"
        )
    entry = MEDMNIST[key]
    return {
        "name": key,
        "description": entry["description"],
        "class_names": list(entry["class_names"]),
        "channels": entry["channels"],
        "num_examples": dict(entry["num_examples"]),
        "license": entry["license"],
        "md5": dict(entry["md5"]),
        "urls": {size: medmnist_url(key, size) for size in MEDMNIST_SIZES},
        "citation": MEDMNIST_CITATION,
    }


def medmnist_file_name(name: str, size: int = 28) -> str:
    """The official file name: ``pneumoniamnist.npz`` at 28 px, ``pneumoniamnist_64.npz`` at 64.

    Example:
        >>> medmnist_file_name("pneumoniamnist", 128)
        'pneumoniamnist_128.npz'
    """
    check_choice("size", size, MEDMNIST_SIZES)
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def medmnist_url(name: str, size: int = 28) -> str:
    """The official download URL of a MedMNIST file.

    Example:
        >>> medmnist_url("pneumoniamnist")
        'https://zenodo.org/records/10519652/files/pneumoniamnist.npz'
    """
    return f"{MEDMNIST_BASE_URL}/{medmnist_file_name(name, size)}"


def default_cache_dir() -> Path:
    """Where downloaded MedMNIST files are kept: ``$RAGAN_CACHE/medmnist`` or ``~/.cache/ragan/medmnist``."""
    root = os.environ.get("RAGAN_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "ragan") / "medmnist"


def load_medmnist(
    name: str = "pneumoniamnist",
    *,
    path: str | os.PathLike | None = None,
    size: int = 28,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """Load a MedMNIST ``.npz`` as a dict of arrays.

    Looks in this order: ``path`` (a ``.npz`` file, or a folder holding the official file name),
    then the cache folder; if the file is in neither and ``download`` is true, fetches the
    official file into the cache (checking its MD5) first.

    Args:
        name: dataset name, e.g. ``"pneumoniamnist"`` (see :data:`MEDMNIST`).
        path: a local ``.npz`` file or a folder containing ``<name>.npz`` (``<name>_<size>.npz``).
        size: image size, one of 28, 64, 128, 224.
        download: fetch the file from Zenodo when it is not cached.
        cache_dir: cache folder; :func:`default_cache_dir` when not given.

    Returns:
        ``{"train_images", "train_labels", "val_images", "val_labels", "test_images",
        "test_labels"}``: images ``(N, H, W)`` or ``(N, H, W, 3)`` uint8, labels ``(N, 1)``.

    Raises:
        RaganError: unknown name or size, missing file (saying to pass ``path=``), failed
            download or checksum, or a file that is not a MedMNIST ``.npz``.

    Example:
        >>> arrays = load_medmnist("pneumoniamnist", path=sample_path())
        >>> sorted(arrays)[:2]
        ['test_images', 'test_labels']
    """
    info = medmnist_info(name)
    name = info["name"]
    file_name = medmnist_file_name(name, size)
    if path is not None:
        npz_path = Path(path)
        if npz_path.is_dir():
            npz_path = npz_path / file_name
        if not npz_path.is_file():
            raise RaganError(f"path='{path}' does not exist or holds no {file_name}.")
    else:
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        npz_path = cache / file_name
        if not npz_path.is_file():
            if not download:
                raise RaganError(
                    f"MedMNIST {name} ({size} px) is not in the cache '{cache}'; pass download=True "
                    f"(or --download) to fetch {info['urls'][size]}, or path=... to a local copy of {file_name}."
                )
            _download(info["urls"][size], npz_path, info["md5"].get(size))
    return _read_medmnist_npz(npz_path, expected_size=size)


def _download(url: str, target: Path, md5: str | None) -> None:
    """Fetch ``url`` to ``target`` atomically, checking the MD5 when known."""
    from ragan._logging import progress_bar

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    temporary = Path(temporary)
    digest = hashlib.md5()
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress_bar(total=total, unit="B", unit_scale=True, desc=target.name, leave=True) as progress:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
        if md5 is not None and digest.hexdigest() != md5:
            raise RaganError(
                f"the file downloaded from {url} has MD5 {digest.hexdigest()}, expected {md5}; it was "
                "deleted. Try again, or download it by hand and pass path=...."
            )
        os.replace(temporary, target)
    except (urllib.error.URLError, OSError) as error:
        raise RaganError(
            f"could not download {url} ({error}); download it by hand and pass path=... to the .npz file."
        ) from error
    finally:
        temporary.unlink(missing_ok=True)


def _read_medmnist_npz(path: Path, expected_size: int | None = None) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            needed = [f"{split}_{kind}" for split in MEDMNIST_SPLITS for kind in ("images", "labels")]
            missing = [key for key in needed if key not in keys]
            if missing:
                raise RaganError(
                    f"'{path}' is not a MedMNIST file: keys {', '.join(missing)} are missing "
                    f"(it has {', '.join(sorted(keys)) or 'none'})."
                )
            arrays = {key: npz[key] for key in needed}
    except RaganError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise RaganError(f"'{path}' is not a readable .npz file ({error}).") from error

    for split in MEDMNIST_SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
            raise RaganError(f"'{path}': {split}_images has shape {images.shape}; expected (N, H, W) or (N, H, W, 3).")
        if labels.shape[0] != images.shape[0]:
            raise RaganError(f"'{path}': {split}_labels holds {labels.shape[0]} labels for {images.shape[0]} images.")
        if expected_size is not None and images.shape[1:3] != (expected_size, expected_size):
            raise RaganError(
                f"'{path}': {split}_images are {images.shape[1]}x{images.shape[2]} px, not size={expected_size}."
            )
    return arrays


def sample_path(name: str = "pneumoniamnist") -> Path:
    """Path of a small sample ``.npz`` bundled with ragan (MedMNIST layout, 28 px).

    The PneumoniaMNIST sample holds 400 train, 60 val and 100 test images drawn from the
    official file with the original class ratio; see ``ragan/data/sample/README.md``.

    Example:
        >>> sample_path().name
        'pneumoniamnist_sample.npz'
    """
    if name not in SAMPLE_NAMES:
        raise RaganError(
            f"there is no bundled sample {name!r}; bundled samples: {', '.join(SAMPLE_NAMES)}."
            f"{did_you_mean(name, SAMPLE_NAMES)}"
        )
    path = SAMPLE_DIR / f"{name}_sample.npz"
    if not path.is_file():
        raise RaganError(f"the bundled sample '{path}' is missing; reinstall ragan.")
    return path


def load_sample(name: str = "pneumoniamnist") -> dict[str, np.ndarray]:
    """Load a bundled sample as a dict of arrays (see :func:`load_medmnist` for the layout).

    Example:
        >>> load_sample()["train_labels"].shape
        (400, 1)
    """
    return _read_medmnist_npz(sample_path(name))


def make_sample(
    source_npz: str | os.PathLike,
    out: str | os.PathLike,
    *,
    n_train: int = 400,
    n_val: int = 60,
    n_test: int = 100,
    seed: int = 0,
) -> Path:
    """Write a stratified, seeded subset of a MedMNIST ``.npz`` (how the bundled sample is made).

    Each split keeps the class ratio of the same split of the source: class ``c`` gets
    ``n * count_c / total`` images, rounded so that the counts add up to ``n`` (largest
    remainder). The chosen images keep their original order. The output is a compressed
    ``.npz`` with the same keys and shapes, and the same bytes for the same arguments.

    Args:
        source_npz: a MedMNIST file, e.g. the official ``pneumoniamnist.npz``.
        out: the ``.npz`` file to write.
        n_train: images drawn from ``train``.
        n_val: images drawn from ``val``.
        n_test: images drawn from ``test``.
        seed: seed of the draw.

    Returns:
        The path written.

    Example:
        >>> rng = np.random.default_rng(0)   # a stand-in for the official file: 28x28 images, labels (n, 1)
        >>> np.savez("pneumoniamnist.npz", **{
        ...     f"{split}_{key}": rng.integers(0, 2, (n, 1)) if key == "labels" else np.zeros((n, 28, 28), np.uint8)
        ...     for split, n in (("train", 50), ("val", 8), ("test", 12)) for key in ("labels", "images")})
        >>> make_sample("pneumoniamnist.npz", "sample.npz", n_train=40, n_val=6, n_test=10)
        PosixPath('sample.npz')
        >>> np.load("sample.npz")["train_images"].shape
        (40, 28, 28)
    """
    arrays = _read_medmnist_npz(Path(source_npz))
    rng = np.random.default_rng(seed)
    subset = {}
    for split, wanted in zip(MEDMNIST_SPLITS, (n_train, n_val, n_test)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if not 0 < wanted <= len(images):
            raise RaganError(f"n_{split}={wanted} is not allowed; the source has {len(images)} {split} images.")
        indices = _stratified_indices(labels.reshape(len(labels), -1)[:, 0], wanted, rng)
        subset[f"{split}_images"] = images[indices]
        subset[f"{split}_labels"] = labels[indices]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_npz_reproducibly(out, subset)
    return out


def _stratified_indices(labels: np.ndarray, wanted: int, rng: np.random.Generator) -> np.ndarray:
    classes, counts = np.unique(labels, return_counts=True)
    quotas = wanted * counts / counts.sum()
    take = np.floor(quotas).astype(int)
    # Hand the images lost to rounding down to the classes with the largest remainders.
    shortfall = wanted - take.sum()
    take[np.argsort(-(quotas - take), kind="stable")[:shortfall]] += 1
    chosen = [rng.choice(np.flatnonzero(labels == cls), size=n, replace=False) for cls, n in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


def _write_npz_reproducibly(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # np.savez_compressed stamps members with the current time; a fixed timestamp makes the
    # same arrays give the same file bytes. np.load reads the result like any .npz.
    temporary = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, buffer.getvalue(), compresslevel=9)
    os.replace(temporary, path)
