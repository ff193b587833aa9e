"""Every quarantine reason and every file-level rejection, each from a tiny literal file."""
from __future__ import annotations

from datetime import date

import pytest

from meterlake import schema
from streaming.ingest import FileRejected, ingest_file, validated_file
from tests.streaming.ingest.conftest import HH_HEADER, NOW

OK_ROW = "1200023305967,E00000001,S,interval,2024-01-10T00:00:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z"


def hh(bad_row: str) -> str:
    """A hh-csv file: header (line 1), a good read (line 2), the row under test (line 3)."""
    return f"{HH_HEADER}\n{OK_ROW}\n{bad_row}\n"


def d0010(*groups: str, count: int | None = None, trailer_id: str = "0000000007") -> str:
    body = "\n".join(groups)
    n = len(groups) if count is None else count
    return (f"ZHV|0000000007|D0010002|D|UDMS|X|MRCY|20240111060000||||OPER|\n{body}\n"
            f"ZPT|{trailer_id}|{n}||1|20240111060500|\n")


QUARANTINE_CASES = [
    ("malformed_line", "hh.csv", hh("1200023305967,E00000001,S,interval,2024-01-10T00:30:00Z,0.5,kWh,actual"),
     3, None),
    ("missing_value", "hh.csv",
     hh("1200023305967,E00000001,S,interval,2024-01-10T00:30:00Z,,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "value"),
    ("non_numeric_value", "hh.csv",
     hh("1200023305967,E00000001,S,interval,2024-01-10T00:30:00Z,0.1O7,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "value"),
    ("bad_meter_point", "hh.csv",
     hh("12000233059,E00000001,S,interval,2024-01-10T00:30:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "meter_point"),
    ("bad_mpan_check_digit", "hh.csv",
     hh("1200023305968,E00000001,S,interval,2024-01-10T00:30:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "meter_point"),
    ("unknown_register", "hh.csv",
     hh("1200023305967,E00000001,S1X,interval,2024-01-10T00:30:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "register_id"),
    ("unknown_unit", "hh.csv",
     hh("1200023305967,E00000001,S,interval,2024-01-10T00:30:00Z,0.5,MWh,actual,2024-01-11T02:00:00Z"), 3,
     "unit"),
    ("unknown_quality", "hh.csv",
     hh("1200023305967,E00000001,S,interval,2024-01-10T00:30:00Z,0.5,kWh,guessed,2024-01-11T02:00:00Z"), 3,
     "quality"),
    ("unknown_read_kind", "hh.csv",
     hh("1200023305967,E00000001,S,daily,2024-01-10T00:30:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "read_kind"),
    ("bad_timestamp", "hh.csv",
     hh("1200023305967,E00000001,S,interval,2024-01-10 00:30:00,0.5,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "interval_start_utc"),
    ("off_grid_timestamp", "hh.csv",
     hh("1200023305967,E00000001,S,interval,2024-01-10T00:17:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "interval_start_utc"),
    ("future_timestamp", "hh.csv",
     hh("1200023305967,E00000001,S,interval,2025-01-01T00:00:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "interval_start_utc"),
    ("conflicting_duplicate", "hh.csv",
     hh("1200023305967,E00000001,S,interval,2024-01-10T00:00:00Z,0.6,kWh,actual,2024-01-11T02:00:00Z"), 3,
     "value"),
    ("orphan_group", "a.uff", d0010("030|S|20240110000000|1234.0|||T|N|", "026|1200023305967|V|",
                                    "028|E00000001|R|", "030|S|20240110000000|1234.0|||T|N|"), 2, None),
    ("unknown_group", "a.uff", d0010("026|1200023305967|V|", "028|E00000001|R|", "099|X|",
                                     "030|S|20240110000000|1234.0|||T|N|"), 4, None),
]


def test_the_cases_cover_every_quarantine_reason():
    assert sorted(case[0] for case in QUARANTINE_CASES) == sorted(schema.QUARANTINE_REASONS)


@pytest.mark.parametrize("reason, name, text, line, field", QUARANTINE_CASES,
                         ids=[c[0] for c in QUARANTINE_CASES])
def test_a_bad_record_is_quarantined_with_its_line_field_and_reason(write, reason, name, text, line, field):
    path = write(name, text)
    # WHEN the file is validated
    with validated_file(path, now=NOW) as validated:
        quarantine = validated.quarantine_table().to_pylist()
        reads = validated.reads_table()
    # THEN the file is accepted, the bad record is in quarantine, and the good read is kept
    assert [(q["source_line"], q["field"], q["reason"]) for q in quarantine] == [(line, field, reason)]
    assert quarantine[0]["source_file"] == name
    assert quarantine[0]["raw"] == text.splitlines()[line - 1]
    assert quarantine[0]["detail"]
    assert reads.num_rows == 1
    result = ingest_file(path, now=NOW)
    assert (result.status, result.reads, result.quarantined) == ("accepted", 1, 1)
    assert result.reasons == {reason: 1}


def test_an_exact_duplicate_is_counted_and_dropped(write):
    path = write("hh.csv", hh(OK_ROW))
    result = ingest_file(path, now=NOW)
    assert (result.reads, result.duplicates, result.quarantined) == (1, 1, 0)


HEADER_OK = "ZHV|0000000007|D0010002|D|UDMS|X|MRCY|20240111060000||||OPER|"
GROUPS = "026|1200023305967|V|\n028|E00000001|R|\n030|S|20240110000000|1234.0|||T|N|\n"

REJECTION_CASES = [
    ("unknown_format", "x.csv", "hello,world\n1,2\n"),
    ("unreadable_encoding", "hh.csv",
     (f"{HH_HEADER}\n{OK_ROW}\n").encode()
     + b"1200023305967,E\xa3001,S,interval,2024-01-10T00:30:00Z,0.5,kWh,actual,2024-01-11T02:00:00Z\n"),
    ("empty_file", "empty.csv", ""),
    ("bad_header", "a.uff", f"ZHV|0000000007|D0010002|D|UDMS|X|MRCY|2024011106||||OPER|\n{GROUPS}"
                            f"ZPT|0000000007|3||1|20240111060500|\n"),
    ("unknown_flow", "a.uff", f"ZHV|0000000007|D0086001|D|UDMS|X|MRCY|20240111060000||||OPER|\n{GROUPS}"
                              f"ZPT|0000000007|3||1|20240111060500|\n"),
    ("truncated_file", "a.uff", f"{HEADER_OK}\n{GROUPS}"),
    ("trailer_count_mismatch", "a.uff", f"{HEADER_OK}\n{GROUPS}ZPT|0000000007|4||1|20240111060500|\n"),
    ("trailer_file_id_mismatch", "a.uff", f"{HEADER_OK}\n{GROUPS}ZPT|0000000008|3||1|20240111060500|\n"),
    ("data_after_trailer", "a.uff", f"{HEADER_OK}\n{GROUPS}ZPT|0000000007|3||1|20240111060500|\n"
                                    f"026|1200023305967|V|\n"),
]


def test_the_cases_cover_every_rejection_reason():
    assert sorted(case[0] for case in REJECTION_CASES) == sorted(schema.REJECTION_REASONS)


@pytest.mark.parametrize("reason, name, content", REJECTION_CASES, ids=[c[0] for c in REJECTION_CASES])
def test_a_bad_file_is_rejected_whole_and_nothing_is_handed_out(write, reason, name, content):
    path = write(name, content)
    result = ingest_file(path, now=NOW)
    assert result.status == "rejected"
    assert (result.reads, result.quarantined, result.duplicates, result.reasons) == (0, 0, 0, {reason: 1})
    assert result.detail
    handed_out = []
    with pytest.raises(FileRejected) as caught:
        with validated_file(path, now=NOW) as validated:
            handed_out.append(validated)
    assert caught.value.reason == reason
    assert caught.value.result.status == "rejected"
    assert handed_out == []


@pytest.mark.parametrize("name, text, meter_point, day", [
    pytest.param("hh.csv", hh("1200023305967,E00000001,S,interval,2024-06-30T23:30:00Z,0.1O7,kWh,actual,"
                              "2024-07-02T02:00:00Z"), "1200023305967", date(2024, 7, 1),
                 id="a bad value: its meter and the UK day of its half-hour (BST)"),
    pytest.param("hh.csv", hh("1200023305967,E00000001,S,interval,2024-01-10T00:17:00Z,0.5,kWh,actual,"
                              "2024-01-11T02:00:00Z"), "1200023305967", date(2024, 1, 10),
                 id="an off-grid time is still a day"),
    pytest.param("hh.csv", hh("1200023305967,E00000001,S,interval,2024-01-10 00:30:00,0.5,kWh,actual,"
                              "2024-01-11T02:00:00Z"), "1200023305967", None, id="no time: the meter only"),
    pytest.param("hh.csv", hh("1200023305968,E00000001,S,interval,2024-01-10T00:30:00Z,0.5,kWh,actual,"
                              "2024-01-11T02:00:00Z"), None, None, id="a bad meter point is no meter"),
    pytest.param("d.d0010", d0010("026|1200023305967|V|", "028|E00000001|C|",
                                  "030|S|20240110060000|12.3x|||T|N|"), "1200023305967", date(2024, 1, 10),
                 id="a D0010 register reading"),
])
def test_a_quarantine_record_names_the_meter_and_day_its_line_gave_before_its_problem(write, name, text,
                                                                                      meter_point, day):
    with validated_file(write(name, text), now=NOW) as validated:
        (record,) = validated.quarantine_table().to_pylist()
    assert (record["meter_point"], record["settlement_date"]) == (meter_point, day)
