"""Read official StyleGAN2-ADA network pickles without PyTorch and without running their code.

NVIDIA's published networks (FFHQ, MetFaces, AFHQ, BreCaHAD, CIFAR-10...) are Python pickles
written by ``NVlabs/stylegan2-ada-pytorch``: a dict with ``G``, ``D``, ``G_ema``,
``augment_pipe`` and ``training_set_kwargs``, whose networks are ``torch.nn.Module`` objects
saved through a "persistence" wrapper that embeds each class's *source code* and re-executes it
when the pickle is opened with ``pickle.load``. Opening such a file with ``pickle`` (or
``torch.load``) therefore runs whatever code it carries: never do that with a file from a source
you do not trust.

This reader never executes code from the file. It uses a restricted unpickler that resolves only
an explicit allow-list of names, each mapped to a small function here:

* the persistence hook becomes a :class:`PersistentModule` holding the class name and the
  object's stored state (its parameters, buffers, sub-modules and constructor arguments); the
  embedded source is kept as a string and never compiled;
* PyTorch's tensor and storage rebuilders become NumPy: the storages inside these pickles are
  byte strings in PyTorch's documented legacy serialisation format (a small header pickle, the
  storage's element count as a little-endian int64, then the raw little-endian elements), which
  this module parses itself; ``torch`` is not needed;
* ``collections.OrderedDict``, NumPy scalars and dtypes are rebuilt as usual.

Any other global (``os.system``, a class of the embedded code...) makes the reader stop with a
:class:`~ragan.errors.RaganError` naming it.

Example:
    >>> data = read_network_pickle("sg2ada-32px-gray-uncond.pkl")   # doctest: +SKIP
    >>> data["G_ema"].init_kwargs["img_resolution"]                  # doctest: +SKIP
    32
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from dataclasses import dataclass, field

import numpy as np

from ragan.errors import RaganError

__all__ = ["PersistentModule", "read_network_pickle"]

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,  # handled below (NumPy has no bfloat16)
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass
class PersistentModule:
    """A module object from the pickle: its class name, constructor arguments and state."""

    class_name: str
    state: dict
    module_src: str = field(default="", repr=False)

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    def tensors(self, prefix: str = "") -> dict:
        """``{"mapping.fc0.weight": array, ...}``: parameters and buffers of this module and its
        sub-modules, named as PyTorch's ``state_dict`` names them."""
        out = {}
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if value is not None:
                    out[prefix + name] = value
        for name, child in (self.state.get("_modules") or {}).items():
            if isinstance(child, PersistentModule):
                out.update(child.tensors(f"{prefix}{name}."))
        return out


class _StoragePlaceholder:
    def __init__(self, dtype_name: str, numel: int):
        self.dtype_name = dtype_name
        self.numel = numel


class _StorageType:
    def __init__(self, name: str):
        self.name = name


def _storage_array(raw: bytes, dtype_name: str, numel: int) -> np.ndarray:
    if dtype_name == "BFloat16Storage":
        halves = np.frombuffer(raw, dtype="<u2", count=numel).astype(np.uint32) << 16
        return halves.view(np.float32)
    dtype = np.dtype(_STORAGE_DTYPES[dtype_name]).newbyteorder("<")
    return np.frombuffer(raw, dtype=dtype, count=numel).astype(dtype.newbyteorder("="))


class _LegacyStorageUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a tensor storage")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type = pid[1]
        name = storage_type.name if isinstance(storage_type, _StorageType) else str(storage_type)
        if name not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage type {name}")
        return _StoragePlaceholder(name, int(pid[4]))


def _load_from_bytes(data: bytes) -> np.ndarray:
    """A storage saved with PyTorch's legacy (non-zip) format, as a 1-D NumPy array."""
    if data[:2] == b"PK":
        return _load_zip_storage(data)
    stream = io.BytesIO(data)
    header = _LegacyStorageUnpickler(stream)
    header.load()  # magic number
    header.load()  # protocol version
    header.load()  # system info
    placeholder = _LegacyStorageUnpickler(stream).load()
    keys = _LegacyStorageUnpickler(stream).load()
    if not isinstance(placeholder, _StoragePlaceholder) or len(keys) != 1:
        raise pickle.UnpicklingError("unexpected tensor storage layout")
    (numel,) = struct.unpack("<q", stream.read(8))
    element = (
        2 if placeholder.dtype_name == "BFloat16Storage" else np.dtype(_STORAGE_DTYPES[placeholder.dtype_name]).itemsize
    )
    raw = stream.read(numel * element)
    if len(raw) != numel * element:
        raise pickle.UnpicklingError("truncated tensor storage")
    return _storage_array(raw, placeholder.dtype_name, numel)


def _load_zip_storage(data: bytes) -> np.ndarray:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        pkl = next(n for n in names if n.endswith("data.pkl"))
        root = pkl[: -len("data.pkl")]
        found = {}

        class _ZipUnpickler(_LegacyStorageUnpickler):
            def persistent_load(self, pid):
                placeholder = super().persistent_load(pid)
                found["key"] = str(pid[2])
                return placeholder

        placeholder = _ZipUnpickler(io.BytesIO(archive.read(pkl))).load()
        raw = archive.read(f"{root}data/{found['key']}")
    return _storage_array(raw, placeholder.dtype_name, placeholder.numel)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_args):
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if not size:
        return np.array(storage[storage_offset])
    flat = storage[storage_offset:]
    itemsize = flat.dtype.itemsize
    return np.lib.stride_tricks.as_strided(flat, size, tuple(s * itemsize for s in stride)).copy()


def _rebuild_parameter(data, *_args):
    return data


def _reconstruct_persistent_obj(meta):
    meta = dict(meta)
    if meta.get("type") != "class":
        raise pickle.UnpicklingError(f"unsupported persistent object type {meta.get('type')!r}")
    return PersistentModule(
        str(meta.get("class_name")), dict(meta.get("state") or {}), str(meta.get("module_src") or "")
    )


def _numpy_scalar(dtype, data=None):
    return np.frombuffer(data, dtype=dtype, count=1)[0] if data is not None else dtype.type()


def _easy_dict(*args, **kwargs):
    return dict(*args, **kwargs)


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): np.dtype,
    ("dnnlib.util", "EasyDict"): _easy_dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        target = _ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(
                f"refused to load the global {module}.{name} (only tensors and StyleGAN2-ADA network state are read)"
            )
        return target

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")


def read_network_pickle(path: str | os.PathLike) -> dict:
    """The content of an official StyleGAN2-ADA ``.pkl`` with networks as :class:`PersistentModule`.

    Raises:
        RaganError: the file is missing, is not such a pickle, or references anything other than
            network state (one line naming the file and the problem).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RaganError(f"{path}: no such file.")
    try:
        with open(path, "rb") as handle:
            data = _RestrictedUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, struct.error, KeyError, TypeError, IndexError) as error:
        raise RaganError(f"{path}: not a readable StyleGAN2-ADA network pickle ({error}).") from None
    if not isinstance(data, dict) or not any(isinstance(data.get(k), PersistentModule) for k in ("G", "G_ema", "D")):
        raise RaganError(f"{path}: not a StyleGAN2-ADA network pickle (no G, G_ema or D network inside).")
    return data
