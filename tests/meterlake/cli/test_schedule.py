"""The settlement calendar on a schedule, with a fake clock: SF, then R1, each followed by its report; missed runs
caught up on start; runs recorded in the lake."""
from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from meterlake.cli.schedule import RECORD, Scheduler, due_runs
from meterlake.lake.files import open_lake
from tests.portfolio import AUTUMN

pytestmark = pytest.mark.timeout(1800)  # the first test using settled_portfolio builds it with Spark


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


class FakeClock:
    def __init__(self, now: str):
        self.now = _at(now)

    def __call__(self) -> datetime:
        return self.now


def test_a_run_is_due_once_its_cut_off_has_passed_in_cut_off_order():
    # SF of Sunday 27 October 2024: cut-off day Friday 1 November (5 working days), due at its end (UK midnight,
    # GMT then); R1: 27 November, due at 28 November 00:00Z. SF of Monday 28 October: Monday 4 November.
    days, wanted = [date(2024, 10, 28), AUTUMN], ["SF", "R1"]
    assert due_runs(days, wanted, _at("2024-11-01T23:59:59+00:00"), set()) == []
    assert [(r["settlement_date"], r["run"]) for r in due_runs(days, wanted, _at("2024-11-02T00:00:00+00:00"),
                                                                set())] == [(AUTUMN, "SF")]
    everything = due_runs(days, wanted, _at("2024-12-01T00:00:00+00:00"), set())
    assert [(r["settlement_date"].isoformat(), r["run"], r["due_utc"].isoformat()) for r in everything] == [
        ("2024-10-27", "SF", "2024-11-02T00:00:00+00:00"),
        ("2024-10-28", "SF", "2024-11-05T00:00:00+00:00"),
        ("2024-10-27", "R1", "2024-11-28T00:00:00+00:00"),
        ("2024-10-28", "R1", "2024-11-29T00:00:00+00:00"),
    ]
    assert due_runs(days, wanted, _at("2024-12-01T00:00:00+00:00"), {("2024-10-27", "SF"), ("2024-10-28", "SF")}
                    )[0]["run"] == "R1"


def test_the_trigger_comes_from_the_configured_cron_in_uk_time(tmp_path):
    from meterlake import config

    settings = config.load(None)
    settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={"lake": str(tmp_path)}),
                                           "schedule": settings.schedule.model_copy(update={"cron": "30 6 * * 1-5"})})
    # Saturday 26 October 2024 (BST) -> Monday 28 October 06:30 GMT
    clock = FakeClock("2024-10-26T12:00:00+00:00")
    assert Scheduler(settings, clock=clock).next_trigger().isoformat() == "2024-10-28T06:30:00+00:00"
    clock.now = _at("2024-06-03T04:00:00+00:00")  # a Monday in summer: 06:30 BST is 05:30Z
    assert Scheduler(settings, clock=clock).next_trigger().isoformat() == "2024-06-03T05:30:00+00:00"


def test_the_runs_past_their_cut_off_and_not_done_are_exported_for_the_overdue_alert(tmp_path):
    from prometheus_client import REGISTRY

    from meterlake import config

    settings = config.load(None)
    settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={"lake": str(tmp_path)}),
                                           "schedule": settings.schedule.model_copy(update={"runs": ["SF", "R1"]})})
    # GIVEN two dates in the lake, at noon on 28 November 2024: both SFs and the R1 of 27 October (due at
    # 28 November 00:00Z) are past their cut-off, the R1 of 28 October (due 29 November) is not
    clock = FakeClock("2024-11-28T12:00:00+00:00")
    scheduler = Scheduler(settings, clock=clock, dates=[date(2024, 10, 27), date(2024, 10, 28)])
    # WHEN the scheduler exports what is due
    assert scheduler.export_due() == {"SF": 2, "R1": 1}
    # THEN the gauge says so per run
    assert REGISTRY.get_sample_value("meterlake_settlement_due_runs", {"service": "schedule", "run": "SF"}) == 2


@pytest.mark.slow
def test_a_fake_clock_triggers_sf_then_r1_each_with_its_report_and_a_restart_catches_up(settled_portfolio, spark):
    settings = settled_portfolio.settings
    settings = settings.model_copy(update={"schedule": settings.schedule.model_copy(
        update={"runs": ["SF", "R1"], "report_formats": ["html", "csv"]})})
    lake = open_lake(settings)
    lake.delete(RECORD)
    clock = FakeClock("2024-11-01T12:00:00+00:00")
    scheduler = Scheduler(settings, clock=clock, spark=spark, dates=[AUTUMN])
    # before SF's cut-off: nothing
    assert scheduler.tick() == []
    # just after it: SF, and its report
    clock.now = _at("2024-11-02T06:00:00+00:00")
    first = scheduler.tick()
    assert [(e["settlement_date"], e["run"], e["status"]) for e in first] == [("2024-10-27", "SF", "done")]
    sf_report = json.loads(lake.read_bytes("reports/2024-10-27/SF/manifest.json"))
    assert (sf_report["generated_at"], sf_report["previous_run"]) == ("2024-11-02T06:00:00Z", None)
    # SF is reproduced from the lake (the late data are after its cut-off): the same energy as first settled
    assert first[0]["consumption_kwh"] == pytest.approx(settled_portfolio.runs[(AUTUMN, "SF")]["totals"]
                                                        ["consumption_kwh"])
    assert scheduler.tick() == []  # recorded: not again
    # R1's cut-off passes: R1, compared with SF, and its report
    clock.now = _at("2024-11-28T06:00:00+00:00")
    second = scheduler.tick()
    assert [(e["run"], e["status"], e["previous_run"]) for e in second] == [("R1", "done", "SF")]
    r1_report = json.loads(lake.read_bytes("reports/2024-10-27/R1/manifest.json"))
    assert (r1_report["generated_at"], r1_report["previous_run"]) == ("2024-11-28T06:00:00Z", "SF")
    record = json.loads(lake.read_bytes(RECORD))["runs"]
    assert sorted(record) == ["2024-10-27/R1", "2024-10-27/SF"]
    assert record["2024-10-27/SF"]["due_utc"] == "2024-11-02T00:00:00Z"
    # a scheduler that was down for both cut-offs catches up on start, in calendar order
    lake.delete(RECORD)
    clock.now = _at("2024-12-01T00:00:00+00:00")
    caught_up = Scheduler(settings, clock=clock, spark=spark, dates=[AUTUMN]).tick()
    assert [e["run"] for e in caught_up] == ["SF", "R1"] and {e["status"] for e in caught_up} == {"done"}
