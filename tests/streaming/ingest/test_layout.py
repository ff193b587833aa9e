"""Supplier CSV layouts ([ingest.layouts.<name>]): start vs end times, Wh, UK clock time with the repeated autumn
hour, the same quarantine as the other formats, the CLI's --format layout:NAME."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from meterlake.cli import cli
from meterlake.config import IngestLayout
from streaming.ingest import ingest_file, validated_file
from streaming.ingest.pipeline import register_layout
from tests.streaming.ingest.conftest import NOW

MPAN = "1200000000011"  # check digit valid
OCTO = IngestLayout(timestamp_column="halfhour ending at", timestamp_is="end", timezone="UTC",
                    value_column="usage", unit="kWh")


def z(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _reads(path, fmt):
    with validated_file(path, fmt, now=NOW) as validated:
        t = validated.reads_table()
    return list(zip(t.column("meter_point").to_pylist(), t.column("interval_start_utc").to_pylist(),
                    t.column("value").to_pylist(), t.column("unit").to_pylist(), strict=True))


def test_end_timestamps_in_utc_newest_first(write):
    # the shape of Octopus's consumption export: half-hour ENDS with an offset, newest first
    fmt = register_layout("octo", OCTO, MPAN)
    path = write("usage.csv", "halfhour ending at,usage\n2023-12-20 04:30:00+00:00,0.0580\n"
                              "2023-12-20 04:00:00+00:00,0.0700\n")
    assert sorted(_reads(path, fmt)) == [(MPAN, z(2023, 12, 20, 3, 30), 0.07, "kWh"),
                                         (MPAN, z(2023, 12, 20, 4, 0), 0.058, "kWh")]


def test_start_timestamps_in_wh_with_a_meter_column(write):
    layout = IngestLayout(timestamp_column="from", timestamp_is="start", timezone="UTC",
                          timestamp_format="%d/%m/%Y %H:%M", value_column="Wh", unit="Wh", meter_column="mpan")
    fmt = register_layout("wh", layout)
    path = write("wh.csv", f"mpan,from,Wh\n{MPAN},20/12/2023 04:00,250\n{MPAN},20/12/2023 04:30,1234\n")
    assert _reads(path, fmt) == [(MPAN, z(2023, 12, 20, 4, 0), 0.25, "kWh"),
                                 (MPAN, z(2023, 12, 20, 4, 30), 1.234, "kWh")]


def test_uk_clock_time_and_the_repeated_autumn_hour(write):
    layout = IngestLayout(timestamp_column="start", timezone="Europe/London", value_column="kwh")
    fmt = register_layout("uk", layout, MPAN)
    # 00:30 BST is 23:30Z; a bare 01:30 on 29 October 2023 happens twice (ambiguous: quarantined); with its
    # offset it is one instant; 02:00 is GMT
    path = write("uk.csv", "start,kwh\n2023-10-29 00:30,0.1\n2023-10-29 01:30,0.2\n"
                           "2023-10-29 01:30+00:00,0.3\n2023-10-29 02:00,0.4\n")
    assert _reads(path, fmt) == [(MPAN, z(2023, 10, 28, 23, 30), 0.1, "kWh"), (MPAN, z(2023, 10, 29, 1, 30), 0.3,
                                                                               "kWh"),
                                 (MPAN, z(2023, 10, 29, 2, 0), 0.4, "kWh")]
    result = ingest_file(path, fmt, now=NOW)
    assert (result.status, result.reads, result.quarantined, result.reasons) == (
        "accepted", 3, 1, {"bad_timestamp": 1})


def test_bad_rows_are_quarantined_and_a_missing_column_rejects_the_file(write):
    fmt = register_layout("octo", OCTO, MPAN)
    path = write("bad.csv", "halfhour ending at,usage\n2023-12-20 04:15:00+00:00,0.1\n2023-12-20 04:30:00Z,\n"
                            "yesterday,0.2\n2030-01-01 00:30:00Z,0.3\n2023-12-20 05:00:00Z,0.4\n")
    result = ingest_file(path, fmt, now=NOW)
    assert (result.reads, result.reasons) == (1, {"off_grid_timestamp": 1, "missing_value": 1, "bad_timestamp": 1,
                                                  "future_timestamp": 1})
    result = ingest_file(write("cols.csv", "when,usage\n2023-12-20 04:30:00Z,0.1\n"), fmt, now=NOW)
    assert (result.status, list(result.reasons)) == ("rejected", ["bad_header"])


def test_the_cli_reads_a_layout_from_the_config(write, tmp_path):
    config = write("meterlake.toml", '[ingest.layouts.octo]\ntimestamp_column = "halfhour ending at"\n'
                                     'timestamp_is = "end"\nvalue_column = "usage"\n')
    path = write("usage.csv", "halfhour ending at,usage\n2023-12-20 04:30:00+00:00,0.0580\n")
    run = CliRunner().invoke(cli, ["--config", str(config), "ingest", str(path), "--format", "layout:octo",
                                   "--meter-point", MPAN, "--dry-run", "--json"])
    assert run.exit_code == 0, run.output
    assert [(f["format"], f["reads"]) for f in json.loads(run.stdout)["files"]] == [("layout:octo", 1)]
    run = CliRunner().invoke(cli, ["--config", str(config), "ingest", str(path), "--format", "layout:octo",
                                   "--dry-run", "--json"])
    assert run.exit_code == 2 and "give --meter-point" in json.loads(run.stdout)["error"]["message"]


def test_the_real_octopus_export(realdata):
    fmt = register_layout("octo", OCTO, MPAN)
    result = ingest_file(realdata / "octopus_agile" / "electricity_records.csv", fmt, now=NOW)
    assert result.status == "accepted" and result.reads > 50_000
    assert result.quarantined == 0, result.reasons


@pytest.fixture(autouse=True)
def _forget_layouts():
    from streaming.ingest import pipeline

    before = dict(pipeline.PARSERS)
    yield
    pipeline.PARSERS.clear()
    pipeline.PARSERS.update(before)
