"""The scripting contract of every command: with --json, even an unexpected error prints the one error object."""
from __future__ import annotations

import json

import click
from click.testing import CliRunner

from meterlake.cli.output import json_command


@click.command()
@json_command
def broken():
    return {"rows": {}["missing"]}  # a bug: KeyError


def test_an_unexpected_error_with_json_prints_one_error_object_not_a_traceback():
    run = CliRunner().invoke(broken, ["--json"])
    assert run.exit_code == 1
    assert json.loads(run.stdout) == {"error": {"type": "unexpected", "message": "KeyError: 'missing'"}}


def test_an_unexpected_error_without_json_is_raised_for_people_to_read():
    run = CliRunner().invoke(broken, [])
    assert isinstance(run.exception, KeyError)
