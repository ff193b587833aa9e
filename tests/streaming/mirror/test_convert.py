"""Messages to lake rows: Kafka columns, settlement date and period stamped at write time, clock-change days."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from meterlake import schema
from meterlake.lake.schema import LAKE_COLUMNS
from meterlake.pseudonym import Pseudonymiser
from streaming import kafka_io
from streaming.ingest import validated_file
from streaming.mirror.convert import Message, split_by_date, to_table
from tests.streaming.mirror.mirrorhelp import RecordingProducer, day_of_reads, interval_reads, utc

PSEUDONYMS = Pseudonymiser(b"a test key of thirty-two bytes!!")


def _through_kafka(reads: pa.Table, partitions: int = 3) -> list[Message]:
    """``reads`` published by the contract, as the messages a consumer would get (offsets per partition)."""
    producer = RecordingProducer()
    kafka_io.publish_reads(producer, "meter-reads", reads, partitions)
    offsets = Counter()
    messages = []
    for sent in producer.sent:
        messages.append(Message(sent.topic, sent.partition, offsets[sent.partition], sent.value, 1_000))
        offsets[sent.partition] += 1
    return messages


def test_rows_carry_the_read_model_and_where_they_came_from():
    reads = interval_reads("MAC000001", [utc(2024, 1, 10, 0, 0), utc(2024, 1, 10, 0, 30)], [0.25, 0.5])
    message = Message("meter-reads", 4, 1234, schema.to_ipc_bytes(schema.pack_table(reads)), 1_000)
    table = to_table([message], PSEUDONYMS).table
    assert table.schema.names == list(LAKE_COLUMNS)
    assert table.select(["kafka_topic", "kafka_partition", "kafka_offset", "settlement_period", "value"]).to_pylist() \
        == [{"kafka_topic": "meter-reads", "kafka_partition": 4, "kafka_offset": 1234, "settlement_period": 1,
             "value": 0.25},
            {"kafka_topic": "meter-reads", "kafka_partition": 4, "kafka_offset": 1234, "settlement_period": 2,
             "value": 0.5}]


def test_settlement_date_and_period_are_stamped_from_the_read_time_whatever_the_message_says():
    # GIVEN a register read whose producer stamped the wrong settlement date and period
    batch = schema.build_reads(meter_point="1200023305967", fuel="electricity", register_id="S",
                               read_kind="register", interval_start_utc=[utc(2024, 7, 1, 23, 10)], value=[10.0],
                               unit="kWh", quality="actual", source_version=1)
    wrong = pa.Table.from_batches([batch])
    wrong = wrong.set_column(6, schema.READ_SCHEMA.field("settlement_date"), pa.array([date(2024, 7, 1)]))
    wrong = wrong.set_column(7, schema.READ_SCHEMA.field("settlement_period"), pa.array([48], pa.int8()))
    table = to_table([Message("meter-reads", 0, 0, schema.to_ipc_bytes(wrong))], PSEUDONYMS).table
    # THEN 23:10 UTC in July (00:10 BST) is in period 1 of 2 July
    assert table.column("settlement_date").to_pylist() == [date(2024, 7, 2)]
    assert table.column("settlement_period").to_pylist() == [1]


@pytest.mark.parametrize("day, periods", [
    pytest.param(date(2016, 10, 30), 50, id="autumn clock change"),
    pytest.param(date(2016, 3, 27), 46, id="spring clock change"),
    pytest.param(date(2016, 6, 1), 48, id="ordinary day"),
])
def test_a_clock_change_day_lands_with_all_its_periods(day, periods):
    # GIVEN a read in every half-hour of the local day, published by the contract
    messages = _through_kafka(pa.concat_tables([day_of_reads("MAC000001", day), day_of_reads("MAC000002", day)]))
    table = to_table(messages, PSEUDONYMS).table
    # THEN every row is on that settlement date, and each meter has periods 1..n once
    assert split_by_date(table)[0][0] == day and len(split_by_date(table)) == 1
    for meter in ("MAC000001", "MAC000002"):
        rows = table.filter(pa.compute.equal(table.column("meter_point"), PSEUDONYMS.one(meter)))
        assert sorted(rows.column("settlement_period").to_pylist()) == list(range(1, periods + 1))


def test_an_lcl_file_lands_on_the_right_settlement_periods(tmp_path):
    # GIVEN LCL rows (UTC period ENDS) around both clock changes
    text = """\
LCLid,tstp,energy(kWh/hh)
MAC000002,2013-10-26 23:30:00, 0.219
MAC000002,2013-10-27 01:00:00, 0.191
MAC000002,2013-10-28 00:00:00, 0.301
MAC000002,2014-03-30 00:30:00, 0.102
MAC000002,2014-03-30 23:00:00, 0.404
"""
    path = tmp_path / "MAC000002.csv"
    path.write_text(text)
    with validated_file(path, now=datetime(2025, 1, 1, tzinfo=UTC)) as validated:
        reads = validated.reads_table()
    # WHEN parsed, published and mirrored
    table = to_table(_through_kafka(reads), PSEUDONYMS).table
    got = sorted(zip(table.column("interval_start_utc").to_pylist(), table.column("settlement_date").to_pylist(),
                     table.column("settlement_period").to_pylist(), table.column("value").to_pylist(),
                     strict=True))
    # THEN each read starts 30 minutes before its timestamp: 50 periods on 27 Oct 2013, 46 on 30 Mar 2014
    assert got == [
        (utc(2013, 10, 26, 23, 0), date(2013, 10, 27), 1, 0.219),
        (utc(2013, 10, 27, 0, 30), date(2013, 10, 27), 4, 0.191),
        (utc(2013, 10, 27, 23, 30), date(2013, 10, 27), 50, 0.301),
        (utc(2014, 3, 30, 0, 0), date(2014, 3, 30), 1, 0.102),
        (utc(2014, 3, 30, 22, 30), date(2014, 3, 30), 46, 0.404),
    ]


def test_an_incompatible_message_becomes_a_quarantine_record_and_no_rows():
    good = Message("meter-reads", 0, 7, schema.to_ipc_bytes(interval_reads("MAC000001", [utc(2024, 1, 1)], [1.0])))
    bad = Message("meter-reads", 0, 8, b"\x00garbage")
    converted = to_table([good, bad], PSEUDONYMS)
    assert converted.table.column("kafka_offset").to_pylist() == [7]
    assert [(q["source_file"], q["reason"]) for q in converted.quarantine] == [
        ("kafka:meter-reads/0/8", "incompatible_message")]
    assert converted.quarantine[0]["detail"].startswith("not an Arrow IPC stream")


def test_a_batch_splits_into_one_table_per_settlement_date_in_date_order():
    reads = interval_reads("MAC000001", [utc(2024, 1, 11, 0, 0), utc(2024, 1, 10, 0, 0), utc(2024, 1, 11, 0, 30)],
                           [1.0, 2.0, 3.0])
    table = to_table([Message("t", 0, 0, schema.to_ipc_bytes(reads))], PSEUDONYMS).table
    parts = split_by_date(table)
    assert [(d, t.column("value").to_pylist()) for d, t in parts] == [
        (date(2024, 1, 10), [2.0]), (date(2024, 1, 11), [1.0, 3.0])]


def test_meter_points_serials_and_device_ids_land_as_pseudonyms():
    # GIVEN a device read and a set of interval reads of the same meter point
    device = pa.Table.from_batches([schema.build_reads(
        meter_point="1200023305967", meter_serial="21E5012345", fuel="electricity", read_kind="device",
        device_id="CAD-0042", interval_start_utc=[utc(2024, 1, 10, 0, 1)], value=[0.4], unit="kW",
        quality="actual", source_version=1)])
    interval = interval_reads("1200023305967", [utc(2024, 1, 10, 0, 0)], [0.25])
    messages = [Message("meter-devices", 0, 0, schema.to_ipc_bytes(device)),
                Message("meter-reads", 0, 0, schema.to_ipc_bytes(schema.pack_table(interval)))]
    rows = to_table(messages, PSEUDONYMS).table.select(["meter_point", "meter_serial", "device_id"]).to_pylist()
    # THEN the lake rows carry the keyed pseudonyms (HMAC-SHA256 under the test key), never the identifiers
    mp = "P36ed974adb6dcb432edaa98d"
    assert rows == [{"meter_point": mp, "meter_serial": "P640a70dff2e409f3eb60a24a",
                     "device_id": "P6fdae51d63c6884e89e50577"},
                    {"meter_point": mp, "meter_serial": None, "device_id": None}]


def test_a_buffered_set_message_counts_the_bytes_of_its_unpacked_rows():
    from streaming.mirror.convert import decode, lake_rows
    from tests.streaming.mirror.mirrorhelp import meter_days

    # GIVEN a message of 200 meter-days packed as sets
    value = schema.to_ipc_bytes(meter_days(100, 2, date(2024, 3, 30)))
    decoded = decode(Message("meter-reads", 0, 0, value), PSEUDONYMS)
    unpacked = lake_rows([decoded]).nbytes  # what the mirror holds when it writes the batch
    # THEN the buffer counts about what the rows take, not the packed sets (many times smaller)
    assert decoded.table.nbytes * 5 < unpacked
    assert 0.8 * unpacked <= decoded.nbytes <= 1.25 * unpacked
