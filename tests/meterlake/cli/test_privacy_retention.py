"""`meterlake privacy retention`: a dry run says what the retention settings would remove and removes nothing; a
real run removes exactly that (settlement dates of reads, the job outputs of those dates, archived files) and says
so. No service needed."""
from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
from click.testing import CliRunner

from jobs import lakeio
from meterlake.cli import cli
from meterlake.lake.files import Lake
from tests.jobs.helpers import day_of, write_lake_reads

NOW = "2025-01-10T00:00:00Z"  # lake: 365 days keep 2024-01-11 on; archive: 30 days keep files after 2024-12-11


def _setup(tmp_path: Path) -> dict[str, str]:
    lake = Lake(pafs.LocalFileSystem(), str(tmp_path / "lake"))
    for offset, day in enumerate((date(2024, 1, 10), date(2024, 1, 11))):
        write_lake_reads(lake, day_of("Pmeter", day), offset=offset)
        lakeio.write_deterministic(lake, f"quality/settlement_date={day}/part-0.parquet",
                                   pa.table({"meter_point": ["Pmeter"], "completeness": [1.0]}))
    archive = tmp_path / "archive"
    for relative in ("raw/2024/12/01/a.uff", "raw/2024/12/20/b.uff", "quarantine/c.csv", "quarantine/d.csv"):
        (archive / relative).parent.mkdir(parents=True, exist_ok=True)
        (archive / relative).write_text("some bytes\n")
    old = datetime(2024, 11, 1, tzinfo=UTC).timestamp()
    os.utime(archive / "quarantine/c.csv", (old, old))
    return {"METERLAKE_PATHS__LAKE": str(tmp_path / "lake"), "METERLAKE_PATHS__STATE_DIR": str(tmp_path / "state"),
            "METERLAKE_INGEST__ARCHIVE_DIR": str(archive), "METERLAKE_LAKE__RETENTION_DAYS": "365",
            "METERLAKE_ARCHIVE__RETENTION_DAYS": "30"}


def _run(env: dict[str, str], *args: str) -> dict:
    result = CliRunner().invoke(cli, ["privacy", "retention", "--now", NOW, *args, "--json"], env=env,
                                prog_name="meterlake")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _state(tmp_path: Path) -> list[str]:
    """Every file (hidden ones, a lock, left out)."""
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                  if p.is_file() and "state" not in p.parts and not p.name.startswith("."))


def test_a_dry_run_lists_what_a_real_run_then_removes(tmp_path):
    env = _setup(tmp_path)
    before = _state(tmp_path)
    dry = _run(env, "--dry-run")
    assert _state(tmp_path) == before  # nothing removed
    assert dry["dry_run"] is True and dry["lake"]["before"] == "2024-01-11"
    assert [d["settlement_date"] for d in dry["lake"]["dates"]] == ["2024-01-10"]
    assert [o["output"] for o in dry["lake"]["outputs"]] == ["quality/settlement_date=2024-01-10"]
    expired = sorted(Path(f["path"]).name for f in dry["archive"]["files"])
    assert expired == ["a.uff", "c.csv"]

    real = _run(env)
    assert real["dry_run"] is False
    assert [d["settlement_date"] for d in real["lake"]["dates"]] == ["2024-01-10"]
    assert [o["output"] for o in real["lake"]["outputs"]] == ["quality/settlement_date=2024-01-10"]
    assert sorted(Path(f["path"]).name for f in real["archive"]["files"]) == expired
    after = _state(tmp_path)
    gone = sorted(set(before) - set(after))
    assert all("2024-01-10" in g or g.endswith(("a.uff", "c.csv")) for g in gone) and not set(after) - set(before)
    assert any("2024-01-11" in a for a in after) and "archive/raw/2024/12/20/b.uff" in after
    assert not any("2024-01-10" in a for a in after)
    # a second run finds nothing more
    again = _run(env)
    assert (again["lake"]["dates"], again["lake"]["outputs"], again["archive"]["files"]) == ([], [], [])
