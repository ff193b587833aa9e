"""Job checkpoints: per-run files, so runs of a job at the same time lose none of each other's entries."""
from __future__ import annotations

import pyarrow.fs as pafs

from jobs import lakeio
from meterlake.lake.files import Lake


def test_two_runs_at_once_keep_both_their_entries(tmp_path):
    lake = Lake(pafs.LocalFileSystem(), str(tmp_path))
    lakeio.write_checkpoint(lake, "settle", {"2026-01-01/SF": {"fingerprint": "a0"}})
    # GIVEN two runs that both read the checkpoint before either wrote
    first, second = lakeio.read_checkpoint(lake, "settle"), lakeio.read_checkpoint(lake, "settle")
    # WHEN each records the date it settled
    first["2026-01-02/SF"] = {"fingerprint": "b1"}
    second["2026-01-03/SF"] = {"fingerprint": "c1"}
    lakeio.write_checkpoint(lake, "settle", {"2026-01-02/SF": first["2026-01-02/SF"]})
    lakeio.write_checkpoint(lake, "settle", {"2026-01-03/SF": second["2026-01-03/SF"]})
    # THEN the checkpoint has both, and the first run's entry
    assert lakeio.read_checkpoint(lake, "settle") == {"2026-01-01/SF": {"fingerprint": "a0"},
                                                      "2026-01-02/SF": {"fingerprint": "b1"},
                                                      "2026-01-03/SF": {"fingerprint": "c1"}}


def test_a_later_entry_replaces_an_earlier_one_and_fully_replaced_files_go(tmp_path):
    lake = Lake(pafs.LocalFileSystem(), str(tmp_path))
    lakeio.write_checkpoint(lake, "clean", {"2026-01-01": {"fingerprint": "old"}})
    lakeio.write_checkpoint(lake, "clean", {"2026-01-01": {"fingerprint": "new"}, "2026-01-02": {"fingerprint": "x"}})
    assert lakeio.read_checkpoint(lake, "clean") == {"2026-01-01": {"fingerprint": "new"},
                                                     "2026-01-02": {"fingerprint": "x"}}
    assert len(list((tmp_path / "_jobs" / "checkpoints" / "clean").glob("*.json"))) == 1


def test_the_single_file_of_an_older_lake_is_still_read(tmp_path):
    lake = Lake(pafs.LocalFileSystem(), str(tmp_path))
    lake.write_text("_jobs/checkpoints/quality.json", '{"2026-01-01": {"fingerprint": "f"}}')
    lakeio.write_checkpoint(lake, "quality", {"2026-01-02": {"fingerprint": "g"}})
    assert lakeio.read_checkpoint(lake, "quality") == {"2026-01-01": {"fingerprint": "f"},
                                                       "2026-01-02": {"fingerprint": "g"}}
