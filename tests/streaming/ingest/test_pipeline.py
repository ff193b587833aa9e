"""The file-level flow: detection, the result's JSON shape, bounded meter-day-whole batches, ids from the
source, and memory that does not grow with the file."""
from __future__ import annotations

import gzip
import tracemalloc
import uuid

import pytest

from meterlake import schema
from meterlake.ids import make_mpan_core
from streaming.ingest import detect, ingest_file, validated_file
from tests.streaming.ingest.conftest import HH_HEADER, NOW

D0010 = """\
ZHV|0000000042|D0010002|D|UDMS|X|MRCY|20240602063000||||OPER|
026|1200023305967|V|
028|F75A 00802|R|
030|S|20240601000000|56311.0|||T|N|
ZPT|0000000042|3||1|20240602063500|
"""


@pytest.mark.parametrize("name, content, fmt", [
    ("a.uff", D0010, "d0010"),
    ("a.csv", f"{HH_HEADER}\n", "hh-csv"),
    ("a.csv", "LCLid,tstp,energy(kWh/hh)\n", "lcl"),
    ("a.csv", "\ufeffLCLid,DateTime,KWH/hh (per half hour) \n", "lcl"),
    ("a.jsonl", '\n{"device_id": "d"}\n', "device"),
    ("a.csv.gz", gzip.compress(b"LCLid,tstp,energy(kWh/hh)\n"), "lcl"),
])
def test_detect(write, name, content, fmt):
    assert detect(write(name, content)) == fmt


def test_the_json_result_has_exactly_the_documented_keys(write):
    result = ingest_file(write("a.uff", D0010), now=NOW)
    assert result.to_json() == {"path": str(write("a.uff", D0010)), "format": "d0010", "status": "accepted",
                                "lines": 5, "reads": 1, "quarantined": 0, "duplicates": 0, "reasons": {}}


def hh_day(meters: list[str], day: str = "2024-01-10") -> str:
    """One whole settlement day (48 periods, January: UTC = local) per meter, meter by meter."""
    rows = [HH_HEADER]
    for mp in meters:
        for p in range(48):
            rows.append(f"{mp},E1,S,interval,{day}T{p // 2:02d}:{30 * (p % 2):02d}:00Z,0.{p:03d},kWh,actual,"
                        f"2024-01-11T02:00:00Z")
    return "\n".join(rows) + "\n"


def test_batches_are_bounded_and_never_split_a_meters_day(write):
    # GIVEN two meters' days (96 reads) cut into batches of at most 60 reads
    path = write("hh.csv", hh_day(["1200023305967", "2200031930792"]))
    with validated_file(path, now=NOW, batch_rows=60) as validated:
        batches = list(validated.reads())
    # THEN the first batch stops at the end of the first meter's day
    assert [b.num_rows for b in batches] == [48, 48]
    assert [b.column("meter_point").unique().to_pylist() for b in batches] == [["1200023305967"],
                                                                               ["2200031930792"]]
    # AND each batch packs into one whole-day set
    assert [schema.pack_table(b).num_rows for b in batches] == [1, 1]


def test_file_level_columns_are_filled_and_ids_come_from_the_bytes(write):
    first = write("DTC1.uff", D0010)
    copy = write("DTC1-copy.uff", D0010)
    other = write("DTC2.uff", D0010.replace("56311.0", "56312.0"))
    ids = {}
    for path in (first, copy, other):
        with validated_file(path, now=NOW) as validated:
            reads = validated.reads_table()
            schema.validate_reads(reads)
            ids[path.name] = (reads.column("file_id")[0].as_py(), reads.column("batch_id")[0].as_py())
            assert reads.column("source_version")[0].as_py() == 1_717_306_200_000_042
    assert ids["DTC1.uff"] == ids["DTC1-copy.uff"]  # a byte-identical copy is recognisably the same file
    assert ids["DTC1.uff"][0] != ids["DTC2.uff"][0]
    file_id, batch_id = ids["DTC1.uff"]
    assert file_id != batch_id and uuid.UUID(file_id).version == uuid.UUID(batch_id).version == 1
    assert schema.uuid_time(file_id) == schema.from_epoch_us(1_717_306_200_000_042)


def test_a_dry_run_counts_what_validation_hands_out(write):
    text = hh_day(["1200023305967", "1200023305968"])
    path = write("hh.csv", text + text.splitlines()[1] + "\n")
    dry = ingest_file(path, now=NOW)
    with validated_file(path, now=NOW, batch_rows=50) as validated:
        full = validated.result
        handed = sum(b.num_rows for b in validated.reads())
        quarantined = sum(b.num_rows for b in validated.quarantine())
    assert dry.to_json() == full.to_json()
    assert (handed, quarantined, full.duplicates) == (48, 48, 1)
    assert full.reasons == {"bad_mpan_check_digit": 48}


def _peak_bytes(path, **kwargs) -> int:
    tracemalloc.start()
    try:
        with validated_file(path, now=NOW, **kwargs) as validated:
            for _ in validated.reads():
                pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(write):
    # GIVEN files of 4 and 16 days of 25 meters (4,800 and 19,200 reads), parsed in batches of 1,000
    meters = [make_mpan_core(12, 1000 + n) for n in range(25)]

    def days(n: int) -> str:
        body = "".join(hh_day(meters, f"2024-01-{d:02d}").split("\n", 1)[1] for d in range(1, n + 1))
        return f"{HH_HEADER}\n{body}"

    small, large = write("small.csv", days(4)), write("large.csv", days(16))
    options = {"batch_rows": 1000, "duplicate_window": 1000}
    assert ingest_file(large, now=NOW).reads == 19_200
    _peak_bytes(small, **options)  # warm up: first use loads modules and compute kernels
    # THEN the peak of traced memory is about the same for four times the data
    assert _peak_bytes(large, **options) < 1.3 * _peak_bytes(small, **options)
