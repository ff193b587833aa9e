"""D0010: field positions, UK clock time to UTC, qualities, versions, and the public sample flow."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from streaming.ingest import ingest_file, validated_file
from tests.streaming.ingest.conftest import NOW

# 12 lines, 10 groups; created 2024-06-02 06:30 UK time (BST) = 05:30Z; file identifier 42
FLOW = """\
ZHV|0000000042|D0010002|D|UDMS|X|MRCY|20240602063000||||OPER|
026|1200023305967|V|
028|F75A 00802|R|
030|S|20240601000000|56311.0|||T|N|
026|1900005281720|V|
028|36933604|C|
030|DY|20240601000000|80598.0|||T|N|
030|NT|20240601000000|15549.0|||F|N|
026|2200031930792|F|
028|S85D24767|D|
030|01|20240115000000|20231.0|||T|N|
ZPT|0000000042|10||3|20240602063500|
"""

COLUMNS = ["meter_point", "meter_serial", "register_id", "read_kind", "interval_start_utc", "settlement_date",
           "settlement_period", "value", "unit", "quality", "source_line", "source_version"]


def test_register_reads_of_a_small_flow(write):
    path = write("DTC0000000042D0010.uff", FLOW)
    with validated_file(path, now=NOW) as validated:
        rows = validated.reads_table().select(COLUMNS).to_pylist()
        result = validated.result
    version = 1_717_306_200_000_000 + 42  # 2024-06-02T05:30:00Z in microseconds, plus the file identifier
    june_midnight = datetime(2024, 5, 31, 23, tzinfo=UTC)  # 2024-06-01 00:00 BST
    assert [tuple(r.values()) for r in rows] == [
        ("1200023305967", "F75A 00802", "S", "register", june_midnight, date(2024, 6, 1), 1, 56311.0, "kWh",
         "actual", 4, version),
        ("1900005281720", "36933604", "DY", "register", june_midnight, date(2024, 6, 1), 1, 80598.0, "kWh",
         "customer", 7, version),
        ("1900005281720", "36933604", "NT", "register", june_midnight, date(2024, 6, 1), 1, 15549.0, "kWh",
         "suspect", 8, version),
        ("2200031930792", "S85D24767", "01", "register", datetime(2024, 1, 15, tzinfo=UTC), date(2024, 1, 15),
         1, 20231.0, "kWh", "suspect", 11, version),
    ]
    assert (result.lines, result.reads, result.quarantined, result.status) == (12, 4, 0, "accepted")
    assert result.source_version == version


@pytest.mark.parametrize("reading_type, quality", [
    ("R", "actual"), ("C", "customer"), ("D", "estimated"), ("O", "estimated"), ("W", "withdrawn"),
    ("F", "actual"),
])
def test_quality_follows_the_reading_type(write, reading_type, quality):
    path = write("a.uff", FLOW.replace("028|F75A 00802|R|", f"028|F75A 00802|{reading_type}|"))
    with validated_file(path, now=NOW) as validated:
        assert validated.reads_table().column("quality")[0].as_py() == quality


def test_a_meter_exchange_keeps_the_old_meters_final_and_the_new_meters_initial_read(write):
    # GIVEN one MPAN with two meters read at the same instant on the same register (an exchange)
    flow = """\
ZHV|0000000001|D0010002|D|UDMS|X|MRCY|20240602063000||||OPER|
026|1200023305967|V|
028|E00000001|F|
030|S|20240601000000|56311.0|||T|N|
028|N00000001|I|
030|S|20240601000000|0.0|||T|N|
ZPT|0000000001|5||1|20240602063500|
"""
    path = write("a.uff", flow)
    with validated_file(path, now=NOW) as validated:
        reads = validated.reads_table()
    # THEN both are reads (they differ by serial), not duplicates
    assert reads.column("meter_serial").to_pylist() == ["E00000001", "N00000001"]
    assert reads.column("value").to_pylist() == [56311.0, 0.0]


def test_every_read_under_a_bad_mpan_is_quarantined_with_the_mpans_reason(write):
    path = write("a.uff", FLOW.replace("026|1900005281720|V|", "026|1900005281721|V|"))
    with validated_file(path, now=NOW) as validated:
        quarantine = validated.quarantine_table().to_pylist()
        assert validated.reads_table().num_rows == 2
    assert [(q["source_line"], q["field"], q["reason"]) for q in quarantine] == [
        (7, "mpan_core", "bad_mpan_check_digit"), (8, "mpan_core", "bad_mpan_check_digit")]
    assert "026 on line 5" in quarantine[0]["detail"]


def test_a_time_in_the_skipped_spring_hour_is_a_bad_timestamp(write):
    path = write("a.uff", FLOW.replace("030|S|20240601000000|", "030|S|20240331013000|"))
    result = ingest_file(path, now=NOW)
    assert result.reasons == {"bad_timestamp": 1}


@pytest.mark.realdata
def test_the_public_sample_flow_is_accepted_whole(realdata):
    path = realdata / "d0010" / "DTC5259515123502080915D0010.uff"
    with validated_file(path, now=NOW) as validated:
        result = validated.result
        reads = validated.reads_table()
    assert (result.status, result.lines, result.reads, result.quarantined) == ("accepted", 37, 13, 0)
    assert reads.column("register_id").to_pylist() == [
        "S", "TO", "S", "S", "A1", "01", "02", "S", "TO", "01", "DY", "NT", "01"]
    assert reads.column("value").to_pylist()[:2] == [56311.0, 81641.0]
