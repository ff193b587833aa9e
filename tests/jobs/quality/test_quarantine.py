"""Ingest's quarantine as data quality counts it: per meter-day where a record names both, and every record per file
and reason; read from the quarantine topic on the real broker, meter points pseudonymised."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from jobs.quality import quarantine
from meterlake import pseudonym

DAY = date(2024, 1, 10)


def _records(rows):
    return pa.Table.from_pylist([dict(zip(quarantine.COLUMNS, r, strict=True)) for r in rows],
                                schema=quarantine.empty().schema)


RECORDS = _records([("a.csv", "non_numeric_value", "M1", DAY), ("a.csv", "non_numeric_value", "M1", DAY),
                    ("a.csv", "bad_timestamp", "M1", None), ("a.csv", "bad_mpan_check_digit", None, None),
                    ("b.d0010", "non_numeric_value", "M2", DAY)])


def test_records_naming_a_meter_and_a_day_are_counted_per_meter_day():
    assert quarantine.per_meter_day(RECORDS).sort_by("meter_point").to_pylist() == [
        {"settlement_date": DAY, "meter_point": "M1", "ingest_quarantined_lines": 2},
        {"settlement_date": DAY, "meter_point": "M2", "ingest_quarantined_lines": 1}]


def test_every_record_is_counted_per_file_and_reason():
    assert quarantine.per_file(RECORDS).to_pylist() == [
        {"source_file": "a.csv", "reason": "bad_mpan_check_digit", "lines": 1, "meter_day_lines": 0},
        {"source_file": "a.csv", "reason": "bad_timestamp", "lines": 1, "meter_day_lines": 0},
        {"source_file": "a.csv", "reason": "non_numeric_value", "lines": 2, "meter_day_lines": 2},
        {"source_file": "b.d0010", "reason": "non_numeric_value", "lines": 1, "meter_day_lines": 1}]


def test_a_record_of_the_first_schema_version_counts_per_file_only():
    old = pa.table({"source_file": ["old.csv"], "source_line": [3], "field": ["value"], "reason": ["missing_value"],
                    "detail": ["value is empty"], "raw": ["..."]})
    assert quarantine.conform(old).to_pylist() == [
        {"source_file": "old.csv", "reason": "missing_value", "meter_point": None, "settlement_date": None}]


@pytest.mark.stack
def test_the_topic_is_read_whole_with_meter_points_pseudonymised(kafka_stack, tmp_path):
    from streaming.ingest.publish import ingest_paths
    from tests.streaming.stackhelp import isolated

    settings = isolated(kafka_stack, "qualityq")
    key = tmp_path / "lake.key"
    key.write_text("a key of the lake's pseudonyms, for this test only\n")
    settings = settings.model_copy(update={"lake": settings.lake.model_copy(update={"pseudonym_key_file": str(key)})})
    path = tmp_path / "hh.csv"
    path.write_text("meter_point,meter_serial,register_id,read_kind,interval_start_utc,value,unit,quality,"
                    "created_utc\n"
                    "1200023305967,E1,S,interval,2024-01-10T00:00:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z\n"
                    "1200023305967,E1,S,interval,2024-01-10T00:30:00Z,x,kWh,actual,2024-01-11T02:00:00Z\n"
                    "1200023305968,E1,S,interval,2024-01-10T01:00:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z\n")
    (result,) = ingest_paths([path], settings, now=datetime(2025, 1, 1, tzinfo=UTC))
    assert (result.reads, result.quarantined) == (1, 2)
    records = quarantine.read(settings).sort_by("reason").to_pylist()
    assert records == [
        {"source_file": "hh.csv", "reason": "bad_mpan_check_digit", "meter_point": None, "settlement_date": None},
        {"source_file": "hh.csv", "reason": "non_numeric_value",
         "meter_point": pseudonym.for_settings(settings).one("1200023305967"), "settlement_date": DAY}]
