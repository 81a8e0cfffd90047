"""TFRecord files written without TensorFlow read back with TensorFlow, and vice versa."""

from __future__ import annotations

import pytest

from retrain.adapters.streaming.records import CorruptRecordError, RecordWriter, read_records

tf = pytest.importorskip("tensorflow")


def test_tensorflow_reads_what_the_writer_wrote(tmp_path):
    records = [bytes([i % 251]) * (i % 700) for i in range(3000)]
    path = str(tmp_path / "Split-train" / "data_tfrecord-00000-of-00001.gz")
    writer = RecordWriter(path)
    writer.write_batch(records[:1000])
    writer.write_batch(records[1000:])
    assert not (tmp_path / "Split-train" / "data_tfrecord-00000-of-00001.gz").exists()
    writer.close()
    read = [r.numpy() for r in tf.data.TFRecordDataset([path], compression_type="GZIP")]
    assert read == records and writer.records == 3000
    assert list(tmp_path.joinpath("Split-train").iterdir()) == [tmp_path / "Split-train" /
                                                               "data_tfrecord-00000-of-00001.gz"]


def test_reader_reads_tensorflows_files_and_refuses_corrupt_ones(tmp_path):
    path = str(tmp_path / "tf.tfrecord")
    records = [f"record {i}".encode() * (i % 5) for i in range(500)]
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    assert list(read_records(path)) == records
    data = bytearray(open(path, "rb").read())
    data[40] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(CorruptRecordError, match="checksum"):
        list(read_records(path))


def test_an_aborted_writer_leaves_nothing(tmp_path):
    writer = RecordWriter(str(tmp_path / "x.gz"))
    writer.write_batch([b"a", b"b"])
    writer.abort()
    assert list(tmp_path.iterdir()) == []
