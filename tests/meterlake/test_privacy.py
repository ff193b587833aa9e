"""The erasure list's pure parts: audit record names, whole-token matching of an identifier in files and lines,
filtering a read-model table, and which archived files retention lets go."""
from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.fs as pafs

from meterlake import privacy
from meterlake.pseudonym import Pseudonymiser

NAMES = Pseudonymiser(b"a test key of thirty-two bytes!!")
MPAN = "1200023305967"


def test_a_record_name_carries_the_pseudonym_and_nothing_else_parses():
    name = privacy.record_name("P0123abcd", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert name.startswith("P0123abcd-20260102T030405000000Z-") and privacy.parse_record_name(name) == "P0123abcd"
    assert privacy.parse_record_name(".P0123abcd-20260102T030405000000Z-0a1b2c3d.json.x.tmp") is None


def test_an_identifier_is_found_as_a_whole_token_also_in_gzip():
    assert privacy.names(f"026|{MPAN}|V|\n".encode(), MPAN)
    assert privacy.names(gzip.compress(f"{MPAN},E1,S\n".encode()), MPAN)
    assert not privacy.names(f"026|{MPAN}9|V|\n".encode(), MPAN)  # a longer number is another id
    erased = privacy.ErasureList(frozenset({NAMES.one(MPAN)}), NAMES)
    assert erased.named_in(None, f"{MPAN},E1,S,interval,x") and not erased.named_in("1200023305968,E1")


def test_a_read_table_loses_the_erased_meters_rows_and_a_quarantine_table_its_lines():
    erased = privacy.ErasureList(frozenset({NAMES.one(MPAN)}), NAMES)
    reads = pa.table({"meter_point": [MPAN, "2200031930792", None], "value": [1.0, 2.0, 3.0]})
    assert privacy.without_erased(erased, reads).to_pydict() == {"meter_point": ["2200031930792", None],
                                                                 "value": [2.0, 3.0]}
    lines = pa.table({"raw": [f"{MPAN},x", "2200031930792,x"], "detail": ["bad", "bad"]})
    assert privacy.without_erased(erased, lines)["raw"].to_pylist() == ["2200031930792,x"]


def test_archived_files_expire_by_processing_day_or_modification_time(tmp_path):
    for relative in ("raw/2024/12/01/a.uff", "raw/2024/12/02/b.uff", "quarantine/c.csv"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    expired = privacy.expired_archive_files(pafs.LocalFileSystem(), str(tmp_path),
                                            datetime(2024, 12, 2, 0, 0, tzinfo=UTC))
    assert [i.base_name for i in expired] == ["a.uff"]  # c.csv was written now
