"""`meterlake calendar`: the exact --json objects, clean usage errors, and --help on every command."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from meterlake.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="meterlake")


@pytest.mark.parametrize("args, expected", [
    pytest.param(
        ["calendar", "day", "2013-03-31", "--json"],
        {"settlement_date": "2013-03-31", "periods": 46, "start_utc": "2013-03-31T00:00:00Z",
         "end_utc": "2013-03-31T23:00:00Z"},
        id="day: spring clock change",
    ),
    pytest.param(
        ["calendar", "day", "2016-10-30", "--json"],
        {"settlement_date": "2016-10-30", "periods": 50, "start_utc": "2016-10-29T23:00:00Z",
         "end_utc": "2016-10-31T00:00:00Z"},
        id="day: autumn clock change",
    ),
    pytest.param(
        ["calendar", "locate", "2016-03-27T22:30:00Z", "--json"],
        {"settlement_date": "2016-03-27", "settlement_period": 46, "utc_start": "2016-03-27T22:30:00Z"},
        id="locate: last period of spring day",
    ),
    pytest.param(
        ["calendar", "locate", "2016-10-30T01:15:00+01:00", "--json"],
        {"settlement_date": "2016-10-30", "settlement_period": 3, "utc_start": "2016-10-30T00:00:00Z"},
        id="locate: inside a period, offset given",
    ),
    pytest.param(
        ["calendar", "period", "2016-10-30", "4", "--json"],
        {"settlement_date": "2016-10-30", "settlement_period": 4, "utc_start": "2016-10-30T00:30:00Z"},
        id="period: autumn first 01:30",
    ),
    pytest.param(
        ["calendar", "changes", "2024", "--json"],
        {"year": 2024, "days": [{"settlement_date": "2024-03-31", "periods": 46},
                                {"settlement_date": "2024-10-27", "periods": 50}]},
        id="changes: 2024",
    ),
])
def test_json_output_is_exactly_the_documented_object(args, expected):
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == expected


def test_summary_without_json_is_one_readable_line():
    result = run("calendar", "period", "2016-10-30", "4")
    assert result.exit_code == 0
    assert result.stdout == "2016-10-30 period 4 of 50 starts 2016-10-30T00:30:00Z (01:30 BST)\n"


def test_a_period_beyond_the_day_is_a_usage_error_object():
    result = run("calendar", "period", "2016-10-30", "51", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": {
        "type": "usage",
        "message": "2016-10-30 has 50 periods; period 51 does not exist",
        "settlement_date": "2016-10-30",
        "settlement_period": 51,
        "periods": 50,
    }}


@pytest.mark.parametrize("args, message", [
    pytest.param(["calendar", "locate", "2016-10-30T01:15:00"],
                 "'2016-10-30T01:15:00' has no time zone: add Z for UTC or an offset such as +01:00",
                 id="naive timestamp"),
    pytest.param(["calendar", "day", "30/10/2016"], "not a date: '30/10/2016' (expected YYYY-MM-DD)",
                 id="not a date"),
    pytest.param(["calendar", "period", "2013-03-31", "0"],
                 "2013-03-31 has 46 periods; period 0 does not exist", id="period 0"),
])
def test_bad_input_is_a_usage_error(args, message):
    result = run(*args, "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["message"] == message


@pytest.mark.parametrize("command", ["day", "locate", "period", "changes"])
def test_every_command_has_help(command):
    result = run("calendar", command, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: meterlake calendar {command} ")
    assert "--json" in result.stdout
