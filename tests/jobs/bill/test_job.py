"""The bill job on a real (local) lake: literal reads of three meters (flat, Economy 7, dynamic) over the 2023
autumn clock change, cleaned by the clean job, billed; a re-run is unchanged (a corrected read changing exactly
its bill: tests/jobs/bill/test_end_to_end.py). Expected money is worked out by hand in the comments."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from jobs.bill import inputs
from jobs.bill import job as bill
from jobs.clean import job as clean
from jobs.registry import job as registry_job
from meterlake import config, pseudonym
from meterlake.lake.files import open_lake
from tests.jobs.helpers import day_of, write_lake_reads

TINY_MDD = Path(__file__).resolve().parents[2] / "meterlake" / "data" / "mdd_tiny"
DAYS = [date(2023, 10, 28), date(2023, 10, 29), date(2023, 10, 30)]  # 48, 50, 48 half-hours
FLAT, E7, AGILE = "2000000000019", "2000000000028", "2000000000037"

TARIFFS = """
[tariffs.flat-20]
kind = "flat"
standing_p_per_day = 50
[[tariffs.flat-20.rates]]
effective_from = "2023-01-01"
unit_p = 20.0

[tariffs.e7]
kind = "tou"
standing_p_per_day = 40
[[tariffs.e7.rates]]
effective_from = "2023-01-01"
unit_p = { "00043" = 30.0, "00210" = 10.0 }

[tariffs.agile]
kind = "dynamic"
standing_p_per_day = 46.36
[tariffs.agile.prices]
file = "prices.csv"
time_column = "Period from"
time_format = "%d/%m/%Y %H:%M"
timezone = "Europe/London"
price_column = "Agile Import price (p/kWh)"
"""


def _price_csv() -> str:
    # 10 p every half-hour of the three days, but the 29th has 48 rows (the real file's defect): 01:00 and 01:30
    # once each, so its GMT repeats (01:00Z, 01:30Z) have no price
    rows = ["Period from,Agile Import price (p/kWh)"]
    for day in DAYS:
        rows += [f"{day:%d/%m/%Y} {h:02d}:{m:02d},10.00" for h in range(24) for m in (0, 30)]
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    base = tmp_path_factory.mktemp("bill-lake")
    (base / "lake.key").write_text("a key of the lake's pseudonyms, for this test only\n")
    s = config.load(None)
    return s.model_copy(update={"paths": s.paths.model_copy(update={"state_dir": base / "state",
                                                                    "lake": str(base / "lake")}),
                                "lake": s.lake.model_copy(update={"pseudonym_key_file": str(base / "lake.key")})})


@pytest.fixture(scope="module")
def lake_ids(settings):
    p = pseudonym.for_settings(settings)
    return {mp: p.one(mp) for mp in (FLAT, E7, AGILE)}


@pytest.fixture(scope="module")
def first(settings, lake_ids, spark, tmp_path_factory):
    files = tmp_path_factory.mktemp("bill-inputs")
    lake = open_lake(settings)
    # 0.5 kWh in every half-hour of the three days; the flat meter misses two half-hours on the 30th (estimated)
    tables = [day_of(lake_ids[mp], d, 0.5, skip=(10, 11) if (mp, d) == (FLAT, DAYS[2]) else ())
              for mp in (FLAT, E7, AGILE) for d in DAYS]
    for n, t in enumerate(tables):
        write_lake_reads(lake, t, offset=n)
    (files / "registry.csv").write_text("meter_point,gsp_group,supplier,profile_class,ssc,effective_from\n"
                                        f"{FLAT},_C,SUPA,1,0393,2023-01-01\n{E7},_C,SUPA,2,0151,2023-01-01\n"
                                        f"{AGILE},_C,SUPA,1,0393,2023-01-01\n")
    registry_job.run(settings, files / "registry.csv")
    (files / "tariffs.toml").write_text(TARIFFS)
    (files / "prices.csv").write_text(_price_csv())
    (files / "accounts.csv").write_text("account,meter_point,tariff,effective_from\n"
                                        f"ACC-1,{FLAT},flat-20,2023-01-01\nACC-2,{E7},e7,2023-01-01\n"
                                        f"ACC-3,{AGILE},agile,2023-01-01\n")
    loaded = {"mdd": inputs.load_mdd(settings, TINY_MDD),
              "tariffs": inputs.load_tariffs(settings, [files / "tariffs.toml"]),
              "accounts": inputs.load_accounts(settings, files / "accounts.csv")}
    clean.run(settings, DAYS, spark=spark)
    return loaded, bill.run(settings, DAYS[0], DAYS[-1] + timedelta(days=1), spark=spark)


def _bill(answer, account):
    return next(b for b in answer["bills"] if b["account"] == account)


def test_the_loads_answer(first):
    loaded, _ = first
    assert loaded["mdd"]["rows"] == {"ssc": 3, "tpr": 5, "clock_intervals": 49, "ssc_tpr": 5}
    assert [(t["tariff"], t["prices"], t["defects"]) for t in loaded["tariffs"]["tariffs"]] == [
        ("flat-20", 0, 0), ("e7", 0, 0), ("agile", 144, 1)]
    assert (loaded["accounts"]["loaded"], loaded["accounts"]["accounts"]) == (3, 3)


def test_a_flat_bill_with_estimated_energy(first, lake_ids):
    _, answer = first
    # 146 half-hours x 0.5 kWh = 73 kWh (1 kWh of it estimated) x 20 p = 1460.00; standing 3 x 50 = 150.00;
    # net 1610.00; VAT 80.50; total 1690.50 -> 1691 p
    assert _bill(answer, "ACC-1") == {
        "account": "ACC-1", "meter_point": lake_ids[FLAT], "tariff": "flat-20", "kind": "flat",
        "bill_from": date(2023, 10, 28), "bill_to": date(2023, 10, 31), "days": 3, "status": "complete",
        "lines": [{"band": "all", "kwh": 73.0, "unit_p": 20.0, "amount_p": 1460.0, "estimated_kwh": 1.0}],
        "energy_kwh": 73.0, "energy_p": 1460.0, "standing_p": 150.0, "net_p": 1610.0, "vat_rate": 0.05,
        "vat_p": 80.5, "total_p": 1691.0, "unpriced": []}


def test_an_economy7_bill_over_the_clock_change(first):
    _, answer = first
    # night (00210) 00:30-07:30 GMT: 14 half-hours on each day, 42 x 0.5 = 21 kWh x 10 p = 210.00;
    # day (00043): 104 x 0.5 = 52 kWh x 30 p = 1560.00; standing 120.00; net 1890.00; VAT 94.50; total 1985
    b = _bill(answer, "ACC-2")
    assert b["lines"] == [{"band": "00043", "kwh": 52.0, "unit_p": 30.0, "amount_p": 1560.0, "estimated_kwh": 0.0},
                          {"band": "00210", "kwh": 21.0, "unit_p": 10.0, "amount_p": 210.0, "estimated_kwh": 0.0}]
    assert (b["net_p"], b["vat_p"], b["total_p"], b["status"]) == (1890.0, 94.5, 1985.0, "complete")


def test_a_dynamic_bill_lists_the_half_hours_its_price_file_lacks(first):
    _, answer = first
    # 144 priced half-hours x 0.5 kWh x 10 p = 720.00; standing 3 x 46.36 = 139.08; net 859.08;
    # VAT 42.954 -> 42.95; total 902.03 -> 902; 01:00Z and 01:30Z on the 29th unpriced
    b = _bill(answer, "ACC-3")
    assert b["lines"] == [{"band": "dynamic", "kwh": 72.0, "unit_p": 10.0, "amount_p": 720.0, "estimated_kwh": 0.0}]
    assert (b["standing_p"], b["net_p"], b["vat_p"], b["total_p"]) == (139.08, 859.08, 42.95, 902.0)
    assert (b["status"], b["unpriced"]) == ("incomplete", [datetime(2023, 10, 29, 1, 0, tzinfo=UTC),
                                                           datetime(2023, 10, 29, 1, 30, tzinfo=UTC)])
    assert [(d["tariff"], d["local_date"], d["kind"]) for d in answer["defects"]] == [
        ("agile", date(2023, 10, 29), "period_count")]


def test_the_answer_keys_are_the_contract(first):
    _, answer = first
    assert list(answer) == ["status", "path", "digest", "from", "to", "bills", "defects", "message"]
    assert answer["status"] == "billed"


def test_a_rerun_is_unchanged(first, settings, spark):
    _, answer = first
    again = bill.run(settings, DAYS[0], DAYS[-1] + timedelta(days=1), spark=spark)
    assert (again["status"], again["bills"], again["digest"]) == ("unchanged", answer["bills"], answer["digest"])
    assert again["message"].startswith("2023-10-28 to 2023-10-31: 3 bill(s), 1 incomplete, £45.78 including VAT; "
                                       "inputs unchanged since ")


def test_the_bills_view(first, settings):
    from streaming.mirror.query import sql

    out = sql(open_lake(settings), "SELECT account, status, total_p FROM bills ORDER BY total_p")
    # the lake names accounts by pseudonym (tests/jobs/bill/test_account_pseudonyms.py)
    name = pseudonym.for_settings(settings).one
    assert [tuple(r) for r in out["rows"]] == [(name("ACC-3"), "incomplete", 902.0), (name("ACC-1"), "complete",
                                                                                        1691.0),
                                               (name("ACC-2"), "complete", 1985.0)]


def test_a_summary_run_writes_the_same_bills_and_answers_their_totals(first, settings, spark):
    _, answer = first
    again = bill.run(settings, DAYS[0], DAYS[-1] + timedelta(days=1), spark=spark, force=True, summary=True)
    assert list(again) == ["status", "path", "digest", "from", "to", "summary", "defects", "message"]
    assert (again["status"], again["digest"]) == ("billed", answer["digest"])  # the same files as the listing run
    # the three bills above: 73 + 73 + 72 kWh (1 estimated); totals 1691 + 1985 + 902 p; lines 1 + 2 + 1
    assert again["summary"] == {
        "bills": 3, "complete": 2, "incomplete": 1, "lines": 4, "meter_points": 3, "accounts": 3,
        "energy_kwh": 218.0, "estimated_kwh": 1.0, "energy_p": 3950.0, "standing_p": 409.08, "net_p": 4359.08,
        "vat_p": 217.95, "total_p": 4578.0, "unpriced_periods": 2}
    assert again["message"] == answer["message"]
