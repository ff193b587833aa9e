"""`meterlake ingest`: the exact --json object of a dry run, --format, errors, and the watch subcommand."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from meterlake.cli import cli

D0010 = """\
ZHV|0000000042|D0010002|D|UDMS|X|MRCY|20240602063000||||OPER|
026|1200023305967|V|
028|F75A 00802|R|
030|S|20240601000000|56311.0|||T|N|
030|S|20240601000000|56311.0|||T|N|
026|1200023305968|V|
030|S|20240601000000|1.0|||T|N|
ZPT|0000000042|6||1|20240602063500|
"""


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="meterlake")


def test_dry_run_json_has_one_entry_per_file_in_order(tmp_path):
    good = tmp_path / "a.uff"
    good.write_text(D0010)
    cut = tmp_path / "b.uff"
    cut.write_text(D0010.rsplit("ZPT", 1)[0])
    result = run("ingest", str(good), str(cut), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"files": [
        {"path": str(good), "format": "d0010", "status": "accepted", "lines": 8, "reads": 1, "quarantined": 1,
         "duplicates": 1, "reasons": {"bad_mpan_check_digit": 1}},
        {"path": str(cut), "format": "d0010", "status": "rejected", "lines": 7, "reads": 0, "quarantined": 0,
         "duplicates": 0, "reasons": {"truncated_file": 1}},
    ]}


def test_a_forced_format_applies_to_every_path(tmp_path):
    path = tmp_path / "a.uff"
    path.write_text(D0010)
    result = run("ingest", str(path), "--format", "lcl", "--dry-run", "--json")
    assert json.loads(result.stdout)["files"][0]["reasons"] == {"bad_header": 1}


def test_publishing_without_a_stack_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setenv("METERLAKE_PATHS__STATE_DIR", str(tmp_path / "no-stack"))
    path = tmp_path / "a.uff"
    path.write_text(D0010)
    result = run("ingest", str(path), "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert "no local stack" in error["message"]


def test_watch_is_a_subcommand_and_paths_still_come_first(tmp_path):
    path = tmp_path / "a.uff"
    path.write_text(D0010)
    assert "--once" in run("ingest", "watch", "--help").output
    result = run("ingest", "--dry-run", str(path), "--json")  # options may come before the paths
    assert json.loads(result.stdout)["files"][0]["status"] == "accepted"
    assert "watch [DIR]" in run("ingest", "--help").output


def test_a_missing_path_is_a_usage_error(tmp_path):
    result = run("ingest", str(tmp_path / "nope.uff"), "--dry-run")
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.parametrize("now, message", [
    pytest.param("2024-11-01T00:00:00", "--now '2024-11-01T00:00:00' has no time zone: add Z for UTC or an offset "
                                        "such as +01:00", id="naive"),
    pytest.param("1 Nov 2024", "not an ISO 8601 instant: --now '1 Nov 2024' (e.g. 2026-10-25T01:30:00Z)",
                 id="not ISO"),
])
def test_a_bad_now_is_a_usage_error(tmp_path, now, message):
    path = tmp_path / "a.uff"
    path.write_text(D0010)
    result = run("ingest", str(path), "--dry-run", "--now", now, "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["message"] == message


def test_help():
    result = run("ingest", "--help")
    assert result.exit_code == 0 and "--dry-run" in result.output


def test_a_directory_means_every_file_under_it_sorted_without_hidden_or_temporary_names(tmp_path):
    # GIVEN a landing tree with two flows, a hidden file, files still being written, and a hidden folder
    landing = tmp_path / "landing"
    for name in ("b.uff", "a/z.uff", ".a.uff", "c.uff.tmp", "d.uff.part", "_spool/e.uff", ".hidden/f.uff"):
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        (landing / name).write_text(D0010)
    # WHEN the directory is ingested (after a file named on its own)
    single = tmp_path / "single.uff"
    single.write_text(D0010)
    result = run("ingest", str(single), str(landing), "--dry-run", "--json")
    # THEN the named file, then the directory's two flows in path order, and nothing else
    assert result.exit_code == 0, result.output
    assert [f["path"] for f in json.loads(result.stdout)["files"]] == [
        str(single), str(landing / "a" / "z.uff"), str(landing / "b.uff")]
