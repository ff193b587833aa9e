"""Load the DAGs of infra/airflow/dags/ into Airflow's DagBag and print what it found as one JSON object.

Run by Airflow's own interpreter (``.venv-airflow/bin/python infra/airflow/check_dags.py``, made by
``make airflow-venv``), never imported by meterlake: ``{"errors": {file: message}, "dags": {dag_id: {"schedule",
"tasks": {task_id: {"bash_command", "downstream"}}}}}`` on the last line of stdout.
"""
from __future__ import annotations

import json
from pathlib import Path

DAGS = Path(__file__).with_name("dags")


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS), safe_mode=False)
    out = {"errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": {}}
    for dag_id, dag in sorted(bag.dags.items()):
        out["dags"][dag_id] = {
            "schedule": None if dag.schedule is None else str(dag.schedule),
            "tasks": {t.task_id: {"bash_command": getattr(t, "bash_command", None),
                                  "downstream": sorted(t.downstream_task_ids)} for t in dag.tasks},
        }
    print(json.dumps(out), flush=True)  # the last line (Airflow logs to stdout before it)


if __name__ == "__main__":
    main()
