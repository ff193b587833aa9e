"""meterlake.billing: bill periods, the rounding rule, and whole bills from literal half-hours."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from meterlake import billing, mdd, tariffs
from meterlake.billing import Account, BillPeriod, Energy

TINY = Path(__file__).parent / "data" / "mdd_tiny"
MP = "1200000000014"


def z(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def flat(name="flat", **rates) -> tariffs.Tariff:
    return tariffs.Tariff(name, "flat", tuple(
        tariffs.Rate(date.fromisoformat(d), {"all": D(p)}, D("53.35")) for d, p in sorted(rates.items())))


E7 = tariffs.Tariff("e7", "tou", (tariffs.Rate(date(2024, 1, 1), {"00043": D("32.0"), "00210": D("15.0")},
                                               D("50.0")),))
AGILE = tariffs.Tariff("agile", "dynamic", (tariffs.Rate(date.min, {}, D("46.36")),))


def test_bills_cut_at_bill_day_tariff_change_and_rate_change():
    # GIVEN a flat tariff whose rate changes on 10 January and the account moving to Economy 7 on 20 January
    tariffs_ = {"flat": flat(**{"2024-01-01": "28.62", "2024-01-10": "24.50"}), "e7": E7}
    accounts = [Account("A1", MP, "flat", date(2024, 1, 1)), Account("A1", MP, "e7", date(2024, 1, 20))]
    # WHEN billed from 1 January to 15 February
    bills = billing.bill_periods(accounts, tariffs_, date(2024, 1, 1), date(2024, 2, 15))
    # THEN four bills
    assert bills == [BillPeriod("A1", MP, "flat", date(2024, 1, 1), date(2024, 1, 10)),
                     BillPeriod("A1", MP, "flat", date(2024, 1, 10), date(2024, 1, 20)),
                     BillPeriod("A1", MP, "e7", date(2024, 1, 20), date(2024, 2, 1)),
                     BillPeriod("A1", MP, "e7", date(2024, 2, 1), date(2024, 2, 15))]


def test_bill_day_15_and_an_account_that_ends():
    accounts = [Account("A2", MP, "flat", date(2024, 1, 3), date(2024, 3, 1), bill_day=15)]
    bills = billing.bill_periods(accounts, {"flat": flat(**{"2024-01-01": "28.62"})}, date(2024, 1, 1),
                                 date(2024, 6, 1))
    assert [(b.bill_from, b.bill_to, b.days) for b in bills] == [
        (date(2024, 1, 3), date(2024, 1, 15), 12), (date(2024, 1, 15), date(2024, 2, 15), 31),
        (date(2024, 2, 15), date(2024, 3, 1), 15)]


def test_standing_charge_over_a_partial_period_and_half_up_rounding():
    # 12 days x 53.35 p = 640.20 p; 3.5 kWh x 28.621 p = 100.1735 -> 100.17 p
    out = billing.price_bill([Energy("all", D("3.5"), D("0.5"), D("3.5") * D("28.621"), D("28.621"))], days=12,
                             standing_p_per_day=D("53.35"), vat_rate=D("0.05"))
    assert out["lines"] == [{"band": "all", "kwh": D("3.5"), "unit_p": D("28.621"), "amount_p": D("100.17"),
                             "estimated_kwh": D("0.5")}]
    assert (out["energy_p"], out["standing_p"], out["net_p"]) == (D("100.17"), D("640.20"), D("740.37"))
    # VAT 5 % of 740.37 = 37.0185 -> 37.02; total 777.39 -> 777 p
    assert (out["vat_p"], out["total_p"]) == (D("37.02"), D("777"))


def test_vat_half_a_hundredth_rounds_up_and_the_total_to_the_penny():
    # net 100.10 p: VAT 5.005 -> 5.01 (half-up, not to even); total 105.11 -> 105
    out = billing.price_bill([Energy("all", D("1"), D("0"), D("100.10"), D("100.10"))], days=0,
                             standing_p_per_day=D("0"), vat_rate=D("0.05"))
    assert (out["net_p"], out["vat_p"], out["total_p"]) == (D("100.10"), D("5.01"), D("105"))
    # a line of exactly 0.125 p rounds to 0.13 p; VAT 20 % of 0.13 = 0.026 -> 0.03; total 0.16 -> 0
    out = billing.price_bill([Energy("all", D("0.005"), D("0"), D("0.125"), D("25"))], days=0,
                             standing_p_per_day=D("0"), vat_rate=D("0.2"))
    assert (out["energy_p"], out["vat_p"], out["total_p"]) == (D("0.13"), D("0.03"), D("0"))


@pytest.fixture(scope="module")
def register_of():
    return mdd.Mdd.from_tables(mdd.read_dir(TINY)).register_of


@pytest.mark.parametrize("day, halfhours, lines", [
    # 1 kWh at 00:30 and 2 kWh at 08:00 UK time. Winter: 00:30 is night, 08:00 day.
    pytest.param(date(2024, 1, 15), [(z(2024, 1, 15, 0, 30), 1), (z(2024, 1, 15, 8, 0), 2)],
                 [("00043", D(2), D("64.00")), ("00210", D(1), D("15.00"))], id="winter"),
    # Summer: the night is 00:30-07:30 GMT = 01:30-08:30 BST, so 00:30 BST is day and 08:00 BST night.
    pytest.param(date(2024, 7, 15), [(z(2024, 7, 14, 23, 30), 1), (z(2024, 7, 15, 7, 0), 2)],
                 [("00043", D(1), D("32.00")), ("00210", D(2), D("30.00"))], id="summer"),
])
def test_an_economy7_day_under_ssc_0151(register_of, day, halfhours, lines):
    bill = billing.bill_halfhours([(t, kwh, False) for t, kwh in halfhours], E7, bill_from=day,
                                  bill_to=day + timedelta(days=1), ssc="0151",
                                  register_of=register_of)
    assert [(ln["band"], ln["kwh"], ln["amount_p"]) for ln in bill["lines"]] == lines
    assert bill["status"] == "complete" and bill["standing_p"] == D("50.00")


def test_a_meter_without_ssc_on_a_tou_tariff_is_unpriced(register_of):
    bill = billing.bill_halfhours([(z(2024, 1, 15, 0, 30), 1, False)], E7, bill_from=date(2024, 1, 15),
                                  bill_to=date(2024, 1, 16), ssc=None, register_of=register_of)
    assert (bill["status"], bill["unpriced"], bill["lines"]) == ("incomplete", [z(2024, 1, 15, 0, 30)], [])


def _every_halfhour(day: date, kwh: str) -> list[tuple[datetime, D, bool]]:
    return [(t, D(kwh), False) for t in tariffs.halfhours(day, day + timedelta(days=1))]


def test_a_50_period_day_on_a_dynamic_tariff():
    # 0.5 kWh in each of 50 half-hours; 20 p except the GMT repeat of 01:00-02:00 (01:00Z, 01:30Z) at 40 p
    day = date(2023, 10, 29)
    prices = {t: D("20") for t, _, _ in _every_halfhour(day, "0")} | {z(2023, 10, 29, 1, 0): D("40"),
                                                                       z(2023, 10, 29, 1, 30): D("40")}
    bill = billing.bill_halfhours(_every_halfhour(day, "0.5"), AGILE, bill_from=day, bill_to=date(2023, 10, 30),
                                  prices=prices)
    # 48 x 0.5 x 20 + 2 x 0.5 x 40 = 520 p for 25 kWh (average 20.8 p); standing 46.36; VAT 28.318 -> 28.32
    assert bill["lines"] == [{"band": "dynamic", "kwh": D("25.0"), "unit_p": D("20.8000"), "amount_p": D("520.00"),
                              "estimated_kwh": D(0)}]
    assert (bill["net_p"], bill["vat_p"], bill["total_p"], bill["status"]) == (D("566.36"), D("28.32"), D("595"),
                                                                              "complete")


def test_a_46_period_day_on_a_dynamic_tariff_with_a_missing_price():
    day = date(2024, 3, 31)
    prices = {t: D("20") for t, _, _ in _every_halfhour(day, "0")}
    del prices[z(2024, 3, 31, 12, 0)]
    bill = billing.bill_halfhours(_every_halfhour(day, "0.5"), AGILE, bill_from=day, bill_to=date(2024, 4, 1),
                                  prices=prices)
    # 45 priced half-hours x 0.5 kWh x 20 p = 450 p; the 46th listed, not billed
    assert [(ln["kwh"], ln["amount_p"]) for ln in bill["lines"]] == [(D("22.5"), D("450.00"))]
    assert (bill["status"], bill["unpriced"]) == ("incomplete", [z(2024, 3, 31, 12, 0)])


def test_accounts_csv_problems_name_line_and_field():
    text = ("account,meter_point,tariff,effective_from,bill_day\n"
            f"A1,{MP},flat,2024-01-01,\n"
            "A2,123,flat,2024-01-01,31\n")
    accounts, problems = billing.parse_accounts(text, "accounts.csv")
    assert accounts == [Account("A1", MP, "flat", date(2024, 1, 1))]
    assert problems == [
        {"line": 3, "field": "meter_point", "problem": "'123' is not an electricity MPAN core or LCL household id"},
        {"line": 3, "field": "bill_day", "problem": "'31' is not a day 1-28"}]


def test_a_tou_bill_is_cut_where_the_meters_ssc_changes():
    bills = [BillPeriod("A1", MP, "e7", date(2024, 1, 1), date(2024, 2, 1)),
             BillPeriod("A2", "P2", "flat", date(2024, 1, 1), date(2024, 2, 1))]
    registrations = {MP: [(date(2023, 1, 1), None, "0393"), (date(2024, 1, 10), None, "0151")]}
    assert billing.with_ssc(bills, registrations, {"e7"}) == [
        BillPeriod("A1", MP, "e7", date(2024, 1, 1), date(2024, 1, 10), "0393"),
        BillPeriod("A1", MP, "e7", date(2024, 1, 10), date(2024, 2, 1), "0151"),
        BillPeriod("A2", "P2", "flat", date(2024, 1, 1), date(2024, 2, 1))]
