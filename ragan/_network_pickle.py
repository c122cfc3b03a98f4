"""Read official StyleGAN2-ADA network pickles as data, never as code, with bounded cost.

NVIDIA's published networks (FFHQ, MetFaces, AFHQ, BreCaHAD, CIFAR-10...) are Python pickles
written by ``NVlabs/stylegan2-ada-pytorch``: a dict with ``G``, ``D``, ``G_ema``,
``augment_pipe`` and ``training_set_kwargs``, whose networks are ``torch.nn.Module`` objects saved
through a "persistence" wrapper that embeds each class's *source code* and re-executes it when the
pickle is opened with ``pickle.load`` (or ``torch.load``). Opening such a file with ``pickle`` runs
whatever code it carries.

This module does not use :mod:`pickle` to read the file. It walks the pickle's opcodes with its own
small stack machine that can build only the values these files hold, then checks the result
against a schema before anything else sees it:

* **Values.** ``None``, booleans, integers (at most 16 bytes long), floats, strings, tuples,
  lists, dicts and sets; dict keys and set items are strings, booleans or integers below 2**61.
  Ten names from the file (the persistence hook, PyTorch's tensor, parameter and storage
  rebuilders, ``OrderedDict``, ``set``/``frozenset``, ``dnnlib.util.EasyDict``, NumPy's
  ``dtype`` and ``scalar``) are recognised and each builds one kind of value here; no callable
  from the file is ever called, and any other name stops the reader, naming it.
* **NumPy.** ``dtype`` accepts only plain numeric codes (``b1``, ``i1``-``i8``, ``u1``-``u8``,
  ``f2``-``f8``): no object, structured or sub-array dtype can be made, and ``BUILD`` may only
  set a dtype's byte order, once, before use. ``scalar`` reads exactly one element's bytes.
* **Tensors.** A storage (PyTorch's legacy format, parsed here: a header pickle, the element
  count, the raw little-endian elements; or its zip format with *uncompressed* entries) must
  hold exactly as many bytes as its element count says. A tensor's
  ``offset + sum((size - 1) * stride)`` must lie inside its storage before any view of it is
  made, and it is copied out only after its size is charged to the budget below.
* **Structure.** ``SETITEM``/``APPEND``/``ADDITEMS`` apply only to dicts, lists and sets,
  ``BUILD`` only to the reader's own dtype placeholders, ``NEWOBJ`` only to ``EasyDict``;
  memo indices are bounded by the file's size, ``MARK`` nesting by :data:`MAX_MARK_DEPTH`,
  data nesting by :data:`MAX_DATA_DEPTH`, module nesting by :data:`MAX_MODULE_DEPTH`; a
  container that holds itself or a module that appears twice is refused.
* **Cost.** Every opcode, string and array is charged to a budget of
  :data:`DECODED_FACTOR` times the file's size plus :data:`DECODED_FLOOR`, and never more than
  :data:`DEFAULT_MAX_BYTES` (``RAGAN_MAX_PICKLE_BYTES`` or ``max_bytes=`` changes that
  absolute cap): the reader's memory and time grow linearly with the file, whatever it holds.
* **Networks.** The constructor arguments are range-checked (:func:`network_config`) before
  any network is built: ``z_dim``/``w_dim`` <= 2048, a power-of-two resolution <= 2048, 1 to 4
  channels, widths <= 2048, and a generator no larger than the weights the file holds.

Every refusal is a :class:`~ragan.errors.RaganError` of one line naming the file and the
problem. This module imports no TensorFlow, so a refusal is cheap.

Example:
    >>> data = read_network_pickle("sg2ada-32px-gray-uncond.pkl")   # doctest: +SKIP
    >>> data["G_ema"].init_kwargs["img_resolution"]                  # doctest: +SKIP
    32
"""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ragan.errors import RaganError

__all__ = [
    "DECODED_FACTOR",
    "DECODED_FLOOR",
    "DEFAULT_MAX_BYTES",
    "MAX_PICKLE_BYTES_ENV",
    "PersistentModule",
    "network_config",
    "parse_network_pickle",
    "read_network_pickle",
]

#: The reader's budget is this many times the file's size ...
DECODED_FACTOR = 4
#: ... plus this many bytes (room for small files' Python objects) ...
DECODED_FLOOR = 64 << 20
#: ... and never more than this (the largest official pickles are under 400 MB).
DEFAULT_MAX_BYTES = 4 << 30
#: Environment variable that replaces :data:`DEFAULT_MAX_BYTES` (a number of bytes).
MAX_PICKLE_BYTES_ENV = "RAGAN_MAX_PICKLE_BYTES"
#: Bytes charged per opcode: about what one stack, memo or container entry costs in Python.
OBJECT_COST = 128
MAX_MARK_DEPTH = 256
MAX_DATA_DEPTH = 32
MAX_MODULE_DEPTH = 16
MAX_LONG_BYTES = 16
MAX_TENSOR_DIMS = 8
MAX_ZIP_ENTRIES = 64
MAX_ZIP_PICKLE_BYTES = 1 << 20
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_MEMBER = re.compile(r"[A-Za-z0-9_]{1,100}")
_KEY_INT_LIMIT = 1 << 61  # ints hash to themselves below this: no crafted hash collisions

# PyTorch storage classes -> (NumPy little-endian dtype, element size in the file).
_STORAGES = {
    "FloatStorage": ("<f4", 4),
    "DoubleStorage": ("<f8", 8),
    "HalfStorage": ("<f2", 2),
    "BFloat16Storage": ("<u2", 2),
    "LongStorage": ("<i8", 8),
    "IntStorage": ("<i4", 4),
    "ShortStorage": ("<i2", 2),
    "CharStorage": ("i1", 1),
    "ByteStorage": ("u1", 1),
    "BoolStorage": ("u1", 1),
}
# numpy.dtype codes a network pickle may use (its numeric attributes are float64 scalars).
_PLAIN_DTYPES = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"}


class _Refused(Exception):
    """A refusal without the file name (added by :func:`read_network_pickle`)."""


def _shown(text) -> str:
    """A value from the file as it may appear in a one-line message: short, escaped."""
    text = str(text)
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


# ----------------------------------------------------------------------------------------------
# What the stack machine builds besides plain values
# ----------------------------------------------------------------------------------------------
class _Global:
    """A recognised name from the file: a marker that REDUCE/NEWOBJ dispatch on, never called."""

    __slots__ = ("module", "name", "kind")

    def __init__(self, module: str, name: str, kind: str):
        self.module, self.name, self.kind = module, name, kind


class _Dtype:
    """``numpy.dtype(code)`` of a plain numeric code; ``BUILD`` may set its byte order once."""

    __slots__ = ("code", "byteorder", "built", "used")

    def __init__(self, code: str):
        self.code, self.byteorder, self.built, self.used = code, "=", False, False

    def numpy(self) -> np.dtype:
        dtype = np.dtype(self.code)
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" and dtype.itemsize > 1 else dtype


class _Storage:
    """A 1-D NumPy array holding one PyTorch storage's elements (read-only)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array


class _StorageRef:
    """The persistent id of a storage inside a storage pickle: its type, key and element count."""

    __slots__ = ("type_name", "key", "numel")

    def __init__(self, type_name: str, key: str, numel: int):
        self.type_name, self.key, self.numel = type_name, key, numel


class _RawModule:
    """What the persistence hook received; checked against the schema once the file is read
    (its dict can still change until then)."""

    __slots__ = ("meta",)

    def __init__(self, meta):
        self.meta = meta


@dataclass
class PersistentModule:
    """A module object from the pickle: its class name, constructor arguments and state.

    ``state`` holds plain data (numbers, strings, lists, dicts), ``_parameters`` and
    ``_buffers`` (dicts of NumPy arrays) and ``_modules`` (dicts of PersistentModule); the
    embedded source ``module_src`` is kept as a string and never compiled.
    """

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


class _Budget:
    """Bytes the reader may still decode (strings, arrays, and a fixed cost per opcode)."""

    def __init__(self, limit: int, why: str):
        self.limit, self.why, self.used = int(limit), why, 0

    def charge(self, size: int) -> None:
        self.used += int(size)
        if self.used > self.limit:
            raise _Refused(f"it decodes to more than {self.limit:,} bytes ({self.why})")


# ----------------------------------------------------------------------------------------------
# The stack machine
# ----------------------------------------------------------------------------------------------
_OUTER_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): "module",
    ("collections", "OrderedDict"): "ordered_dict",
    ("torch._utils", "_rebuild_tensor_v2"): "tensor",
    ("torch._utils", "_rebuild_parameter"): "parameter",
    ("torch.storage", "_load_from_bytes"): "storage",
    ("numpy.core.multiarray", "scalar"): "scalar",
    ("numpy._core.multiarray", "scalar"): "scalar",
    ("numpy", "dtype"): "dtype",
    ("dnnlib.util", "EasyDict"): "easy_dict",
    ("builtins", "set"): "set",
    ("builtins", "frozenset"): "frozenset",
    ("__builtin__", "set"): "set",  # protocol 2 writes Python 2's module name
    ("__builtin__", "frozenset"): "frozenset",
}
_STORAGE_GLOBALS = {("torch", name): "storage_type" for name in _STORAGES}


class _Machine:
    """Runs one pickle (from ``start`` to its STOP) over ``data``, building only known values.

    ``globals_`` maps ``(module, name)`` to a kind; ``persistent`` says whether BINPERSID (the
    storage reference of a storage pickle) is allowed.
    """

    def __init__(self, data, budget: _Budget, globals_: dict, *, persistent: bool = False):
        self.data = data
        self.view = memoryview(data)
        self.end = len(data)
        self.budget = budget
        self.globals = globals_
        self.persistent = persistent
        self.dispatch = {code: getattr(self, "op_" + name) for code, name in _OPCODES.items()}

    # -- reading -------------------------------------------------------------------------
    def take(self, size: int) -> int:
        """The position of the next ``size`` bytes (which must exist), advancing past them."""
        start = self.pos
        if size < 0 or start + size > self.end:
            raise _Refused(f"it ends early (an opcode at byte {start - 1} needs {size} more bytes)")
        self.pos = start + size
        return start

    def unpack(self, fmt: struct.Struct):
        return fmt.unpack_from(self.data, self.take(fmt.size))[0]

    def text(self, size: int) -> str:
        start = self.take(size)
        self.budget.charge(size)
        try:
            return str(self.view[start : start + size], "utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _Refused(f"a string at byte {start} is not valid UTF-8") from None

    def raw(self, size: int):
        start = self.take(size)
        self.budget.charge(size)
        return self.view[start : start + size]

    def line(self) -> str:
        window = bytes(self.view[self.pos : min(self.end, self.pos + 256)])
        stop = window.find(b"\n")
        if stop < 0:
            raise _Refused(f"a GLOBAL name at byte {self.pos} has no end")
        self.pos += stop + 1
        return window[:stop].decode("ascii", "replace")

    # -- running -------------------------------------------------------------------------
    def run(self, start: int = 0):
        """``(value, end)``: the pickle's value and the position after its STOP."""
        self.pos = start
        self.stack: list = []
        self.marks: list = []
        self.memo: dict = {}
        self.result = _NOTHING
        dispatch, data, budget = self.dispatch, self.data, self.budget
        while self.result is _NOTHING:
            if self.pos >= self.end:
                raise _Refused("it ends before its STOP opcode")
            code = data[self.pos]
            self.pos += 1
            handler = dispatch.get(code)
            if handler is None:
                raise _Refused(f"opcode {bytes([code])!r} at byte {self.pos - 1} is not used by network pickles")
            budget.charge(OBJECT_COST)
            try:
                handler()
            except IndexError:
                raise _Refused(
                    f"opcode {_OPCODES[code]} at byte {self.pos - 1} finds too few values on the stack"
                ) from None
        return self.result, self.pos

    def pop_mark(self) -> list:
        if not self.marks:
            raise _Refused(f"an opcode at byte {self.pos - 1} needs a MARK that is not there")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    # -- opcodes: framing --------------------------------------------------------------------
    def op_PROTO(self):
        version = self.data[self.take(1)]
        if not 2 <= version <= 5:
            raise _Refused(f"pickle protocol {version} is not one a network pickle uses (2 to 5)")

    def op_FRAME(self):
        size = self.unpack(_Q)
        if self.pos + size > self.end:
            raise _Refused(f"a frame at byte {self.pos - 9} runs past the end of the data")

    def op_STOP(self):
        value = self.stack.pop()
        if self.stack or self.marks:
            raise _Refused("values are left on the stack at its STOP opcode")
        self.result = value

    # -- opcodes: constants ------------------------------------------------------------------
    def op_NONE(self):
        self.stack.append(None)

    def op_NEWTRUE(self):
        self.stack.append(True)

    def op_NEWFALSE(self):
        self.stack.append(False)

    def op_BININT(self):
        self.stack.append(self.unpack(_I4))

    def op_BININT1(self):
        self.stack.append(self.data[self.take(1)])

    def op_BININT2(self):
        self.stack.append(self.unpack(_U2))

    def _long(self, size: int):
        if size > MAX_LONG_BYTES:
            raise _Refused(f"an integer of {size} bytes at byte {self.pos} is larger than a network pickle holds")
        start = self.take(size)
        self.stack.append(int.from_bytes(self.data[start : start + size], "little", signed=True))

    def op_LONG1(self):
        self._long(self.data[self.take(1)])

    def op_LONG4(self):
        self._long(self.unpack(_I4))

    def op_BINFLOAT(self):
        self.stack.append(self.unpack(_F8))

    def op_SHORT_BINUNICODE(self):
        self.stack.append(self.text(self.data[self.take(1)]))

    def op_BINUNICODE(self):
        self.stack.append(self.text(self.unpack(_U4)))

    def op_BINUNICODE8(self):
        self.stack.append(self.text(self.unpack(_Q)))

    def op_SHORT_BINBYTES(self):
        self.stack.append(bytes(self.raw(self.data[self.take(1)])))

    def op_BINBYTES(self):
        self.stack.append(self.raw(self.unpack(_U4)))

    def op_BINBYTES8(self):
        self.stack.append(self.raw(self.unpack(_Q)))

    # -- opcodes: containers -----------------------------------------------------------------
    def op_EMPTY_TUPLE(self):
        self.stack.append(())

    def op_TUPLE1(self):
        self.stack[-1] = (self.stack[-1],)

    def op_TUPLE2(self):
        second = self.stack.pop()
        self.stack[-1] = (self.stack[-1], second)

    def op_TUPLE3(self):
        third, second = self.stack.pop(), self.stack.pop()
        self.stack[-1] = (self.stack[-1], second, third)

    def op_TUPLE(self):
        items = tuple(self.pop_mark())  # first: it replaces self.stack
        self.stack.append(items)

    def op_EMPTY_LIST(self):
        self.stack.append([])

    def op_LIST(self):
        items = self.pop_mark()
        self.stack.append(items)

    def _list(self) -> list:
        target = self.stack[-1]
        if type(target) is not list:
            raise _Refused(f"APPEND at byte {self.pos - 1} applies to a {_kind(target)}, not a list")
        return target

    def op_APPEND(self):
        value = self.stack.pop()
        self._list().append(value)

    def op_APPENDS(self):
        items = self.pop_mark()
        self._list().extend(items)

    def op_EMPTY_DICT(self):
        self.stack.append({})

    def _dict(self) -> dict:
        target = self.stack[-1]
        if type(target) is not dict:
            raise _Refused(f"SETITEM at byte {self.pos - 1} applies to a {_kind(target)}, not a dict")
        return target

    def op_DICT(self):
        items = self.pop_mark()
        self.stack.append({})
        self._setitems(items)

    def op_SETITEM(self):
        value, key = self.stack.pop(), self.stack.pop()
        self._setitems([key, value])

    def op_SETITEMS(self):
        self._setitems(self.pop_mark())

    def _setitems(self, items: list):
        if len(items) % 2:
            raise _Refused(f"SETITEMS at byte {self.pos - 1} has a key without a value")
        target = self._dict()
        for index in range(0, len(items), 2):
            target[self.key(items[index])] = items[index + 1]

    def key(self, value):
        """``value`` if it may be a dict key or set item: no crafted hashes, no deep tuples."""
        kind = type(value)
        if kind is str or kind is bool or value is None:
            return value
        if kind is int and -_KEY_INT_LIMIT < value < _KEY_INT_LIMIT:
            return value
        raise _Refused(
            f"a dict key or set item near byte {self.pos - 1} is a {_kind(value)} (strings and integers only)"
        )

    def op_EMPTY_SET(self):
        self.stack.append(set())

    def op_ADDITEMS(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not set:
            raise _Refused(f"ADDITEMS at byte {self.pos - 1} applies to a {_kind(target)}, not a set")
        target.update(self.key(item) for item in items)

    def op_FROZENSET(self):
        items = frozenset(self.key(item) for item in self.pop_mark())
        self.stack.append(items)

    def op_MARK(self):
        if len(self.marks) >= MAX_MARK_DEPTH:
            raise _Refused(f"its values nest more than {MAX_MARK_DEPTH} levels deep")
        self.marks.append(self.stack)
        self.stack = []

    def op_POP(self):
        self.stack.pop()

    def op_POP_MARK(self):
        self.pop_mark()

    def op_DUP(self):
        self.stack.append(self.stack[-1])

    # -- opcodes: memo -----------------------------------------------------------------------
    def _put(self, index: int):
        if index > self.end:
            raise _Refused(f"memo index {index:,} at byte {self.pos - 1} is beyond the file's size")
        self.memo[index] = self.stack[-1]

    def op_BINPUT(self):
        self._put(self.data[self.take(1)])

    def op_LONG_BINPUT(self):
        self._put(self.unpack(_U4))

    def op_MEMOIZE(self):
        self._put(len(self.memo))

    def _get(self, index: int):
        try:
            self.stack.append(self.memo[index])
        except KeyError:
            raise _Refused(f"memo index {index:,} at byte {self.pos - 1} was never stored") from None

    def op_BINGET(self):
        self._get(self.data[self.take(1)])

    def op_LONG_BINGET(self):
        self._get(self.unpack(_U4))

    # -- opcodes: names and calls ------------------------------------------------------------
    def _global(self, module, name):
        if type(module) is not str or type(name) is not str:
            raise _Refused(f"STACK_GLOBAL at byte {self.pos - 1} names a non-string")
        kind = self.globals.get((module, name))
        if kind is None:
            raise _Refused(
                f"it asks for the global {_shown(module + '.' + name)}, which is not part of a StyleGAN2-ADA "
                "network (refused to load it; nothing from the file is run)"
            )
        self.stack.append(_Global(module, name, kind))

    def op_GLOBAL(self):
        module = self.line()
        self._global(module, self.line())

    def op_STACK_GLOBAL(self):
        name, module = self.stack.pop(), self.stack.pop()
        self._global(module, name)

    def op_REDUCE(self):
        args, function = self.stack.pop(), self.stack.pop()
        if type(function) is not _Global or type(args) is not tuple:
            raise _Refused(f"REDUCE at byte {self.pos - 1} calls a {_kind(function)}, not a recognised name")
        self.stack.append(_REDUCERS[function.kind](self, args))

    def op_NEWOBJ(self):
        args, cls = self.stack.pop(), self.stack.pop()
        if type(cls) is not _Global or cls.kind != "easy_dict" or args != ():
            raise _Refused(f"NEWOBJ at byte {self.pos - 1} makes a {_kind(cls)} (only dnnlib.util.EasyDict)")
        self.stack.append({})

    def op_BUILD(self):
        state = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not _Dtype:
            raise _Refused(
                f"BUILD at byte {self.pos - 1} applies to a {_kind(target)} (only numpy dtypes take a state)"
            )
        _build_dtype(target, state)

    def op_BINPERSID(self):
        pid = self.stack.pop()
        if not self.persistent:
            raise _Refused(f"a persistent id at byte {self.pos - 1} outside a tensor storage")
        self.stack.append(_storage_ref(pid))


_NOTHING = object()
_Q, _I4, _U4, _U2, _F8 = (struct.Struct(f) for f in ("<Q", "<i", "<I", "<H", ">d"))
# The opcodes of protocols 2 to 5 that network pickles use (no text opcodes of protocol 0/1,
# no INST/OBJ/EXT/NEWOBJ_EX/out-of-band buffers).
_OPCODES = {
    0x80: "PROTO", 0x95: "FRAME", 0x2E: "STOP",
    0x4E: "NONE", 0x88: "NEWTRUE", 0x89: "NEWFALSE",
    0x4A: "BININT", 0x4B: "BININT1", 0x4D: "BININT2", 0x8A: "LONG1", 0x8B: "LONG4", 0x47: "BINFLOAT",
    0x8C: "SHORT_BINUNICODE", 0x58: "BINUNICODE", 0x8D: "BINUNICODE8",
    0x43: "SHORT_BINBYTES", 0x42: "BINBYTES", 0x8E: "BINBYTES8",
    0x29: "EMPTY_TUPLE", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3", 0x74: "TUPLE",
    0x5D: "EMPTY_LIST", 0x6C: "LIST", 0x61: "APPEND", 0x65: "APPENDS",
    0x7D: "EMPTY_DICT", 0x64: "DICT", 0x73: "SETITEM", 0x75: "SETITEMS",
    0x8F: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET",
    0x28: "MARK", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP",
    0x71: "BINPUT", 0x72: "LONG_BINPUT", 0x94: "MEMOIZE", 0x68: "BINGET", 0x6A: "LONG_BINGET",
    0x63: "GLOBAL", 0x93: "STACK_GLOBAL", 0x52: "REDUCE", 0x81: "NEWOBJ", 0x62: "BUILD", 0x51: "BINPERSID",
}  # fmt: skip


def _kind(value) -> str:
    """A value's kind in words, for messages (never its repr: it may be huge or nested)."""
    if type(value) is _Global:
        return f"{value.module}.{value.name}"
    return {
        _Dtype: "numpy dtype",
        _Storage: "tensor storage",
        _StorageRef: "storage reference",
        _RawModule: "network module",
        np.ndarray: "tensor",
        memoryview: "bytes",
    }.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------------------------------
# What each recognised name builds (REDUCE with its arguments)
# ----------------------------------------------------------------------------------------------
def _arity(name: str, args: tuple, low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        raise _Refused(f"{name} is given {len(args)} arguments (a network pickle gives {low}-{high})")


def _int(name: str, value, low: int = 0, high: int = 1 << 62) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _Refused(
            f"{name} is {_kind(value) if type(value) is not int else value} (an integer {low}-{high} expected)"
        )
    return value


def _reduce_module(machine, args):
    _arity("the persistence hook", args, 1)
    return _RawModule(args[0])


def _reduce_ordered_dict(machine, args):
    _arity("OrderedDict", args, 0)
    return {}


def _reduce_set(machine, args):
    _arity("set", args, 0, 1)
    items = args[0] if args else []
    if type(items) is not list:
        raise _Refused(f"set() is given a {_kind(items)}, not a list")
    return {machine.key(item) for item in items}


def _reduce_frozenset(machine, args):
    return frozenset(_reduce_set(machine, args))


def _reduce_easy_dict(machine, args):
    _arity("EasyDict", args, 0)
    return {}


def _reduce_dtype(machine, args):
    _arity("numpy.dtype", args, 1, 3)
    code = args[0]
    if type(code) is not str or code not in _PLAIN_DTYPES:
        raise _Refused(
            f"numpy.dtype({_shown(code)}) is not a plain numeric dtype (allowed: {', '.join(sorted(_PLAIN_DTYPES))})"
        )
    if any(type(flag) is not bool for flag in args[1:]):
        raise _Refused("numpy.dtype's flags are not booleans")
    return _Dtype(code)


def _build_dtype(dtype: _Dtype, state) -> None:
    """``dtype.__setstate__``: only the plain numeric form, whose one free field is the byte order."""
    if dtype.built or dtype.used:
        raise _Refused("BUILD on a numpy dtype that was already built or used")
    expected_tail = (None, None, None, -1, -1, 0)
    if (
        type(state) is not tuple
        or len(state) != 8
        or state[0] != 3
        or state[1] not in ("<", ">", "|", "=")
        or any(type(a) is not type(b) or a != b for a, b in zip(state[2:], expected_tail))
    ):
        raise _Refused("a numpy dtype's state is not that of a plain numeric dtype (no fields, sub-arrays or objects)")
    dtype.byteorder, dtype.built = state[1], True


def _reduce_scalar(machine, args):
    _arity("numpy scalar", args, 2)
    dtype, data = args
    if type(dtype) is not _Dtype:
        raise _Refused(f"a numpy scalar is made with a {_kind(dtype)}, not a plain numeric dtype")
    dtype.used = True
    real = dtype.numpy()
    if type(data) not in (bytes, memoryview) or len(data) != real.itemsize:
        raise _Refused(f"a numpy {dtype.code} scalar is given {_kind(data)} that are not {real.itemsize} bytes")
    return np.frombuffer(data, dtype=real, count=1)[0].item()


def _reduce_storage(machine, args):
    _arity("torch.storage._load_from_bytes", args, 1)
    blob = args[0]
    if type(blob) not in (bytes, memoryview):
        raise _Refused(f"a tensor storage is a {_kind(blob)}, not bytes")
    if bytes(blob[:2]) == b"PK":
        return _zip_storage(blob, machine.budget)
    return _legacy_storage(blob, machine.budget)


def _reduce_tensor(machine, args):
    _arity("torch._utils._rebuild_tensor_v2", args, 4, 7)
    storage, offset, size, stride = args[:4]
    if type(storage) is not _Storage:
        raise _Refused(f"a tensor is built on a {_kind(storage)}, not a storage")
    for what, value in (("size", size), ("stride", stride)):
        if type(value) is not tuple or len(value) > MAX_TENSOR_DIMS:
            raise _Refused(f"a tensor's {what} is not a tuple of at most {MAX_TENSOR_DIMS} integers")
    if len(size) != len(stride):
        raise _Refused(f"a tensor has {len(size)} sizes but {len(stride)} strides")
    array = storage.array
    offset = _int("a tensor's storage offset", offset, 0, array.size)
    size = tuple(_int("a tensor size", s, 0, 1 << 40) for s in size)
    stride = tuple(_int("a tensor stride", s, 0, 1 << 40) for s in stride)
    numel = 1
    for s in size:
        numel *= s
    if numel == 0:
        return np.zeros(size, array.dtype)
    # The last element the view reaches must be inside the storage: checked before any view exists.
    last = offset + sum((s - 1) * st for s, st in zip(size, stride))
    if last >= array.size:
        raise _Refused(
            f"a tensor of size {size} and stride {stride} at offset {offset} reaches element {last:,} "
            f"of a storage of {array.size:,}"
        )
    machine.budget.charge(numel * array.itemsize)
    if not size:
        return np.array(array[offset])
    itemsize = array.itemsize
    view = np.lib.stride_tricks.as_strided(
        array[offset : last + 1], shape=size, strides=tuple(st * itemsize for st in stride), writeable=False
    )
    return np.array(view, copy=True, order="C")


def _reduce_parameter(machine, args):
    _arity("torch._utils._rebuild_parameter", args, 1, 3)
    if type(args[0]) is not np.ndarray:
        raise _Refused(f"a parameter wraps a {_kind(args[0])}, not a tensor")
    return args[0]


_REDUCERS = {
    "module": _reduce_module,
    "ordered_dict": _reduce_ordered_dict,
    "set": _reduce_set,
    "frozenset": _reduce_frozenset,
    "easy_dict": _reduce_easy_dict,
    "dtype": _reduce_dtype,
    "scalar": _reduce_scalar,
    "storage": _reduce_storage,
    "tensor": _reduce_tensor,
    "parameter": _reduce_parameter,
}


# ----------------------------------------------------------------------------------------------
# Tensor storages
# ----------------------------------------------------------------------------------------------
def _storage_ref(pid) -> _StorageRef:
    """The persistent id ``('storage', torch.XStorage, key, location, numel[, None])``."""
    if type(pid) is not tuple or len(pid) not in (5, 6) or pid[0] != "storage":
        raise _Refused("a storage's persistent id is not ('storage', type, key, location, size)")
    storage_type, key, location, numel = pid[1:5]
    if type(storage_type) is not _Global or storage_type.kind != "storage_type":
        raise _Refused(f"a storage's type is a {_kind(storage_type)}")
    if type(key) is not str or len(key) > 64 or type(location) is not str:
        raise _Refused("a storage's key or location is not a short string")
    if len(pid) == 6 and pid[5] is not None:
        raise _Refused("a storage is saved as a view of another (not in network pickles)")
    return _StorageRef(storage_type.name, key, _int("a storage's element count", numel, 0, 1 << 40))


def _storage_array(raw, type_name: str, numel: int, budget: _Budget) -> _Storage:
    """The elements of a storage of ``type_name`` from exactly ``numel`` elements' bytes."""
    dtype, size = _STORAGES[type_name]
    if len(raw) != numel * size:
        raise _Refused(f"a {type_name} of {numel:,} elements holds {len(raw):,} bytes instead of {numel * size:,}")
    # A view of bytes already charged; only a conversion below makes (and charges) a copy.
    array = np.frombuffer(raw, dtype=dtype, count=numel)
    if type_name == "BFloat16Storage":
        budget.charge(numel * 4)
        array = (array.astype(np.uint32) << 16).view(np.float32)
    elif type_name == "BoolStorage":
        budget.charge(numel)
        array = array != 0
    elif not array.dtype.isnative:
        budget.charge(numel * size)
        array = array.astype(array.dtype.newbyteorder("="))
    array.flags.writeable = False
    return _Storage(array)


def _legacy_storage(blob, budget: _Budget) -> _Storage:
    """PyTorch's legacy format: magic, protocol, system info, storage pid, keys, count, elements."""
    machine = _Machine(blob, budget, _STORAGE_GLOBALS, persistent=True)
    magic, pos = machine.run(0)
    if magic != _LEGACY_MAGIC:
        raise _Refused("a tensor storage does not start with PyTorch's magic number")
    version, pos = machine.run(pos)
    if version != _LEGACY_PROTOCOL:
        raise _Refused(f"a tensor storage has format version {_shown(version)}, not {_LEGACY_PROTOCOL}")
    info, pos = machine.run(pos)
    if type(info) is not dict or info.get("little_endian") is not True:
        raise _Refused("a tensor storage was not written on a little-endian machine")
    ref, pos = machine.run(pos)
    if type(ref) is not _StorageRef:
        raise _Refused(f"a tensor storage holds a {_kind(ref)} where its storage reference belongs")
    keys, pos = machine.run(pos)
    if keys != [ref.key]:
        raise _Refused("a tensor storage's key list does not name its one storage")
    start = pos
    if start + 8 > len(blob):
        raise _Refused("a tensor storage ends before its element count")
    (numel,) = struct.unpack_from("<q", blob, start)
    if numel != ref.numel:
        raise _Refused(f"a tensor storage says {numel:,} elements in one place and {ref.numel:,} in another")
    return _storage_array(blob[start + 8 :], ref.type_name, numel, budget)


def _zip_storage(blob, budget: _Budget) -> _Storage:
    """PyTorch's zip format (``archive/data.pkl`` + ``archive/data/KEY``), uncompressed entries only:
    torch writes them stored, and a compressed entry is how a small file inflates into a huge one."""
    budget.charge(len(blob))
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise _Refused(f"a zip tensor storage has {len(infos)} entries (at most {MAX_ZIP_ENTRIES})")
            by_name = {}
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                    raise _Refused(
                        f"zip entry {_shown(info.filename)} of a tensor storage is compressed or encrypted "
                        "(PyTorch stores them uncompressed)"
                    )
                by_name[info.filename] = info
            pickles = [name for name in by_name if name == "data.pkl" or name.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise _Refused(f"a zip tensor storage has {len(pickles)} data.pkl entries instead of one")
            root = pickles[0][: -len("data.pkl")]
            if by_name[pickles[0]].file_size > MAX_ZIP_PICKLE_BYTES:
                raise _Refused("a zip tensor storage's data.pkl is larger than a storage reference")
            ref, _ = _Machine(archive.read(pickles[0]), budget, _STORAGE_GLOBALS, persistent=True).run(0)
            if type(ref) is not _StorageRef:
                raise _Refused(f"a zip tensor storage's data.pkl holds a {_kind(ref)}, not a storage reference")
            info = by_name.get(f"{root}data/{ref.key}")
            if info is None:
                raise _Refused(f"a zip tensor storage has no entry {_shown(root + 'data/' + ref.key)}")
            expected = ref.numel * _STORAGES[ref.type_name][1]
            if info.file_size != expected:
                raise _Refused(f"a zip tensor storage entry holds {info.file_size:,} bytes instead of {expected:,}")
            budget.charge(expected)
            raw = archive.read(info)  # stored: reading it costs its declared size, checked above
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        OSError,
        ValueError,
        struct.error,
    ) as error:
        # ValueError: zipfile seeks to offsets a damaged archive gives, negative ones included.
        raise _Refused(f"a zip tensor storage is not a readable zip ({type(error).__name__})") from None
    return _storage_array(raw, ref.type_name, ref.numel, budget)


# ----------------------------------------------------------------------------------------------
# The schema: what a network pickle's value must look like
# ----------------------------------------------------------------------------------------------
def _where(where: str, path: tuple) -> str:
    """``G.synthesis._init_kwargs['channels_dict'][4]``: a place in the file's data, for messages."""
    return where + "".join(f"[{_shown(part)}]" if isinstance(part, str) else f"[{part}]" for part in path)


class _Schema:
    """Checks the machine's value and turns it into plain data and :class:`PersistentModule` trees."""

    def __init__(self):
        self.plain_done: dict[int, object] = {}
        self.active: set[int] = set()
        self.modules_seen: set[int] = set()

    def plain(self, value, where: str, path: tuple = ()):
        """``value`` as fresh plain data; ``where`` + ``path`` (keys and indices) name it in messages."""
        kind = type(value)
        if value is None or kind in (bool, int, float, str):
            return value
        if kind not in (list, tuple, dict, set, frozenset):
            raise _Refused(f"{_where(where, path)} holds a {_kind(value)} where plain data is expected")
        ident = id(value)
        if ident in self.plain_done:
            return self.plain_done[ident]
        if ident in self.active:
            raise _Refused(f"{_where(where, path)} contains itself")
        if len(path) >= MAX_DATA_DEPTH:
            raise _Refused(f"{_where(where, path)} nests more than {MAX_DATA_DEPTH} levels deep")
        self.active.add(ident)
        if kind is dict:
            out = {k: self.plain(v, where, (*path, k)) for k, v in value.items()}
        elif kind in (set, frozenset):
            out = set(value)  # items are strings and small integers (checked when added)
        else:
            items = [self.plain(v, where, (*path, i)) for i, v in enumerate(value)]
            out = items if kind is list else tuple(items)
        self.active.discard(ident)
        self.plain_done[ident] = out
        return out

    def module(self, raw, where: str, depth: int = 0) -> PersistentModule:
        if type(raw) is not _RawModule:
            raise _Refused(f"{where} is a {_kind(raw)}, not a network module")
        if id(raw) in self.modules_seen:
            raise _Refused(f"{where} is a module that also appears elsewhere (networks are trees)")
        if depth >= MAX_MODULE_DEPTH:
            raise _Refused(f"{where}: modules nest more than {MAX_MODULE_DEPTH} levels deep")
        self.modules_seen.add(id(raw))
        meta = raw.meta
        if type(meta) is not dict or meta.get("type") != "class":
            raise _Refused(f"{where} is not a persistent class object")
        class_name, source, state = meta.get("class_name"), meta.get("module_src", ""), meta.get("state")
        if type(class_name) is not str or not _NAME.fullmatch(class_name):
            raise _Refused(f"{where} has the class name {_shown(class_name)}, not a Python name")
        if type(source) is not str:
            raise _Refused(f"{where}'s module source is a {_kind(source)}, not text")
        if type(state) is not dict:
            raise _Refused(f"{where} ({class_name}) has a state of type {_kind(state)}, not a dict")
        checked = {}
        for key, value in state.items():
            if type(key) is not str:
                raise _Refused(f"{where} ({class_name}) has a state key of type {_kind(key)}")
            inner = f"{where}.{key}"
            if key in ("_parameters", "_buffers"):
                checked[key] = self.tensors(value, inner)
            elif key == "_modules":
                checked[key] = self.children(value, where, depth)
            else:
                checked[key] = self.plain(value, inner)
        for key, kind in (("_init_kwargs", dict), ("_init_args", (tuple, list))):
            if key in checked and checked[key] is not None and not isinstance(checked[key], kind):
                raise _Refused(f"{where} ({class_name}) has {key} of type {_kind(checked[key])}")
        return PersistentModule(class_name, checked, source)

    def tensors(self, value, where: str) -> dict:
        if type(value) is not dict:
            raise _Refused(f"{where} is a {_kind(value)}, not a dict of tensors")
        for name, tensor in value.items():
            if type(name) is not str or not _MEMBER.fullmatch(name):
                raise _Refused(f"{where} has the tensor name {_shown(name)}")
            if tensor is not None and type(tensor) is not np.ndarray:
                raise _Refused(f"{where}[{_shown(name)}] is a {_kind(tensor)}, not a tensor")
        return dict(value)

    def children(self, value, where: str, depth: int) -> dict:
        if type(value) is not dict:
            raise _Refused(f"{where}._modules is a {_kind(value)}, not a dict of modules")
        out = {}
        for name, child in value.items():
            if type(name) is not str or not _MEMBER.fullmatch(name):
                raise _Refused(f"{where} has the sub-module name {_shown(name)}")
            out[name] = None if child is None else self.module(child, f"{where}.{name}", depth + 1)
        return out


def _network_dict(value) -> dict:
    if type(value) is not dict:
        raise _Refused(f"it holds a {_kind(value)}, not the dict of a network snapshot")
    schema = _Schema()
    out = {}
    for key in ("G", "D", "G_ema", "augment_pipe"):
        if value.get(key) is not None:
            out[key] = schema.module(value[key], key)
    if not any(key in out for key in ("G", "G_ema", "D")):
        raise _Refused("it holds no G, G_ema or D network")
    kwargs = value.get("training_set_kwargs")
    kwargs = schema.plain(kwargs, "training_set_kwargs") if kwargs is not None else {}
    if type(kwargs) is not dict:
        raise _Refused(f"training_set_kwargs is a {_kind(kwargs)}, not a dict")
    out["training_set_kwargs"] = kwargs
    return out


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------
def _absolute_cap(max_bytes: int | None) -> int:
    if max_bytes is not None:
        return int(max_bytes)
    text = os.environ.get(MAX_PICKLE_BYTES_ENV)
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise RaganError(f"{MAX_PICKLE_BYTES_ENV}={text!r} must be a positive number of bytes.")
    return value


def read_network_pickle(path: str | os.PathLike, *, max_bytes: int | None = None) -> dict:
    """The content of an official StyleGAN2-ADA ``.pkl``, read as data (see the module docstring).

    Args:
        path: the ``.pkl`` file.
        max_bytes: the absolute cap on what reading it may decode (default
            ``RAGAN_MAX_PICKLE_BYTES`` or :data:`DEFAULT_MAX_BYTES`); the cap relative to the
            file's size applies as well.

    Returns:
        ``{"G", "D", "G_ema", "augment_pipe"}`` (those present, as :class:`PersistentModule`)
        and ``"training_set_kwargs"`` (plain data); other keys of the file are dropped.

    Raises:
        RaganError: the file is missing, too large, not such a pickle, or anything in it falls
            outside the schema (one line naming the file and the problem).

    Example:
        >>> read_network_pickle("ffhq.pkl")["G_ema"].init_kwargs["z_dim"]   # doctest: +SKIP
        512
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RaganError(f"{path}: no such file.")
    cap = _absolute_cap(max_bytes)
    size = os.path.getsize(path)
    if size > cap:
        raise RaganError(
            f"{path}: the file is {size:,} bytes, over the {cap:,}-byte cap ({MAX_PICKLE_BYTES_ENV} raises it)."
        )
    with open(path, "rb") as handle:
        data = handle.read(cap + 1)
    return parse_network_pickle(data, path, max_bytes=cap)


def parse_network_pickle(data: bytes, name: str, *, max_bytes: int | None = None) -> dict:
    """:func:`read_network_pickle` on the file's bytes (``name`` is shown in messages).

    Example:
        >>> parse_network_pickle(b"\\x80\\x04N.", "x.pkl")
        Traceback (most recent call last):
        ...
        ragan.errors.RaganError: x.pkl: not a StyleGAN2-ADA network pickle ragan can read: it holds a NoneType, ...
    """
    cap = _absolute_cap(max_bytes)
    size = len(data)
    limit = min(cap, DECODED_FACTOR * size + DECODED_FLOOR)
    why = f"the cap is {DECODED_FACTOR} x the file's size + {DECODED_FLOOR >> 20} MiB, at most {cap:,}"
    try:
        if size > cap:
            raise _Refused(f"it is {size:,} bytes, over the {cap:,}-byte cap ({MAX_PICKLE_BYTES_ENV} raises it)")
        value, end = _Machine(data, _Budget(limit, why), _OUTER_GLOBALS).run(0)
        if end != size:
            raise _Refused(f"{size - end:,} bytes follow its STOP opcode")
        return _network_dict(value)
    except _Refused as refusal:
        raise RaganError(f"{name}: not a StyleGAN2-ADA network pickle ragan can read: {refusal}.") from None
    except MemoryError:
        raise RaganError(f"{name}: reading it ran out of memory ({size:,}-byte file).") from None
    except RecursionError:  # not expected: nothing here recurses deeper than the limits above
        raise RaganError(f"{name}: not a StyleGAN2-ADA network pickle ragan can read: it nests too deeply.") from None


# ----------------------------------------------------------------------------------------------
# Constructor arguments, checked before any network is built
# ----------------------------------------------------------------------------------------------
_D_ARCHITECTURES = ("resnet", "orig", "skip")


def _get_int(path, where, kwargs, key, low, high, default=None, power_of_two=False) -> int:
    value = kwargs.get(key, default)
    if value is None and default is None:
        raise RaganError(f"{path}: the network's {where} has no {key!r}; it is not a StyleGAN2-ADA network.")
    if type(value) is not int or not low <= value <= high or (power_of_two and value & (value - 1)):
        kind = "a power of two " if power_of_two else "an integer "
        shown = value if type(value) is int else _shown(value)
        raise RaganError(
            f"{path}: the network's {where}{key}={shown} is out of range; "
            f"{kind}from {low} to {high} is allowed (checked before building anything)."
        )
    return value


def _kwargs(path, module, where: str, key: str | None = None) -> dict:
    """A module's constructor arguments (``key=None``) or one dict among them (``{}`` if absent)."""
    kwargs = module.init_kwargs if module is not None else {}
    value = kwargs if key is None else kwargs.get(key)
    if value is None:
        return {}
    if type(value) is not dict:
        raise RaganError(f"{path}: the network's {where}{key} is a {type(value).__name__}, not a dict.")
    return value


def _widths(resolution: int, base: int, top: int) -> list[int]:
    return [min(base // res, top) for res in (2**i for i in range(2, resolution.bit_length()))]


def network_config(path, data: dict) -> tuple[dict, dict]:
    """``(ragan StyleGAN2 config, shape)`` from a read pickle's constructor arguments, range-checked.

    Args:
        path: the file (for messages).
        data: what :func:`read_network_pickle` returned.

    Returns:
        The StyleGAN2Config values (latent_dim, w_dim, mapping_layers, channel_base, channel_max,
        conv_clamp, num_fp16_res, conditional, d_architecture, mbstd_group) and
        ``{"image_size", "channels", "num_classes"}``.

    Raises:
        RaganError: a missing or out-of-range argument, an unsupported architecture, or a
            generator larger than the weights in the file (one line, before anything is built).

    Example:
        >>> config, shape = network_config("ffhq.pkl", read_network_pickle("ffhq.pkl"))  # doctest: +SKIP
        >>> shape                                                                          # doctest: +SKIP
        {'image_size': 1024, 'channels': 3, 'num_classes': 0}
    """
    path = os.fspath(path)
    source = data.get("G_ema") or data.get("G")
    if source is None:
        raise RaganError(f"{path}: the pickle holds no generator (G or G_ema).")
    g = _kwargs(path, source, "G ")
    synthesis = _kwargs(path, source, "G ", "synthesis_kwargs")
    mapping = _kwargs(path, source, "G ", "mapping_kwargs")
    architecture = synthesis.get("architecture", "skip")
    if architecture != "skip":
        raise RaganError(
            f"{path}: the generator architecture {_shown(architecture)} is not supported "
            "(ragan's StyleGAN2 generator is the official default, 'skip')."
        )
    d_module = data.get("D")
    d = _kwargs(path, d_module, "D ")
    epilogue = _kwargs(path, d_module, "D ", "epilogue_kwargs")
    d_mapping = _kwargs(path, d_module, "D ", "mapping_kwargs")
    if _get_int(path, "D mapping_kwargs.", d_mapping, "num_layers", 0, 64, default=8) != 8:
        raise RaganError(f"{path}: a discriminator label mapping with other than 8 layers is not supported.")
    d_architecture = d.get("architecture", "resnet")
    if d_architecture not in _D_ARCHITECTURES:
        raise RaganError(
            f"{path}: the discriminator architecture {_shown(d_architecture)} is not one of "
            f"{', '.join(_D_ARCHITECTURES)}."
        )
    conv_clamp = synthesis.get("conv_clamp")
    if conv_clamp is not None and (
        type(conv_clamp) not in (int, float) or not 0 < conv_clamp <= 1e6 or conv_clamp != conv_clamp
    ):
        raise RaganError(
            f"{path}: the network's G synthesis_kwargs.conv_clamp={_shown(conv_clamp)} is not a positive "
            "number or None."
        )
    resolution = _get_int(path, "G ", g, "img_resolution", 4, 2048, power_of_two=True)
    group = epilogue.get("mbstd_group_size")
    config = {
        "latent_dim": _get_int(path, "G ", g, "z_dim", 1, 2048),
        "w_dim": _get_int(path, "G ", g, "w_dim", 1, 2048),
        "mapping_layers": _get_int(path, "G mapping_kwargs.", mapping, "num_layers", 1, 32, default=8),
        "channel_base": _get_int(
            path, "G synthesis_kwargs.", synthesis, "channel_base", resolution, 1 << 22, default=32768
        ),
        "channel_max": _get_int(path, "G synthesis_kwargs.", synthesis, "channel_max", 1, 2048, default=512),
        "conv_clamp": None if conv_clamp is None else float(conv_clamp),
        "num_fp16_res": _get_int(path, "G synthesis_kwargs.", synthesis, "num_fp16_res", 0, 11, default=0),
        "conditional": False,
        "d_architecture": d_architecture,
        "mbstd_group": 4,
    }
    if group is not None:
        config["mbstd_group"] = _get_int(path, "D epilogue_kwargs.", epilogue, "mbstd_group_size", 1, 64)
    classes = _get_int(path, "G ", g, "c_dim", 0, 2048, default=0)
    config["conditional"] = classes > 0
    shape = {
        "image_size": resolution,
        "channels": _get_int(path, "G ", g, "img_channels", 1, 4),
        "num_classes": classes,
    }
    _check_size_against_weights(path, config, shape, source)
    return config, shape


def _check_size_against_weights(path, config: dict, shape: dict, source: PersistentModule) -> None:
    """Refuse constructor arguments that describe a generator larger than the weights the file
    holds: what ragan then builds is bounded by the file, not by numbers written in it."""
    widths = _widths(shape["image_size"], config["channel_base"], config["channel_max"])
    w_dim = config["w_dim"]
    needed = config["latent_dim"] * w_dim + (config["mapping_layers"] - 1) * w_dim * w_dim
    needed += widths[0] * widths[0] * 9  # the 4x4 block's convolution
    needed += sum(9 * (a * b + b * b) for a, b in zip(widths, widths[1:]))
    held = sum(int(array.size) for array in source.tensors().values())
    if held < needed:
        raise RaganError(
            f"{path}: the generator's constructor arguments describe at least {needed:,} weights but the file "
            f"holds {held:,}; it is not a network ragan can rebuild."
        )
