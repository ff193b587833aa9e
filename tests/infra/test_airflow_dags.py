"""infra/airflow's DAGs load in Airflow (a DagBag in its own virtualenv, `make airflow-venv`) and every task runs a
command of this CLI with options the command has."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import click
import pytest

from meterlake.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-airflow" / "bin" / "python"

pytestmark = pytest.mark.skipif(not PYTHON.exists(), reason="Airflow's virtualenv is missing (make airflow-venv)")


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow-home")), "DO_NOT_TRACK": "1"}
    out = subprocess.run([str(PYTHON), str(ROOT / "infra" / "airflow" / "check_dags.py")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _command(bash: str) -> tuple[click.Command, list[str]]:
    """The meterlake command a task's shell line runs, and the options it passes."""
    words = shlex.split(bash.split("then", 1)[-1].split(";")[0])
    words = words[words.index("meterlake") + 1:]
    command: click.Command = cli
    while isinstance(command, click.Group):
        command = command.get_command(None, words.pop(0))
        assert command is not None, bash
    return command, [w for w in words if w.startswith("--")]


def test_the_dags_load_without_errors(dagbag):
    assert dagbag["errors"] == {}
    assert set(dagbag["dags"]) == {"meterlake_settlement_calendar", "meterlake_settlement_run"}
    assert dagbag["dags"]["meterlake_settlement_calendar"]["schedule"] == "0 6 * * *"


def test_every_task_runs_a_meterlake_command_with_options_it_has(dagbag):
    names = set()
    for dag in dagbag["dags"].values():
        for task in dag["tasks"].values():
            command, options = _command(task["bash_command"])
            known = {o for p in command.params for o in p.opts}
            assert set(options) <= known, (task["bash_command"], set(options) - known)
            names.add(command.name)
    assert names == {"run", "settle", "settle-diff", "quality", "settlement"}


def test_a_run_is_settled_diffed_measured_then_reported(dagbag):
    tasks = dagbag["dags"]["meterlake_settlement_run"]["tasks"]
    assert [tasks[t]["downstream"] for t in ("settle", "settle_diff", "quality", "report")] == [
        ["settle_diff"], ["quality"], ["report"], []]
    calendar = dagbag["dags"]["meterlake_settlement_calendar"]["tasks"]["schedule_run_once"]["bash_command"]
    assert calendar.startswith("meterlake schedule run --once --now ")
