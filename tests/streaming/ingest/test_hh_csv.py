"""hh-csv: the documented long form, versions from created_utc, gzip, and files cut short."""
from __future__ import annotations

import gzip
from datetime import UTC, date, datetime

import pytest

from streaming.ingest import ingest_file, validated_file
from tests.streaming.ingest.conftest import HH_HEADER, NOW

FILE = f"""\
{HH_HEADER}
1200023305967,E00000001,S,interval,2024-01-10T00:00:00Z,0.213,kWh,actual,2024-01-11T02:00:00Z
1200023305967,E00000001,S,interval,2024-01-10T00:30:00Z,0.198,kWh,estimated,2024-01-11T02:00:00Z
7434918404,G00000002,S,register,2024-01-10T00:00:00Z,1843.250,m3,actual,2024-01-12T02:00:00Z
"""


def test_reads_of_a_small_file(write):
    path = write("hh.csv", FILE)
    with validated_file(path, now=NOW) as validated:
        rows = validated.reads_table().select(
            ["meter_point", "fuel", "register_id", "read_kind", "interval_start_utc", "settlement_period",
             "value", "unit", "quality", "source_line", "source_version"]).to_pylist()
        result = validated.result
    jan11, jan12 = 1_704_938_400_000_000, 1_705_024_800_000_000  # created_utc in microseconds
    assert [tuple(r.values()) for r in rows] == [
        ("1200023305967", "electricity", "S", "interval", datetime(2024, 1, 10, tzinfo=UTC), 1, 0.213, "kWh",
         "actual", 2, jan11),
        ("1200023305967", "electricity", "S", "interval", datetime(2024, 1, 10, 0, 30, tzinfo=UTC), 2, 0.198,
         "kWh", "estimated", 3, jan11),
        ("7434918404", "gas", "S", "register", datetime(2024, 1, 10, tzinfo=UTC), 1, 1843.25, "m3", "actual",
         4, jan12),
    ]
    # the file as a whole is as recent as its latest created_utc
    assert result.source_version == jan12


def test_columns_may_come_in_any_order_with_extra_ones(write):
    text = ("quality,value,interval_start_utc,comment,meter_point,meter_serial,register_id,read_kind,unit,"
            "created_utc\nactual,0.5,2024-01-10T00:00:00Z,hello,1200023305967,,S,interval,kWh,"
            "2024-01-11T02:00:00Z\n")
    with validated_file(write("hh.csv", text), now=NOW) as validated:
        row = validated.reads_table().to_pylist()[0]
    assert (row["meter_point"], row["meter_serial"], row["value"], row["settlement_date"]) == (
        "1200023305967", None, 0.5, date(2024, 1, 10))


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "1,5"])
def test_not_finite_or_not_numbers_are_quarantined(write, value):
    row = f"1200023305967,E1,S,interval,2024-01-10T00:00:00Z,{value},kWh,actual,2024-01-11T02:00:00Z"
    result = ingest_file(write("hh.csv", f"{HH_HEADER}\n{row}\n"), now=NOW)
    assert result.reasons in ({"non_numeric_value": 1}, {"malformed_line": 1})
    assert result.reads == 0


def test_an_unterminated_last_line_means_the_file_was_cut(write):
    result = ingest_file(write("hh.csv", FILE.rstrip("\n")), now=NOW)
    assert (result.status, result.reasons) == ("rejected", {"truncated_file": 1})


def test_a_gzipped_file_reads_the_same_and_a_cut_one_is_rejected(write):
    plain = ingest_file(write("hh.csv", FILE), now=NOW)
    packed = gzip.compress(FILE.encode())
    zipped = ingest_file(write("hh.csv.gz", packed), now=NOW)
    assert (zipped.status, zipped.format, zipped.reads) == ("accepted", "hh-csv", plain.reads)
    cut = ingest_file(write("cut.csv.gz", packed[: len(packed) - 12]), now=NOW)
    assert (cut.status, cut.reasons) == ("rejected", {"truncated_file": 1})


def test_a_forced_format_that_does_not_fit_is_a_bad_header(write):
    result = ingest_file(write("x.csv", "LCLid,tstp,energy(kWh/hh)\nMAC000002,2013-01-01 00:30:00,0.1\n"),
                         format="hh-csv", now=NOW)
    assert (result.status, result.reasons) == ("rejected", {"bad_header": 1})


def test_blocks_of_good_lines_and_a_block_with_a_bad_line_give_the_same_reads_and_problems(write):
    # GIVEN 12 lines read in blocks of 4 (batch_rows 4): the second block has a bad value on line 7, a
    # duplicate of line 2 on line 8 and a value with blanks around it on line 6
    starts = [f"2024-01-10T{h:02d}:{m:02d}:00Z" for h in range(6) for m in (0, 30)]
    rows = [f"1200023305967,E1,S,interval,{start},0.{n + 1},kWh,actual,2024-01-11T02:00:00Z"
            for n, start in enumerate(starts)]
    rows[4] = rows[4].replace(",0.5,", ", 0.5 ,")
    rows[5] = rows[5].replace(",0.6,", ",x,")
    rows[6] = rows[0]
    with validated_file(write("hh.csv", HH_HEADER + "\n" + "\n".join(rows) + "\n"), now=NOW,
                        batch_rows=4) as validated:
        reads = validated.reads_table().select(["source_line", "value"]).to_pylist()
        problems = validated.quarantine_table().select(["source_line", "field", "reason"]).to_pylist()
        result = validated.result
    # THEN every good line is a read with its own line number, the bad one is quarantined by line and field,
    # the duplicate is dropped and counted
    assert [(r["source_line"], r["value"]) for r in reads] == [
        (2, 0.1), (3, 0.2), (4, 0.3), (5, 0.4), (6, 0.5), (9, 0.8), (10, 0.9), (11, 0.1), (12, 0.11),
        (13, 0.12)]
    assert problems == [{"source_line": 7, "field": "value", "reason": "non_numeric_value"}]
    assert (result.reads, result.duplicates) == (10, 1)
