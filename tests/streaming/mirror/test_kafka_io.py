"""The message contract: partitioning as Kafka's default partitioner does it, grouping, decoding, evolution."""
from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from kafka.partitioner.default import murmur2

from meterlake import schema
from streaming import kafka_io
from tests.streaming.mirror.mirrorhelp import RecordingProducer, day_of_reads, interval_reads, utc


@pytest.mark.parametrize("key, partitions, expected", [
    # Kafka's own murmur2 test vectors (UtilsTest): "21" -> -973932308, "foobar" -> -790332482,
    # "a-little-bit-long-string" -> -985981536, "abc" -> 479470107; partition = (hash & 0x7fffffff) % n
    (b"21", 6, 0), (b"foobar", 6, 0), (b"foobar", 12, 6), (b"a-little-bit-long-string", 12, 8), (b"abc", 6, 3),
])
def test_partition_is_kafkas_default_partitioner(key, partitions, expected):
    assert kafka_io.partition_for(key, partitions) == expected


def _register_reads(meter: str) -> pa.Table:
    batch = schema.build_reads(meter_point=meter, fuel="electricity", register_id="S", read_kind="register",
                               interval_start_utc=[utc(2024, 1, 10, 6, 0)], value=[12345.0], unit="kWh",
                               quality="actual", source_version=1)
    return pa.Table.from_batches([batch])


def test_every_message_holds_one_partitions_meters_keyed_by_its_first_row():
    # GIVEN 40 meters' interval reads for a day and one register read
    reads = pa.concat_tables([day_of_reads(f"MAC{m:06d}", date(2024, 1, 10)) for m in range(40)]
                             + [_register_reads("MAC000003")])
    producer = RecordingProducer()
    # WHEN published to 6 partitions with small messages
    out = kafka_io.publish_reads(producer, "reads", reads, 6, target_bytes=8_000)
    # THEN there are several messages, each with the meters of its own partition only
    assert out.messages == len(producer.sent) > 6
    decoded = []
    for sent in producer.sent:
        table = schema.from_ipc_bytes(sent.value)
        meters = table.column("meter_point").to_pylist()
        assert {(murmur2(m.encode()) & 0x7FFFFFFF) % 6 for m in meters} == {sent.partition}
        assert sent.key == meters[0].encode()
        decoded.append(kafka_io.decode(sent.value))
    # AND interval reads travel as sets, the register read as a row; nothing is lost or repeated
    names = sorted({schema.schema_name(schema.from_ipc_bytes(s.value).schema) for s in producer.sent})
    assert names == ["read", "set"]
    everything = pa.concat_tables(decoded)
    assert everything.num_rows == 40 * 48 + 1
    assert pc.sum(everything.column("value")).as_py() == pytest.approx(40 * 48 * 0.5 + 12345.0)


def test_a_set_message_decodes_to_one_row_per_present_value():
    reads = interval_reads("MAC000001", [utc(2024, 1, 10, 0, 0), utc(2024, 1, 10, 1, 0)], [0.25, 0.75])
    value = schema.to_ipc_bytes(schema.pack_table(reads))
    rows = kafka_io.decode(value)
    assert rows.schema.names == list(schema.READ_COLUMNS)
    assert rows.column("interval_start_utc").to_pylist() == [utc(2024, 1, 10, 0, 0), utc(2024, 1, 10, 1, 0)]
    assert rows.column("settlement_period").to_pylist() == [1, 3]
    assert rows.column("value").to_pylist() == [0.25, 0.75]


def _newer(table: pa.Table, extra: pa.Field, version: int = schema.SCHEMA_VERSION + 1) -> bytes:
    """``table`` as a message of a later schema version with one more column."""
    table = table.append_column(extra, pa.nulls(table.num_rows, extra.type))
    name = schema.schema_name(table.schema).encode()
    table = table.replace_schema_metadata({b"meterlake.schema": name, b"meterlake.schema_version": str(version)})
    return schema.to_ipc_bytes(table)


def test_a_later_version_with_an_added_optional_field_is_accepted():
    reads = interval_reads("MAC000001", [utc(2024, 1, 10, 0, 0)], [0.25])
    value = _newer(schema.pack_table(reads), pa.field("tariff", pa.string()))
    rows = kafka_io.decode(value)
    assert rows.schema.names == list(schema.READ_COLUMNS)
    assert rows.column("value").to_pylist() == [0.25]


@pytest.mark.parametrize("make, reason", [
    pytest.param(lambda t: _newer(t, pa.field("tariff", pa.string(), nullable=False), version=schema.SCHEMA_VERSION),
                 "required column 'tariff'", id="a required column added without a new version"),
    pytest.param(lambda t: schema.to_ipc_bytes(t.set_column(t.schema.get_field_index("value"), "value",
                                                            t.column("value").cast(pa.string()))),
                 "column 'value' is string", id="a column retyped"),
    pytest.param(lambda t: schema.to_ipc_bytes(t.drop_columns(["fuel"]).replace_schema_metadata(t.schema.metadata)),
                 "column 'fuel' is missing", id="a required column removed"),
    pytest.param(lambda t: b"not arrow at all", "not an Arrow IPC stream", id="not Arrow"),
    pytest.param(lambda t: schema.to_ipc_bytes(schema.quarantine_batch([{"source_file": "f", "reason": "x"}])),
                 "schema 'quarantine' is not a read or set table", id="another of our schemas"),
])
def test_an_incompatible_message_is_refused_with_its_reason(make, reason):
    reads = interval_reads("MAC000001", [utc(2024, 1, 10, 0, 0)], [0.25])
    with pytest.raises(kafka_io.IncompatibleMessage, match=reason):
        kafka_io.decode(make(reads))


@pytest.mark.parametrize("make", [
    pytest.param(lambda t: _newer(t, pa.field("tariff", pa.string(), nullable=False)), id="a required column added"),
    pytest.param(lambda t: _newer(t.drop_columns(["fuel"]), pa.field("tariff", pa.string())),
                 id="a required column removed"),
])
def test_a_later_version_this_one_cannot_read_asks_for_an_upgrade_instead_of_quarantine(make):
    reads = interval_reads("MAC000001", [utc(2024, 1, 10, 0, 0)], [0.25])
    later, this = schema.SCHEMA_VERSION + 1, schema.SCHEMA_VERSION
    with pytest.raises(kafka_io.UpgradeRequired, match=f"schema version {later} that version {this} cannot read"):
        kafka_io.decode(make(reads))


def test_the_store_decodes_with_the_same_rule():
    from streaming.store.consumer import message_table

    reads = interval_reads("MAC000001", [utc(2024, 1, 10, 0, 0)], [0.25])
    sets = schema.pack_table(reads)
    assert message_table(_newer(sets, pa.field("tariff", pa.string()))).equals(kafka_io.decode_table(
        _newer(sets, pa.field("tariff", pa.string())))[1])
    with pytest.raises(kafka_io.UpgradeRequired):
        message_table(_newer(sets, pa.field("tariff", pa.string(), nullable=False)))


def test_a_set_with_the_wrong_number_of_periods_for_its_day_is_refused():
    sets = schema.pack_table(interval_reads("MAC000001", [utc(2016, 10, 30, 0, 0)], [0.25]))
    assert sets.column("periods").to_pylist() == [50]
    wrong = sets.set_column(sets.schema.get_field_index("periods"), schema.SET_SCHEMA.field("periods"),
                            pa.array([48], pa.int8()))
    wrong = wrong.set_column(wrong.schema.get_field_index("values"), schema.SET_SCHEMA.field("values"),
                             pa.array([[0.25] + [None] * 47], pa.list_(pa.float64())))
    wrong = wrong.set_column(wrong.schema.get_field_index("qualities"), schema.SET_SCHEMA.field("qualities"),
                             pa.array([["actual"] + [None] * 47], pa.list_(pa.string())))
    with pytest.raises(kafka_io.IncompatibleMessage, match="2016-10-30 has 48 periods; the day has 50"):
        kafka_io.decode(schema.to_ipc_bytes(wrong))
