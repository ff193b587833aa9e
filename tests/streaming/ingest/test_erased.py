"""Ingest and the erasure list: an erased meter's reads, and its quarantined lines, are dropped and counted under
``erased_meter``; the other meters' reads are handed out as before."""
from __future__ import annotations

from meterlake.privacy import ErasureList
from meterlake.pseudonym import Pseudonymiser
from streaming.ingest import validated_file
from tests.streaming.ingest.conftest import NOW
from tests.streaming.ingest.test_pipeline import hh_day

KEPT, GONE = "1200023305967", "2200031930792"
NAMES = Pseudonymiser(b"a test key of thirty-two bytes!!")


def test_an_erased_meters_reads_and_bad_lines_are_dropped_and_counted(write):
    # GIVEN two meters' days, the erased one with a bad line (a value that is not a number)
    text = hh_day([KEPT, GONE]).replace(f"{GONE},E1,S,interval,2024-01-10T00:00:00Z,0.000",
                                        f"{GONE},E1,S,interval,2024-01-10T00:00:00Z,zero")
    erased = ErasureList(frozenset({NAMES.one(GONE)}), NAMES)
    with validated_file(write("hh.csv", text), now=NOW, erased=erased) as validated:
        reads, quarantined = validated.reads_table(), validated.quarantine_table()
        result = validated.result
    # THEN only the other meter's 48 reads are handed out, nothing is quarantined, and 48 are counted as erased
    assert reads.column("meter_point").unique().to_pylist() == [KEPT] and reads.num_rows == 48
    assert quarantined.num_rows == 0
    assert (result.reads, result.quarantined, result.reasons) == (48, 0, {"erased_meter": 48})


def test_an_empty_list_changes_nothing(write):
    path = write("hh.csv", hh_day([KEPT, GONE]))
    with validated_file(path, now=NOW, erased=ErasureList(frozenset())) as validated:
        assert validated.reads_table().num_rows == 96 and validated.result.reasons == {}
