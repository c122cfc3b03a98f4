"""Hand-assembled pickles for the tests of ragan's network-pickle reader.

The official format allows any opcode sequence; these helpers write one as an attacker would,
opcode by opcode, without Python's pickler (which would refuse or normalise some of them).
:func:`encode` turns a small tree of values into opcodes: plain values, :class:`Call` (a global
applied with REDUCE), :class:`Build` (BUILD with a state) and :class:`Raw` bytes.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Build",
    "Call",
    "Raw",
    "encode",
    "legacy_storage",
    "module",
    "nested_modules",
    "network_pickle",
    "ordered_dict",
    "tensor",
    "zip_storage",
]

PROTO4 = b"\x80\x04"


@dataclass
class Call:
    """``module.name(*args)`` as GLOBAL + args tuple + REDUCE."""

    module: str
    name: str
    args: tuple = ()


@dataclass
class Build:
    """``target`` then ``state`` then BUILD."""

    target: object
    state: object


@dataclass
class Raw:
    """Opcodes written as they are."""

    data: bytes


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def encode(value) -> bytes:
    """The opcodes that build ``value`` (no PROTO, no STOP)."""
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, Call):
        return pickle.GLOBAL + f"{value.module}\n{value.name}\n".encode() + encode(tuple(value.args)) + pickle.REDUCE
    if isinstance(value, Build):
        return encode(value.target) + encode(value.state) + pickle.BUILD
    if value is None:
        return pickle.NONE
    if value is True:
        return pickle.NEWTRUE
    if value is False:
        return pickle.NEWFALSE
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return pickle.BININT + struct.pack("<i", value)
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return pickle.LONG1 + bytes([len(data)]) + data
    if isinstance(value, float):
        return pickle.BINFLOAT + struct.pack(">d", value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, (bytes, bytearray)):
        return pickle.BINBYTES + struct.pack("<I", len(value)) + bytes(value)
    # Containers without MARK (as the pickler writes short tuples and single items), so that
    # deep structures test the reader's schema rather than its MARK limit.
    if isinstance(value, tuple):
        if len(value) <= 3:
            return (
                b"".join(encode(v) for v in value)
                + (pickle.EMPTY_TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3)[len(value)]
            )
        return pickle.MARK + b"".join(encode(v) for v in value) + pickle.TUPLE
    if isinstance(value, list):
        return pickle.EMPTY_LIST + b"".join(encode(v) + pickle.APPEND for v in value)
    if isinstance(value, dict):
        return pickle.EMPTY_DICT + b"".join(encode(k) + encode(v) + pickle.SETITEM for k, v in value.items())
    raise TypeError(type(value))


def pickle_bytes(value) -> bytes:
    """A whole pickle (protocol 4 header, STOP) of ``value``."""
    return PROTO4 + encode(value) + pickle.STOP


def ordered_dict() -> Call:
    return Call("collections", "OrderedDict", ())


def legacy_storage(
    values, *, storage_type: str = "FloatStorage", numel: int | None = None, extra: bytes = b""
) -> bytes:
    """A storage in PyTorch's legacy format (what ``torch.storage._load_from_bytes`` receives)."""
    array = np.asarray(values, dtype="<f4" if storage_type == "FloatStorage" else None)
    count = array.size if numel is None else numel
    header = (
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
        + pickle.dumps(1001, protocol=2)
        + pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {}}, protocol=2)
    )
    reference = (
        b"\x80\x02"
        + pickle.MARK
        + _text("storage")
        + pickle.GLOBAL
        + f"torch\n{storage_type}\n".encode()
        + _text("0")
        + _text("cpu")
        + pickle.BININT
        + struct.pack("<i", count)
        + pickle.NONE
        + pickle.TUPLE
        + pickle.BINPERSID
        + pickle.STOP
    )
    return header + reference + pickle.dumps(["0"], protocol=2) + struct.pack("<q", count) + array.tobytes() + extra


def zip_storage(entries: dict[str, bytes], *, compress: bool = False) -> bytes:
    """A storage in PyTorch's zip format with the given entries (``archive/data.pkl`` ...)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def storage_reference_pickle(numel: int, key: str = "0") -> bytes:
    """The ``data.pkl`` of a zip storage: the persistent id of one FloatStorage."""
    return (
        b"\x80\x02"
        + pickle.MARK
        + _text("storage")
        + pickle.GLOBAL
        + b"torch\nFloatStorage\n"
        + _text(key)
        + _text("cpu")
        + pickle.BININT
        + struct.pack("<i", numel)
        + pickle.TUPLE
        + pickle.BINPERSID
        + pickle.STOP
    )


def tensor(storage_blob: bytes, offset: int, size: tuple, stride: tuple) -> Call:
    """``_rebuild_tensor_v2(_load_from_bytes(blob), offset, size, stride, False, OrderedDict())``."""
    storage = Call("torch.storage", "_load_from_bytes", (storage_blob,))
    return Call("torch._utils", "_rebuild_tensor_v2", (storage, offset, size, stride, False, ordered_dict()))


def module(class_name: str = "Generator", init_kwargs=None, *, parameters=None, modules=None, state=None) -> Call:
    """A persistent module as the official persistence hook writes it (``state`` replaces its state)."""
    body = {
        "_parameters": dict(parameters or {}),
        "_buffers": {},
        "_modules": dict(modules or {}),
        "_init_args": (),
        "_init_kwargs": dict(init_kwargs or {}),
    }
    meta = {
        "type": "class",
        "version": 6,
        "module_src": "# never run",
        "class_name": class_name,
        "state": body if state is None else state,
    }
    return Call("torch_utils.persistence", "_reconstruct_persistent_obj", (meta,))


GENERATOR_KWARGS = {
    "z_dim": 64,
    "w_dim": 64,
    "c_dim": 0,
    "img_resolution": 32,
    "img_channels": 1,
    "mapping_kwargs": {"num_layers": 2},
    "synthesis_kwargs": {"channel_base": 1024, "channel_max": 64, "num_fp16_res": 0, "conv_clamp": 256},
}


def network_pickle(g=None, **extra) -> bytes:
    """``{"G_ema": g, ...}`` as a whole pickle (``g`` defaults to a generator with small kwargs)."""
    return pickle_bytes({"G_ema": module("Generator", GENERATOR_KWARGS) if g is None else g, **extra})


def nested_modules(depth: int) -> bytes:
    """A generator whose sub-module has a sub-module ... ``depth`` levels deep (written without
    recursion: one level's opcodes repeated around the innermost module)."""
    marker = b"\xffINNER\xff"
    level = encode(module("L", state={"_modules": {"c": Raw(marker)}}))
    prefix, suffix = level.split(marker)
    leaf = encode(module("Leaf", state={}))
    return pickle_bytes({"G_ema": Raw(prefix * depth + leaf + suffix * depth)})
