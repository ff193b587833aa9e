"""The read model: the column contract, versions and TimeUUIDs, event stream sets, Arrow IPC round trips."""
from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from meterlake import schema


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_read_columns_are_the_public_contract():
    assert schema.READ_COLUMNS == (
        "meter_point", "meter_serial", "fuel", "register_id", "read_kind", "interval_start_utc",
        "settlement_date", "settlement_period", "value", "unit", "quality", "source_file", "source_line",
        "device_id", "source_version", "file_id", "batch_id",
    )
    assert schema.READ_SCHEMA.field("interval_start_utc").type == pa.timestamp("us", tz="UTC")
    assert schema.READ_SCHEMA.field("settlement_date").type == pa.date32()
    assert schema.READ_SCHEMA.field("settlement_period").type == pa.int8()
    assert schema.QUARANTINE_SCHEMA.names == [
        "source_file", "source_line", "field", "reason", "detail", "raw", "meter_point", "settlement_date"]
    assert schema.READ_SCHEMA.metadata[b"meterlake.schema_version"] == b"2"


def test_source_version_is_the_creation_instant_in_microseconds_plus_the_sequence():
    # 2016-03-02T15:31:51Z is 1456932711 s after the epoch
    assert schema.source_version(utc("2016-03-02T15:31:51"), 475656) == 1_456_932_711_475_656
    with pytest.raises(ValueError):
        schema.source_version(utc("2016-03-02T15:31:51"), 1_000_000)
    with pytest.raises(ValueError):
        schema.source_version(datetime(2016, 3, 2), 0)


def test_time_uuid_has_the_version_1_layout():
    # Cassandra's minTimeuuid('1970-01-01 00:00:00+0000') is this UUID
    got = schema.time_uuid(0, node=0x808080808080, clock_seq=0x0080)
    assert str(got) == "13814000-1dd2-11b2-8080-808080808080"


def test_file_and_batch_ids_are_deterministic_timeuuids_of_the_source():
    created = schema.epoch_us(utc("2016-03-02T15:31:51"))
    digest = hashlib.sha256(b"ZHV|...").digest()
    other = hashlib.sha256(b"ZHV|..!").digest()
    fid = schema.file_id(created, digest)
    assert fid == schema.file_id(created, digest)
    assert fid != schema.file_id(created, other)
    assert uuid.UUID(fid).version == 1
    assert schema.uuid_time(fid) == utc("2016-03-02T15:31:51")
    batches = [schema.batch_id(created, digest, i) for i in range(3)]
    assert len({fid, *batches}) == 4
    assert [uuid.UUID(b).time for b in batches] == sorted(uuid.UUID(b).time for b in batches)


def test_build_reads_locates_each_read_in_the_settlement_calendar():
    # GIVEN interval starts on the autumn clock change 2013-10-27 (50 periods; starts 2013-10-26T23:00Z)
    batch = schema.build_reads(
        meter_point="MAC000002", fuel="electricity", register_id="S", read_kind="interval",
        interval_start_utc=[utc("2013-10-26T23:00"), utc("2013-10-27T01:30"), utc("2013-10-27T23:30")],
        value=[0.1, 0.2, 0.3], unit="kWh", quality="actual", source_file="f.csv", source_line=[2, 3, 4],
        source_version=7,
    )
    # THEN dates and periods are those of the calendar, written out
    assert batch.column("settlement_date").to_pylist() == [date(2013, 10, 27)] * 3
    assert batch.column("settlement_period").to_pylist() == [1, 6, 50]
    assert batch.column("device_id").null_count == 3
    schema.validate_reads(batch)


def test_validate_reads_refuses_nulls_in_required_columns():
    batch = schema.build_reads(meter_point="X", fuel="electricity", read_kind="interval",
                               interval_start_utc=[0], value=[1.0], unit="kWh", quality="actual")
    with pytest.raises(ValueError, match="source_version"):
        schema.validate_reads(batch)


def _interval_reads() -> pa.Table:
    # One meter, two registers (Economy 7) on 2013-10-27 (50 periods), one other day, two versions of one day.
    rows = [
        ("1200023305967", "S", "2013-10-26T23:00", 0.5, "actual", 100),
        ("1200023305967", "S", "2013-10-27T23:30", 0.7, "estimated", 100),
        ("1200023305967", "S", "2013-10-27T00:30", 0.6, "actual", 100),
        ("1900005281720", "NT", "2013-10-26T23:30", 1.5, "actual", 100),
        ("1900005281720", "DY", "2013-10-27T12:00", 0.25, "actual", 100),
        ("1900005281720", "DY", "2013-10-27T12:00", 0.35, "actual", 200),
        ("1200023305967", "S", "2013-10-28T00:00", 0.8, "customer", 100),
    ]
    batch = schema.build_reads(
        meter_point=[r[0] for r in rows], meter_serial="M1", fuel="electricity",
        register_id=[r[1] for r in rows], read_kind="interval",
        interval_start_utc=[utc(r[2]) for r in rows], value=[r[3] for r in rows], unit="kWh",
        quality=[r[4] for r in rows], source_file="hh.csv", source_version=[r[5] for r in rows],
        file_id="f", batch_id="b",
    )
    return pa.Table.from_batches([batch])


def test_pack_puts_one_meter_register_day_and_version_in_one_set_of_the_days_length():
    sets = {(s["meter_point"], s["register_id"], s["settlement_date"], s["source_version"]): s
            for s in schema.pack(_interval_reads())}
    assert sorted(sets) == [
        ("1200023305967", "S", date(2013, 10, 27), 100),
        ("1200023305967", "S", date(2013, 10, 28), 100),
        ("1900005281720", "DY", date(2013, 10, 27), 100),
        ("1900005281720", "DY", date(2013, 10, 27), 200),
        ("1900005281720", "NT", date(2013, 10, 27), 100),
    ]
    autumn = sets[("1200023305967", "S", date(2013, 10, 27), 100)]
    assert autumn["periods"] == 50
    # 23:00Z is period 1, 00:30Z period 4, 23:30Z period 50
    assert autumn["values"] == [0.5, None, None, 0.6] + [None] * 45 + [0.7]
    assert autumn["qualities"] == ["actual", None, None, "actual"] + [None] * 45 + ["estimated"]
    assert sets[("1200023305967", "S", date(2013, 10, 28), 100)]["periods"] == 48
    # 12:00Z is 13 hours after the day's start: period 27
    assert sets[("1900005281720", "DY", date(2013, 10, 27), 200)]["values"][26] == 0.35


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(c, "ascending") for c in ("meter_point", "register_id", "source_version",
                                                      "interval_start_utc")])


def test_unpack_gives_back_the_packed_reads_without_source_lines():
    reads = _interval_reads()
    back = schema.unpack(schema.pack_table(reads))
    assert back.schema == schema.READ_SCHEMA
    assert _sorted(back).equals(_sorted(reads))


def test_unpack_gives_each_read_its_own_sets_values_whether_a_column_varies_is_constant_or_null():
    # GIVEN two sets that differ in meter and source version, share fuel and unit, and carry no serial
    sets = pa.Table.from_pylist([
        {"meter_point": "A", "meter_serial": None, "fuel": "electricity", "register_id": "S", "unit": "kWh",
         "settlement_date": date(2024, 6, 1), "source_version": 1, "periods": 48, "values": [0.5] * 48,
         "qualities": ["actual"] * 48, "source_file": "f1", "file_id": None, "batch_id": None},
        {"meter_point": "B", "meter_serial": None, "fuel": "electricity", "register_id": None, "unit": "kWh",
         "settlement_date": date(2024, 6, 2), "source_version": 2, "periods": 48, "values": [1.0] * 48,
         "qualities": ["estimated"] * 48, "source_file": "f1", "file_id": None, "batch_id": None},
    ], schema=schema.SET_SCHEMA)
    # WHEN they are unpacked
    reads = schema.unpack(sets)
    # THEN every read carries its set's values, and the shared and missing ones are the same on every read
    assert reads.num_rows == 96
    assert reads.column("meter_point").to_pylist() == ["A"] * 48 + ["B"] * 48
    assert reads.column("source_version").to_pylist() == [1] * 48 + [2] * 48
    assert reads.column("register_id").to_pylist() == ["S"] * 48 + [None] * 48
    assert reads.column("fuel").to_pylist() == ["electricity"] * 96
    assert reads.column("meter_serial").to_pylist() == [None] * 96
    assert reads.schema == schema.READ_SCHEMA


def test_unpack_accepts_plain_records():
    reads = _interval_reads()
    assert _sorted(schema.unpack(schema.pack(reads))).equals(_sorted(reads))


def test_pack_refuses_two_reads_of_one_period_and_non_interval_reads():
    reads = _interval_reads()
    with pytest.raises(ValueError, match="same set and period"):
        schema.pack_table(pa.concat_tables([reads, reads.slice(0, 1)]))
    register = schema.build_reads(meter_point="1200023305967", fuel="electricity", read_kind="register",
                                  interval_start_utc=[0], value=[1.0], unit="kWh", quality="actual",
                                  source_version=1)
    with pytest.raises(ValueError, match="only interval reads"):
        schema.pack_table(register)


def test_pack_of_nothing_is_an_empty_set_table():
    assert schema.pack_table(schema.empty_reads()).schema == schema.SET_SCHEMA
    assert schema.unpack(schema.SET_SCHEMA.empty_table()).num_rows == 0


def test_ipc_round_trip_of_sets_and_reads():
    reads = _interval_reads()
    sets = schema.pack_table(reads)
    message = schema.to_ipc_bytes(sets)
    back = schema.from_ipc_bytes(message)
    assert back.equals(sets)
    assert schema.schema_name(back.schema) == "set"
    assert schema.from_ipc_bytes(schema.to_ipc_bytes(reads)).equals(reads)


def test_ipc_refuses_a_newer_schema_and_foreign_tables():
    newer = _interval_reads().replace_schema_metadata({b"meterlake.schema_version": b"3",
                                                        b"meterlake.schema": b"read"})
    with pytest.raises(ValueError, match="schema version 3"):
        schema.from_ipc_bytes(schema.to_ipc_bytes(newer))
    with pytest.raises(ValueError, match="not a meterlake schema"):
        schema.to_ipc_bytes(pa.table({"a": [1]}))
