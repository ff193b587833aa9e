"""When the mirror writes a partition's batch: rows, bytes, record time, idle time, and the memory bound."""
from __future__ import annotations

import pyarrow as pa
import pytest

from meterlake.config import Mirror as MirrorOptions
from streaming.mirror.consumer import _Batch, flush_due, intent, parse_intent, rotation_due
from streaming.mirror.convert import Decoded, Message

OPTIONS = MirrorOptions(max_file_rows=100, max_file_bytes=10_000, rotate_record_s=60, idle_flush_s=5,
                        max_buffer_bytes=20_000)


def batch(rows: int, *, nbytes: int = 0, first_ms: int = 0, last_ms: int = 0, arrived: float = 0.0) -> _Batch:
    b = _Batch()
    message = Message("t", 0, 10, b"", first_ms)
    decoded = Decoded(message, "read", pa.table({"x": list(range(rows))}), rows)
    decoded.__dict__["nbytes"] = 0  # a stand-in table: its lake size is set on the batch below, not measured
    b.add(message, decoded, arrived)
    b.last_time_ms = last_ms
    b.nbytes = nbytes
    return b


@pytest.mark.parametrize("b, reason", [
    pytest.param(batch(99, nbytes=9_999, last_ms=59_999), None, id="under every limit"),
    pytest.param(batch(100), "rows", id="rows"),
    pytest.param(batch(1, nbytes=10_000), "bytes", id="bytes"),
    pytest.param(batch(1, first_ms=1_000, last_ms=61_000), "record_time", id="a minute of record time"),
])
def test_a_batch_rotates_at_its_limits(b, reason):
    assert rotation_due(b, OPTIONS) == reason


def test_idle_batches_and_then_the_largest_are_written_between_polls():
    batches = {"quiet": batch(1, nbytes=100, arrived=0.0), "big": batch(1, nbytes=15_000, arrived=9.0),
               "small": batch(1, nbytes=6_000, arrived=9.0), "empty": _Batch()}
    # at t=10 the quiet one is idle; together they hold 21,100 > 20,000 bytes: the largest goes too
    assert flush_due(batches, OPTIONS, now=10.0) == ["quiet", "big"]
    assert flush_due({"small": batches["small"]}, OPTIONS, now=10.0) == []
    # batches still being written count too: 6,000 held + 15,000 being written > 20,000
    assert flush_due({"small": batches["small"]}, OPTIONS, now=10.0, in_flight_bytes=15_000) == ["small"]


def test_an_intent_names_the_batch_at_the_committed_offset_only():
    assert intent(120, 180) == "mirror:120-180"
    assert parse_intent("mirror:120-180", 120) == 180
    assert parse_intent("mirror:120-180", 181) is None  # the batch was finished and the next one committed
    assert parse_intent("", 120) is None
    assert parse_intent("someone else's metadata", 120) is None
