"""A job's options are declared once (jobs/options.py): `meterlake job NAME` and `spark-submit jobs/NAME/job.py`
take the same ones, and the CLI reads the declarations without importing the jobs' engine."""
from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import click
import pytest

from jobs import options
from meterlake.cli import cli

# each job's spark-submit main, by the name `meterlake job NAME` gives it
MAINS = {"clean": "jobs.clean.job", "settle": "jobs.settle.job", "settle-diff": "jobs.settle_diff.job",
         "quality": "jobs.quality.job", "bill": "jobs.bill.job", "bill-check": "jobs.bill.check",
         "backfill": "jobs.backfill.job", "reconcile": "jobs.reconcile.job", "serve": "jobs.serve.job"}


def test_every_job_command_has_a_declaration_and_a_main():
    assert set(cli.commands["job"].commands) == set(options.JOBS) == set(MAINS)


def _argparse_options(name: str, monkeypatch) -> dict[str, str]:
    """The options the job's main parses ({flag: dest}), caught at parse time (nothing runs)."""
    seen = {}

    def parse(parser, *args, **kwargs):
        seen.update({a.option_strings[0]: a.dest for a in parser._actions if a.option_strings})
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse)
    with pytest.raises(SystemExit):
        importlib.import_module(MAINS[name]).main([])
    return seen


@pytest.mark.parametrize("name", sorted(MAINS))
def test_the_cli_command_and_the_spark_submit_main_take_the_same_options(name, monkeypatch):
    command: click.Command = cli.commands["job"].commands[name]
    clicked = {p.opts[0]: p.name for p in command.params if p.name != "as_json"}
    parsed = _argparse_options(name, monkeypatch)
    # the spark-submit main's own: its config file, a dry run, and --force for every job (a no-op where the job
    # always runs, as the CLI, which leaves it out there)
    own = {"-h": "help", "--config": "config", "--dry-run": "dry_run"} | (
        {} if options.JOBS[name].force else {"--force": "force"})
    assert clicked == {k: v for k, v in parsed.items() if k not in own}
    assert set(own) <= set(parsed)


def test_the_cli_declares_the_jobs_without_importing_their_engine():
    code = ("import sys; from meterlake.cli import cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'jobs')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "['jobs', 'jobs.options']", out.stdout
