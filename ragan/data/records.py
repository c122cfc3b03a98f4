"""TFRecord files without TensorFlow: the record framing, CRC-32C and the ``tf.train.Example`` bytes.

``prepare`` writes its shards with this module, so neither the main process nor the decoding
workers import TensorFlow (seconds of CPU at start-up). The bytes are the ones TensorFlow writes
(``tf.io.TFRecordWriter`` and ``Example.SerializeToString(deterministic=True)``);
``tests/test_records.py`` checks that against TensorFlow itself.

A TFRecord file is a sequence of records, each::

    uint64 length (little-endian) | uint32 masked CRC-32C of the length | data | uint32 masked CRC-32C of data

CRC-32C (Castagnoli) has no implementation in the standard library. Here it runs on NumPy: CRC
is linear over GF(2), so the data is cut into 256-byte blocks, each block's CRC is the XOR of
one table entry per byte (a table per byte position), and the blocks are combined pairwise with
the "append n zero bytes" operator. That gives roughly 100 MB/s, about a millisecond for a
64 KiB record, computed in the decoding workers.

This module imports neither TensorFlow nor anything from ragan that does.

Example:
    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    >>> record = example_bytes(b"\\x00" * 4, label=1, source_id=7)
    >>> len(frame_record(record)) == len(record) + 16
    True
"""

from __future__ import annotations

import functools
import struct

import numpy as np

__all__ = ["crc32c", "masked_crc32c", "frame_record", "example_bytes"]

_POLYNOMIAL = 0x82F63B78  # CRC-32C, reflected
_MASK_DELTA = 0xA282EAD8
# Below this many bytes a plain Python loop beats NumPy's per-call overhead.
_SMALL = 64
# Bytes per block of the parallel CRC (a power of two); the blocks are the NumPy lanes.
_BLOCK = 256


def _byte_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLYNOMIAL), table >> 1).astype(np.uint32)
    return table


_TABLE = _byte_table()
_TABLE_LIST = [int(value) for value in _TABLE]


def _apply_columns(columns: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Apply the GF(2)-linear map with these 32 column images to each of ``values`` (uint32)."""
    bits = (values[:, None] >> np.arange(32, dtype=np.uint32)) & np.uint32(1)
    return np.bitwise_xor.reduce(np.where(bits.astype(bool), columns[None, :], np.uint32(0)), axis=1)


class _ZeroOperators:
    """The maps "append 2**e zero bytes to a CRC register", as four byte tables each, built lazily."""

    def __init__(self):
        basis = np.uint32(1) << np.arange(32, dtype=np.uint32)
        one_byte = _TABLE[basis & np.uint32(0xFF)] ^ (basis >> np.uint32(8))
        self._columns = [one_byte]
        self._tables: dict[int, np.ndarray] = {}

    def columns(self, exponent: int) -> np.ndarray:
        while len(self._columns) <= exponent:
            previous = self._columns[-1]
            self._columns.append(_apply_columns(previous, previous))
        return self._columns[exponent]

    def tables(self, exponent: int) -> np.ndarray:
        """``(4, 256)``: row p maps byte p of the register."""
        tables = self._tables.get(exponent)
        if tables is None:
            columns = self.columns(exponent)
            values = np.arange(256, dtype=np.uint32)
            tables = np.stack([_apply_columns(columns, values << np.uint32(8 * p)) for p in range(4)])
            self._tables[exponent] = tables
        return tables

    def shift(self, registers: np.ndarray, exponent: int) -> np.ndarray:
        tables = self.tables(exponent)
        return (
            tables[0][registers & 0xFF]
            ^ tables[1][(registers >> 8) & 0xFF]
            ^ tables[2][(registers >> 16) & 0xFF]
            ^ tables[3][registers >> 24]
        )


_ZEROS = _ZeroOperators()


def _raw_small(register: int, data) -> int:
    table = _TABLE_LIST
    for byte in data:
        register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


def _position_tables() -> np.ndarray:
    """``(_BLOCK * 256,)``: entry ``p * 256 + v`` is the register after byte ``v`` at position ``p`` of
    a block (then ``_BLOCK - 1 - p`` more bytes), from a register of 0; a block's CRC is the XOR of
    its bytes' entries."""
    tables = np.empty((_BLOCK, 256), dtype=np.uint32)
    current = _TABLE.copy()
    for position in range(_BLOCK - 1, -1, -1):
        tables[position] = current
        current = _TABLE[current & 0xFF] ^ (current >> 8)
    return tables.ravel()


_POSITION_TABLES = _position_tables()
_POSITION_OFFSETS = np.arange(_BLOCK, dtype=np.uint32) * np.uint32(256)


def _raw_parallel(data) -> int:
    """CRC register (start 0, no final xor) of ``data``, from blocks computed side by side."""
    size = len(data)
    lanes = -(-size // _BLOCK)
    padded = np.zeros(lanes * _BLOCK, dtype=np.uint8)
    # Zero bytes in front leave a register that starts at 0 unchanged.
    padded[lanes * _BLOCK - size :] = np.frombuffer(data, dtype=np.uint8)
    index = padded.reshape(lanes, _BLOCK).astype(np.uint32)
    index += _POSITION_OFFSETS
    registers = np.bitwise_xor.reduce(_POSITION_TABLES.take(index), axis=1)
    exponent = _BLOCK.bit_length() - 1
    while len(registers) > 1:  # CRC(A + B) = shift(CRC(A), len(B)) ^ CRC(B)
        if len(registers) & 1:  # a block of zeros in front changes nothing
            registers = np.concatenate((np.zeros(1, dtype=np.uint32), registers))
        registers = _ZEROS.shift(registers[0::2], exponent) ^ registers[1::2]
        exponent += 1
    return int(registers[0])


@functools.lru_cache(maxsize=64)
def _shift_by(register: int, length: int) -> int:
    """The register after ``length`` zero bytes (records of a shard mostly share one length)."""
    value = np.array([register], dtype=np.uint32)
    exponent = 0
    while length:
        if length & 1:
            value = _ZEROS.shift(value, exponent)
        length >>= 1
        exponent += 1
    return int(value[0])


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as TFRecord files use it.

    Example:
        >>> crc32c(b"")
        0
        >>> hex(crc32c(b"123456789"))
        '0xe3069283'
    """
    data = memoryview(data).cast("B")
    if len(data) < _SMALL:
        return _raw_small(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    # Start value 0xFFFFFFFF: by linearity, the zeros-shifted start value XOR the CRC from 0.
    return _shift_by(0xFFFFFFFF, len(data)) ^ _raw_parallel(data) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC that TFRecord stores (rotate right by 15 bits, add a constant)."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, the data's masked CRC."""
    length = struct.pack("<Q", len(data))
    return b"".join(
        (length, struct.pack("<I", _masked_length_crc(length)), data, struct.pack("<I", masked_crc32c(data)))
    )


@functools.lru_cache(maxsize=64)
def _masked_length_crc(length: bytes) -> int:
    return masked_crc32c(length)


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values take ten bytes, as in protobuf
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _header(tag: int, length: int) -> bytes:
    return bytes((tag,)) + _varint(length)


def _length_delimited(tag: int, payload: bytes) -> bytes:
    return _header(tag, len(payload)) + payload


def _int64_feature(value: int) -> bytes:
    # Feature.int64_list (field 3) -> Int64List.value (field 1, packed).
    return _length_delimited(0x1A, _length_delimited(0x0A, _varint(value)))


def _entry(key: str, feature: bytes) -> bytes:
    # A map entry of Features.feature (field 1): key (field 1), Feature (field 2).
    return _length_delimited(0x0A, _length_delimited(0x0A, key.encode()) + _length_delimited(0x12, feature))


def example_bytes(image: bytes, label: int, source_id: int) -> bytes:
    """A serialized ``tf.train.Example`` with features ``image`` (bytes), ``label`` and ``source_id``.

    The same bytes as TensorFlow's ``SerializeToString(deterministic=True)``: map entries in key
    order (``image``, ``label``, ``source_id``), each a key (field 1) and a ``Feature`` (field 2).
    The image bytes are copied once.

    Example:
        >>> example_bytes(b"", 0, 0)[:2]
        b'\\n3'
    """
    image = memoryview(image).cast("B")
    # Feature.bytes_list (field 1) -> BytesList.value (field 1) -> the image bytes.
    bytes_list = _header(0x0A, len(image))
    feature_header = _header(0x0A, len(bytes_list) + len(image))
    feature_length = len(feature_header) + len(bytes_list) + len(image)
    key = _length_delimited(0x0A, b"image")
    value_header = _header(0x12, feature_length)
    entry_header = _header(0x0A, len(key) + len(value_header) + feature_length)
    rest = _entry("label", _int64_feature(int(label))) + _entry("source_id", _int64_feature(int(source_id)))
    features_length = len(entry_header) + len(key) + len(value_header) + feature_length + len(rest)
    return b"".join(
        (_header(0x0A, features_length), entry_header, key, value_header, feature_header, bytes_list, image, rest)
    )
