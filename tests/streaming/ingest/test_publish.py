"""Publishing on the real Kafka: a file is visible to read_committed consumers whole or not at all."""
from __future__ import annotations

import pytest

from meterlake import clients, schema
from streaming import kafka_io
from streaming.ingest import FileRejected, validated_file
from streaming.ingest.publish import publish, publish_rejection, transactional_id, transactional_producer
from tests.streaming.ingest.conftest import HH_HEADER, NOW
from tests.streaming.stackhelp import consume, isolated

pytestmark = pytest.mark.stack

# Two meters, 2024-06-01 (48 periods, BST: the day starts 2024-05-31T23:00Z), and one bad line.
METERS = ("1200023305967", "1012345678903")


def _day_lines(meter: str, value: str) -> list[str]:
    lines = []
    for p in range(48):
        hour, half = divmod(23 * 60 + 30 * p, 60)
        day = "2024-05-31" if hour < 24 else "2024-06-01"
        lines.append(f"{meter},E1,S,interval,{day}T{hour % 24:02d}:{half:02d}:00Z,{value},kWh,actual,"
                     "2024-06-02T02:00:00Z")
    return lines


@pytest.fixture
def hh_file(write):
    lines = [HH_HEADER, *_day_lines(METERS[0], "0.250"), *_day_lines(METERS[1], "0.500"),
             "1200023305968,E1,S,interval,2024-06-01T10:00:00Z,0.1,kWh,actual,2024-06-02T02:00:00Z"]
    return write("HH_20240601.csv", "\n".join(lines) + "\n")


@pytest.fixture
def settings(kafka_stack):
    s = isolated(kafka_stack, "publish")
    clients.ensure_topics(s)
    return s


def test_an_accepted_file_is_published_whole_reads_and_quarantine(settings, hh_file):
    with validated_file(hh_file, now=NOW, batch_rows=48) as validated:
        sent = publish(validated, settings)
    assert (sent.rows, sent.quarantine_rows) == (2, 1)  # two sets (meter-days), one quarantined line
    reads = [kafka_io.decode(r.value) for r in consume(settings, settings.kafka.reads_topic)]
    values = sorted((r["meter_point"], r["value"]) for t in reads for r in t.to_pylist())
    assert values == [(METERS[1], 0.5)] * 48 + [(METERS[0], 0.25)] * 48
    assert {r["source_file"] for t in reads for r in t.to_pylist()} == {"HH_20240601.csv"}
    problems = [schema.from_ipc_bytes(r.value).to_pylist() for r in consume(settings, settings.kafka.quarantine_topic)]
    assert [(p["source_file"], p["source_line"], p["reason"]) for batch in problems for p in batch] == [
        ("HH_20240601.csv", 98, "bad_mpan_check_digit")]


class _FailsAfterFirstBatch:
    """A validated file whose second reads batch cannot be produced (a disk error while reading the spool)."""

    def __init__(self, validated, producer):
        self.result, self.digest = validated.result, validated.digest
        self._validated, self._producer = validated, producer

    def reads(self):
        for n, batch in enumerate(self._validated.reads()):
            if n == 1:
                self._producer.flush()  # the first batch really is on the broker, inside the open transaction
                raise OSError("spool unreadable")
            yield batch

    def quarantine(self):
        return self._validated.quarantine()


def test_a_failure_mid_file_aborts_so_read_committed_consumers_see_nothing(settings, hh_file):
    with validated_file(hh_file, now=NOW, batch_rows=48) as validated:
        producer = transactional_producer(settings, transactional_id(validated.digest))
        try:
            with pytest.raises(OSError, match="spool unreadable"):
                publish(_FailsAfterFirstBatch(validated, producer), settings, producer)
        finally:
            producer.close()
    assert consume(settings, settings.kafka.reads_topic) == []
    assert len(consume(settings, settings.kafka.reads_topic, committed=False)) >= 1  # sent, then aborted


def test_a_lost_claim_before_commit_aborts(settings, hh_file):
    def lost():
        raise RuntimeError("another worker holds the claim")

    with validated_file(hh_file, now=NOW, batch_rows=48) as validated:
        with pytest.raises(RuntimeError, match="another worker"):
            publish(validated, settings, before_commit=lost)
    assert consume(settings, settings.kafka.reads_topic) == []
    assert consume(settings, settings.kafka.quarantine_topic) == []


def test_a_rejected_file_publishes_its_reason_and_none_of_its_reads(settings, write):
    path = write("HH_cut.csv", HH_HEADER + "\n" + "\n".join(_day_lines(METERS[0], "0.250"))[:-5])
    with pytest.raises(FileRejected) as rejected, validated_file(path, now=NOW):
        pass
    publish_rejection(rejected.value.result, settings, path.name)
    assert consume(settings, settings.kafka.reads_topic) == []
    problems = [p for r in consume(settings, settings.kafka.quarantine_topic)
                for p in schema.from_ipc_bytes(r.value).to_pylist()]
    assert [(p["source_file"], p["source_line"], p["reason"]) for p in problems] == [
        ("HH_cut.csv", None, "truncated_file")]
