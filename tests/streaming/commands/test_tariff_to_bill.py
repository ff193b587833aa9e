"""A tariff change the meter confirmed reaches the next bill: set_tariff → the gateway acknowledges → `meters
tariff-changes --load` adds the account row to the lake's accounts → `job bill` prices the days from the UK day of
the confirmation at the new tariff, the days before at the old one."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from jobs.bill import inputs
from jobs.bill import job as bill
from jobs.clean import job as clean
from jobs.registry import job as registry_job
from meterlake import calendar, pseudonym
from meterlake.lake.files import open_lake
from streaming.commands import service
from tests.jobs.helpers import day_of, write_lake_reads
from tests.streaming.commands import stack

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def test_a_confirmed_tariff_change_is_billed_from_the_day_it_was_confirmed(kafka_stack, cassandra_stack, spark,
                                                                           tmp_path):
    # GIVEN a meter on account ACC-1 at tariff OLD (20 p/kWh), and tariff NEW (30 p/kWh) loaded beside it
    (mp,) = stack.meter_points(1, start=700)
    settings = stack.settings_for(cassandra_stack, stack.write_registrations(tmp_path / "reg.csv", [mp]))
    inputs.load_tariffs(settings, [stack.write_tariffs(tmp_path / "old.toml", ["OLD"], 20.0),
                                   stack.write_tariffs(tmp_path / "new.toml", ["NEW"], 30.0)])
    (tmp_path / "accounts.csv").write_text(f"account,meter_point,tariff,effective_from\nACC-1,{mp},OLD,2020-01-01\n")
    inputs.load_accounts(settings, tmp_path / "accounts.csv")

    # WHEN the meter is set to NEW and acknowledges it
    svc, gw = stack.run_service(settings), stack.run_gateway(settings, tmp_path / "devices.json")
    try:
        service.submit(settings, mp, "set_tariff", {"tariff": "NEW"})
        deadline = time.monotonic() + 60
        while "tariff" not in service.show(settings, mp)["confirmed"]:
            assert time.monotonic() < deadline, "the tariff change was not confirmed in time"
            time.sleep(0.2)
    finally:
        svc.stop()
        gw.stop()
    day = calendar.locate(service.show(settings, mp)["confirmed"]["tariff"]["confirmed_at"])[0]

    # ... the confirmed change is loaded as an account row (again: nothing new) ...
    code, loaded = stack.cli(settings, "meters", "tariff-changes", "--since", str(day), "--load")
    assert code == 0, loaded
    assert (loaded["accounts"], loaded["rows"], loaded["unmatched"]) == ("lake", 1, [])
    assert (loaded["loaded"]["loaded"], loaded["loaded"]["rows"]) == (1, 2)
    code, again = stack.cli(settings, "meters", "tariff-changes", "--since", str(day), "--load")
    assert (code, again["rows"], again["loaded"]) == (0, 0, None)

    # ... and the meter's half-hours of the day before, that day and the day after (0.5 kWh each) are billed
    lake = open_lake(settings)
    lake_id = pseudonym.for_settings(settings).one(mp)
    days = [day - timedelta(days=1), day, day + timedelta(days=1)]
    for n, d in enumerate(days):
        write_lake_reads(lake, day_of(lake_id, d, 0.5), offset=n)
    registry_job.run(settings, tmp_path / "reg.csv")
    clean.run(settings, days, spark=spark)
    answer = bill.run(settings, days[0], days[-1] + timedelta(days=1), spark=spark)

    # THEN the day before is billed at OLD, the day of the confirmation and after at NEW (a month's end may cut a
    # bill in two: compared by day)
    tariff_of_day = {b["bill_from"] + timedelta(days=i): b["tariff"] for b in answer["bills"] for i in range(b["days"])}
    assert tariff_of_day == {days[0]: "OLD", days[1]: "NEW", days[2]: "NEW"}
    assert {b["account"] for b in answer["bills"]} == {"ACC-1"}
    for b in answer["bills"]:
        unit = {"OLD": 20.0, "NEW": 30.0}[b["tariff"]]
        assert [(ln["band"], ln["unit_p"]) for ln in b["lines"]] == [("all", unit)]
        assert b["energy_kwh"] > 0 and b["lines"][0]["amount_p"] == pytest.approx(b["energy_kwh"] * unit)
