"""The settlement calendar on a schedule: every run of every date once its cut-off has passed, then its report.
It drives the jobs and the reports, so it sits on the top floor with the CLI (README, "Layout").

Run: ``meterlake schedule run`` (a service: APScheduler's cron trigger, ``schedule.cron`` in
``schedule.timezone``), or ``meterlake schedule run --once`` (catch up and exit: for cron, systemd timers or the
Airflow DAG in ``infra/airflow/``).

A run R of settlement date D is **due** once R's cut-off (:func:`meterlake.settlement_runs.cutoff_instant`, the end
of its cut-off day) has passed: every source the run may use was created by then. The dates are those of the lake
(on or after ``schedule.first_date``), the runs ``schedule.runs``. Each due run not yet recorded is, in the order
of its cut-off: settled (``jobs/settle``), compared with the previous run of the date (``jobs/settle_diff``), its
date measured (``jobs/quality``), and reported (:mod:`reports.settlement`). On start the scheduler catches up
every due run it missed (while it was down) before it waits for the next trigger.

Runs are recorded in the lake, ``_jobs/schedule/runs.json`` (one entry per date and run: when it was due, when it
ran, the settle status and digest, the report's path, or the error), so a restarted or second scheduler does not
run them again; a failed run is retried at the next trigger.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from meterlake import settlement_runs as runs
from meterlake.instants import iso_utc

log = logging.getLogger(__name__)

RECORD = "_jobs/schedule/runs.json"


def due_runs(dates: list[date], run_names: list[str], now: datetime, done: set[tuple[str, str]]) -> list[dict]:
    """The (date, run) pairs whose cut-off is at or before ``now`` and not ``done``, in the order of their cut-off
    (then date, then the calendar's order of runs): a pure function."""
    out = []
    for day in dates:
        for run in run_names:
            due = runs.cutoff_instant(day, run)
            if due <= now and (day.isoformat(), run) not in done:
                out.append({"settlement_date": day, "run": run, "due_utc": due})
    return sorted(out, key=lambda r: (r["due_utc"], r["settlement_date"], runs.RUNS.index(r["run"])))


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(expression: str, timezone: str):
    """APScheduler's trigger for a crontab line. APScheduler 3 numbers weekdays from Monday = 0, crontab from
    Sunday = 0 (7 too): numeric weekdays are given to it by name, so ``1-5`` stays Monday to Friday."""
    import re

    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) != 5:
        from meterlake.errors import UsageError

        raise UsageError(f"schedule.cron {expression!r}: a crontab line has 5 fields", cron=expression)
    minute, hour, day, month, weekday = fields
    weekday = re.sub(r"\d+", lambda m: _DAY_NAMES[int(m.group()) % 7], weekday)
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=timezone)


class Scheduler:
    """Looks for due runs at each :meth:`tick` and executes them; ``clock`` says what time it is (a test's fake
    clock, or the wall clock), ``spark`` is a session to reuse (else each job builds its own)."""

    def __init__(self, settings, *, clock: Callable[[], datetime] | None = None, spark=None,
                 dates: list[date] | None = None):
        from meterlake.lake.files import open_lake

        self.settings = settings
        self.config = settings.schedule
        for run in self.config.runs:
            runs.check_run(run)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.spark = spark
        self.lake = open_lake(settings)
        self._dates = dates

    def record(self) -> dict:
        data = self.lake.read_bytes(RECORD)
        return json.loads(data) if data else {"runs": {}}

    def _write_record(self, record: dict) -> None:
        self.lake.write_text(RECORD, json.dumps(record, indent=2, sort_keys=True))

    def dates(self) -> list[date]:
        found = self._dates if self._dates is not None else self.lake.dates()
        first = self.config.first_date
        return sorted(d for d in found if first is None or d >= first)

    def due(self) -> list[dict]:
        done = {tuple(k.split("/")) for k, v in self.record()["runs"].items() if v.get("status") == "done"}
        return due_runs(self.dates(), list(self.config.runs), self.clock(), done)

    def tick(self) -> list[dict]:
        """Execute every due run not yet recorded; what was done (one entry per run)."""
        done = []
        for item in self.due():
            done.append(self.execute(item["settlement_date"], item["run"], item["due_utc"]))
        return done

    def execute(self, day: date, run: str, due: datetime) -> dict:
        from jobs.quality import job as quality
        from jobs.settle import job as settle
        from jobs.settle_diff import job as settle_diff
        from reports import settlement as report

        started = self.clock()
        entry = {"settlement_date": day.isoformat(), "run": run, "due_utc": iso_utc(due),
                 "started_utc": iso_utc(started)}
        log.info("schedule: %s %s (due %s)", day, run, iso_utc(due))
        try:
            settled = settle.run(self.settings, day, run, spark=self.spark)
            record = self.record()["runs"]
            earlier = [r for r in runs.RUNS[:runs.RUNS.index(run)]
                       if record.get(f"{day.isoformat()}/{r}", {}).get("status") == "done"]
            if earlier:
                settle_diff.run(self.settings, day, earlier[-1], run, spark=self.spark)
            quality.run(self.settings, [day], spark=self.spark)
            written = report.run(self.settings, day, run, tuple(self.config.report_formats), now=self.clock())
            entry.update(status="done", settle_status=settled["status"], digest=settled["digest"],
                         consumption_kwh=settled["totals"]["consumption_kwh"], report=written["path"],
                         previous_run=earlier[-1] if earlier else None)
        except Exception as exc:  # recorded and retried at the next trigger; the scheduler keeps running
            log.exception("schedule: %s %s failed", day, run)
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        entry["finished_utc"] = iso_utc(self.clock())
        record = self.record()
        record["runs"][f"{day.isoformat()}/{run}"] = entry
        self._write_record(record)
        return entry

    def trigger(self):
        """The cron trigger of ``schedule.cron`` in ``schedule.timezone`` (APScheduler)."""
        return cron_trigger(self.config.cron, self.config.timezone)

    def next_trigger(self) -> datetime:
        now = self.clock()
        return self.trigger().get_next_fire_time(None, now).astimezone(UTC)

    def export_due(self) -> dict[str, int]:
        """Set the gauge of settlement runs past their cut-off and not done, per run (the alert rule
        SettlementRunOverdue); the counts."""
        from streaming import metrics

        counts = dict.fromkeys(self.config.runs, 0)
        for item in self.due():
            counts[item["run"]] += 1
        for run, n in counts.items():
            metrics.DUE_RUNS.labels("schedule", run).set(n)
        return counts

    def serve(self, stop) -> list[dict]:
        """Catch up, then tick at every trigger until ``stop`` (a threading.Event) is set; everything done."""
        from apscheduler.schedulers.background import BackgroundScheduler

        from streaming import metrics

        metrics.serve(self.settings, "schedule")
        done = self.tick()  # missed runs first
        scheduler = BackgroundScheduler(timezone=self.config.timezone)
        self.export_due()
        scheduler.add_job(lambda: done.extend(self.tick()), self.trigger(), id="settlement-runs",
                          max_instances=1, coalesce=True, misfire_grace_time=3600)
        scheduler.start()
        try:
            seconds = 0
            while not stop.wait(1.0):
                seconds += 1
                if seconds % 60 == 0:  # a run falls due at its cut-off, between the triggers
                    self.export_due()
        finally:
            scheduler.shutdown(wait=True)
        return done
