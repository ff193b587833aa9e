"""The options of each Spark job, declared once.

Two command lines run a job: ``meterlake job NAME`` (click, :mod:`meterlake.cli.job_cmd`, which calls the job's
``run`` in its own process) and the job's own ``main`` (argparse, ``spark-submit jobs/NAME/job.py …``,
:func:`jobs.lakeio.job_main`). Both are made from :data:`JOBS`. The module is light on purpose: no pyspark, no
click, nothing that reads files at import; the CLI reads it for every ``meterlake … --help``, and importing a job
module (pyspark) costs seconds.

An option's ``dest`` is the name both sides give its value: the attribute of the job main's parsed arguments
(and a key of its ``--dry-run`` answer) and the argument of the click command's body.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import date

from meterlake.settlement_runs import RUNS

STORE_GROUP = "meterlake-store"  # streaming.store.consumer's consumer group: its lag is not a difference
KINDS = ("text", "flag", "date", "dates", "run", "count", "files")


@dataclass(frozen=True)
class Option:
    flag: str               # "--from"
    dest: str               # "first"
    kind: str = "text"      # one of KINDS: dates and files repeat; run is a settlement run; count an int >= 0
    help: str = ""
    required: bool = False
    default: object = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.flag}: kind {self.kind!r} is none of {KINDS}")


@dataclass(frozen=True)
class Job:
    script: str             # the spark-submit script: the prog of its argparse main
    options: tuple[Option, ...]
    force: bool = True      # `meterlake job NAME --force`; False for a job that always runs (its spark-submit
    #                         main takes --force all the same, as it always has)


MASTER = Option("--master", "master", help="Spark master: local[*] or spark://host:port (default: the configured "
                                           "one, or the local stack's standalone master when it runs).")
FORCE = Option("--force", "force", "flag", help="Run even if the inputs are unchanged since the last run.")

_DATE = Option("--date", "date", "date", "The settlement date (YYYY-MM-DD).", required=True)
_FIRST = Option("--from", "first", "date", "The first settlement date (YYYY-MM-DD).", required=True)
_LAST = Option("--to", "last", "date", "The last settlement date (YYYY-MM-DD).", required=True)
_START = Option("--from", "start", "date", "First local date (YYYY-MM-DD).", required=True)
_END = Option("--to", "end", "date", "The local date it ends before (exclusive).", required=True)


def _dates(default: str) -> Option:
    return Option("--date", "date", "dates", f"A settlement date (repeatable); default {default}.")


JOBS: dict[str, Job] = {
    "clean": Job("jobs/clean/job.py", (_dates("every date in the lake"),)),
    "settle": Job("jobs/settle/job.py", (
        _DATE, Option("--run", "run", "run", required=True),
        Option("--llf", "llf", "files", "Line loss factors: a D0265 file (.ptf, or the distributor's .zip); "
                                        "repeatable."))),
    "settle-diff": Job("jobs/settle_diff/job.py", (
        _DATE, Option("--from", "from_run", "run", required=True), Option("--to", "to_run", "run", required=True),
        Option("--limit", "limit", "count", "Changes listed in the answer.", default=100))),
    "quality": Job("jobs/quality/job.py", (_dates("every cleaned date"),)),
    "bill": Job("jobs/bill/job.py", (_START, _END, Option("--account", "account", help="Bill only this account."),
                                     Option("--summary", "summary", "flag", "Answer with the bills' counts and "
                                            "totals instead of listing every bill (the lake has them all the "
                                            "same): for a run of many meters."))),
    "bill-check": Job("jobs/bill/check.py", (_START, _END), force=False),
    "backfill": Job("jobs/backfill/job.py", (
        _FIRST, _LAST,
        Option("--meter-point", "meter_point", help="Rebuild only this meter point's reads (its identifier, as in "
                                                    "the store).")), force=False),
    "reconcile": Job("jobs/reconcile/job.py", (
        _FIRST, _LAST,
        Option("--store-group", "store_group", help="The store's Kafka consumer group (its lag is not a "
                                                    "difference).", default=STORE_GROUP)), force=False),
    "serve": Job("jobs/serve/job.py", (_FIRST, _LAST), force=False),
}


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not >= 0")
    return value


def add_arguments(parser: argparse.ArgumentParser, options: tuple[Option, ...]) -> None:
    """``options`` as argparse arguments (a job's spark-submit main): dates parsed, runs checked."""
    for o in options:
        common = {"dest": o.dest, "help": o.help or None}
        if o.kind == "flag":
            parser.add_argument(o.flag, action="store_true", **common)
        elif o.kind in ("dates", "files"):
            parser.add_argument(o.flag, action="append", default=[],
                                type=date.fromisoformat if o.kind == "dates" else str, **common)
        else:
            typed = {"date": {"type": date.fromisoformat}, "run": {"choices": RUNS}, "count": {"type": _count},
                     "text": {}}[o.kind]
            parser.add_argument(o.flag, required=o.required, default=o.default, **typed, **common)
