"""Billing end to end on the real stack: a generated portfolio (flat, Economy 7 and dynamic accounts, the
generator's tariffs and prices) → ingest → Kafka → mirror → lake → clean → bill; a re-run is unchanged; a corrected
read changes exactly its bill; the registers reconcile with the half-hours. Small on purpose: CI time matters."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from jobs.bill import check, inputs
from jobs.bill import job as bill
from jobs.clean import job as clean
from jobs.registry import job as registry_job
from meterlake import pseudonym
from meterlake.generate import Options, generate
from meterlake.lake.files import open_lake
from streaming.ingest.publish import ingest_paths
from streaming.mirror.consumer import Mirror
from streaming.mirror.query import sql
from tests.streaming.mirror.mirrorhelp import mirror_settings

pytestmark = pytest.mark.stack

TINY_MDD = Path(__file__).resolve().parents[2] / "meterlake" / "data" / "mdd_tiny"
START, DAYS = date(2024, 1, 8), 2
END = START + timedelta(days=DAYS)


def _mirror(settings) -> None:
    Mirror(settings).run(until_caught_up=True)


@pytest.fixture(scope="module")
def world(kafka_stack, spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("bill-e2e")
    settings = mirror_settings(kafka_stack, base / "lake")
    out = base / "portfolio"
    manifest = generate(Options(meters=8, days=DAYS, start=START, seed=11, economy7_share=0.4, gas_share=0.1,
                                lcl_meters=0, device_meters=0, read_every_days=1, defects={}), out)
    now = datetime.fromisoformat(manifest["valid_as_of"])
    results = ingest_paths([out / f["path"] for f in manifest["files"]], settings, now=now)
    assert {r.status for r in results} == {"accepted"}
    _mirror(settings)
    registry_job.run(settings, out / "registry.csv")
    inputs.load_mdd(settings, TINY_MDD)
    inputs.load_tariffs(settings, [out / "tariffs.toml"])
    inputs.load_accounts(settings, out / "accounts.csv")
    days = [START + timedelta(days=i) for i in range(DAYS)]
    clean.run(settings, days, spark=spark)
    first = bill.run(settings, START, END, spark=spark)
    return settings, out, manifest, days, first


def test_every_account_is_billed_complete_with_the_lakes_energy(world):
    settings, out, manifest, _, first = world
    assert first["status"] == "billed"
    assert len(first["bills"]) == manifest["counts"]["electricity"]
    assert {b["kind"] for b in first["bills"]} == {"flat", "tou", "dynamic"}
    assert {b["status"] for b in first["bills"]} == {"complete"} and first["defects"] == []
    # the energy billed is the clean half-hours' energy of those meters, summed independently by DuckDB
    lake = open_lake(settings)
    clean_kwh = sql(lake, "SELECT round(sum(value), 3) FROM clean_reads WHERE read_kind = 'interval' "
                          "AND NOT is_quarantined AND meter_point IN (SELECT meter_point FROM bills)")["rows"][0][0]
    assert round(sum(b["energy_kwh"] for b in first["bills"]), 3) == clean_kwh
    # an Economy 7 bill has the day and night registers of SSC 0151
    assert {tuple(ln["band"] for ln in b["lines"]) for b in first["bills"] if b["kind"] == "tou"} == {
        ("00043", "00210")}


def test_registers_reconcile_with_the_half_hours(world, spark):
    settings, *_ = world
    answer = check.run(settings, START, END, spark=spark)
    assert answer["checks"] and {c["status"] for c in answer["checks"]} == {"ok"}, answer["message"]
    assert {c["register"] for c in answer["checks"]} == {"S", "DY", "NT"}


def test_a_rerun_is_unchanged_and_a_correction_changes_exactly_its_bill(world, spark):
    settings, out, manifest, days, first = world
    again = bill.run(settings, START, END, spark=spark)
    assert (again["status"], again["digest"]) == ("unchanged", first["digest"])
    # GIVEN a corrected read for one flat account's meter: 5 kWh more in one half-hour, a later version
    flat = next(b for b in first["bills"] if b["kind"] == "flat")
    plain = next(line.split(",")[1] for line in (out / "accounts.csv").read_text().splitlines()[1:]
                 if line.split(",")[0] == flat["account"])
    assert pseudonym.for_settings(settings).one(plain) == flat["meter_point"]
    # (the generated read restated: same key, a later created_utc, another value)
    hh = "meter_point,meter_serial,register_id,read_kind,interval_start_utc,value,unit,quality,created_utc"
    line = next(ln for f in sorted((out / "hh").glob("HH_20240109_*_v1.csv")) for ln in f.read_text().splitlines()
                if ln.startswith(f"{plain},") and ",2024-01-09T12:00:00Z," in ln)
    fields = line.split(",")
    fields[5], fields[8] = "5.250", "2024-01-20T00:00:00Z"
    correction = out / "correction.csv"
    correction.write_text(f"{hh}\n{','.join(fields)}\n")
    original = sql(open_lake(settings), "SELECT value FROM reads WHERE meter_point = '" + flat["meter_point"]
                   + "' AND interval_start_utc = TIMESTAMPTZ '2024-01-09 12:00:00+00'")["rows"][0][0]
    [result] = ingest_paths([correction], settings, now=datetime.fromisoformat("2024-01-21T00:00:00+00:00"))
    assert result.status == "accepted"
    _mirror(settings)
    clean.run(settings, days, spark=spark)
    after = bill.run(settings, START, END, spark=spark)
    # THEN only that bill changed, by the energy difference
    changed = [b for b in after["bills"] if b not in first["bills"]]
    assert [b["account"] for b in changed] == [flat["account"]]
    assert round(changed[0]["energy_kwh"] - flat["energy_kwh"], 3) == round(5.25 - original, 3)
