"""Airflow DAGs for teams on Airflow: the same settlement calendar as ``meterlake schedule run``, through the CLI.

* ``meterlake_settlement_calendar``: every day at 06:00 Europe/London (``[schedule] cron``'s default), catch up the
  runs whose cut-off has passed (``meterlake schedule run --once``, with the run's data interval end as now), so
  Airflow's catch-up and back-fills replay the calendar exactly as the built-in scheduler would.
* ``meterlake_settlement_run``: one run of one date by hand (params ``date``, ``run``, ``previous``): settle, diff
  against the previous run, quality, report — the CLI commands an operator would type.

The workers need the ``meterlake`` command on their PATH (the project's virtualenv) and its configuration
(``METERLAKE_CONFIG``); nothing here re-implements the calendar or the jobs. Installed and checked by
``make airflow-venv`` and tests/infra/test_airflow_dag.py (a DagBag load in Airflow's own virtualenv).
"""
from __future__ import annotations

import os

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

MAIN = os.environ.get("METERLAKE_COMMAND", "meterlake")
UK = pendulum.timezone("Europe/London")

with DAG(
    dag_id="meterlake_settlement_calendar",
    description="Settle every run whose cut-off has passed, then diff, quality and report it",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz=UK),
    catchup=False,
    max_active_runs=1,
    tags=["meterlake", "settlement"],
):
    BashOperator(task_id="schedule_run_once",
                 bash_command=MAIN + " schedule run --once --now '{{ data_interval_end | ts }}' --json")

with DAG(
    dag_id="meterlake_settlement_run",
    description="One settlement run of one date, with its diff, quality and report",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz=UK),
    catchup=False,
    params={"date": Param("2024-10-27", type="string", format="date"),
            "run": Param("SF", enum=["SF", "R1", "R2", "R3", "RF", "DF"]),
            "previous": Param("", type="string", description="previous run to diff against; empty: none")},
    tags=["meterlake", "settlement"],
):
    day, run, previous = "{{ params.date }}", "{{ params.run }}", "{{ params.previous }}"
    settle = BashOperator(task_id="settle", bash_command=f"{MAIN} job settle --date {day} --run {run} --json")
    diff = BashOperator(task_id="settle_diff",
                        bash_command=f"if [ -n '{previous}' ]; then {MAIN} job settle-diff --date {day} "
                                     f"--from {previous} --to {run} --json; fi")
    quality = BashOperator(task_id="quality", bash_command=f"{MAIN} job quality --date {day} --json")
    report = BashOperator(task_id="report",
                          bash_command=f"{MAIN} report settlement --date {day} --run {run} --json")
    settle >> diff >> quality >> report
