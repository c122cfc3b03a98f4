"""TFRecord shards written without TensorFlow are the bytes TensorFlow writes, and read back."""

import numpy as np
import pytest

from ragan.data.records import crc32c, example_bytes, frame_record, masked_crc32c
from ragan.data.tfrecord import ShardWriter, encode_record


def _bitwise_crc32c(data: bytes) -> int:
    """The textbook bit-at-a-time CRC-32C, as an independent reference."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize("size", [0, 1, 9, 63, 64, 255, 256, 257, 513, 4099])
def test_crc32c_matches_the_bitwise_definition(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert crc32c(data) == _bitwise_crc32c(data)


def test_crc32c_known_values():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720, B.4: 32 bytes of zeros
    assert crc32c(b"\xff" * 32) == 0x62A8AB43


def test_records_are_the_bytes_tensorflow_writes(tmp_path):
    from ragan._tf import import_tf

    tf = import_tf()
    rng = np.random.default_rng(0)
    items = [
        (rng.integers(0, 256, (16, 16, 1), dtype=np.uint8), 1, 0),
        (rng.integers(0, 65536, (8, 8, 3), dtype=np.uint16), -1, 300),
        (rng.integers(0, 256, (128, 128, 1), dtype=np.uint8), 2**40, 2**31),
    ]
    path = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image, label, source_id in items:
            feature = tf.train.Feature
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "image": feature(
                            bytes_list=tf.train.BytesList(value=[image.astype(image.dtype.newbyteorder("<")).tobytes()])
                        ),
                        "label": feature(int64_list=tf.train.Int64List(value=[label])),
                        "source_id": feature(int64_list=tf.train.Int64List(value=[source_id])),
                    }
                )
            )
            writer.write(example.SerializeToString(deterministic=True))
    with ShardWriter(tmp_path / "ours.tfrecord") as ours:
        for image, label, source_id in items:
            ours.write(image, label, source_id)
    assert (tmp_path / "ours.tfrecord").read_bytes() == path.read_bytes()
    # And TensorFlow reads them, checksums verified.
    read = list(tf.data.TFRecordDataset(str(tmp_path / "ours.tfrecord")).as_numpy_iterator())
    assert len(read) == 3
    parsed = tf.train.Example.FromString(read[1])
    assert parsed.features.feature["label"].int64_list.value[0] == -1


def test_record_framing():
    record = frame_record(b"abc")
    assert record[:8] == (3).to_bytes(8, "little")
    assert int.from_bytes(record[8:12], "little") == masked_crc32c(record[:8])
    assert record[12:15] == b"abc"
    assert int.from_bytes(record[15:], "little") == masked_crc32c(b"abc")
    assert encode_record(np.zeros((2, 2, 1), np.uint8), 0, 0) == frame_record(example_bytes(bytes(4), 0, 0))
