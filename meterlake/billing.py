"""Bills: accounts, bill periods, and the money of a bill (lines, standing charge, VAT, rounding). Pure Python, no
Spark: the bill job (jobs/bill/job.py) sums the energy per bill and band with Spark and prices it here, and a
notebook's tariff what-if calls :func:`bill_halfhours` on a household's half-hours with the same rules.

Accounts CSV (``meterlake accounts load FILE``): ``account, meter_point, tariff, effective_from`` required,
``effective_to`` (exclusive) and ``bill_day`` (1-28, default 1) optional. A row applies from its effective_from
until its effective_to or the next row of the same account and meter point, so a tariff change is a new row.

Bill periods (:func:`bill_periods`): each account's rows are cut at every ``bill_day`` (day 1: calendar months),
at the run's ``--from``/``--to``, at the account's changes and at the tariff's dated rate changes, so each bill has
one tariff, one set of unit rates and one standing charge; a time-of-use bill also where the meter's SSC changes
in the registry (:func:`with_ssc`). Dates are UK local dates, ``bill_to`` exclusive.

Rounding (:func:`price_bill`), the one rule:

1. a line's ``amount_p`` is the exact sum over its half-hours of kWh × p/kWh, rounded half-up to 0.01 p;
2. ``energy_p`` is the sum of the lines; ``standing_p`` = days × p/day, rounded half-up to 0.01 p;
3. ``net_p`` = energy_p + standing_p; ``vat_p`` = net_p × the VAT rate, rounded half-up to 0.01 p;
4. ``total_p`` = net_p + vat_p, rounded half-up to the whole penny.

Half-hours with energy but no price (no band for the meter's SSC, no price in the file) are listed in
``unpriced``, not billed, and make the bill ``incomplete``.
"""
from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from meterlake import ids
from meterlake.tariffs import DYNAMIC_BAND, Tariff, band_of, money, unit_price

CENT = Decimal("0.01")
PENNY = Decimal("1")
UNIT_P_PLACES = Decimal("0.0001")
DEFAULT_VAT_RATE = Decimal("0.05")  # domestic electricity

ACCOUNT_REQUIRED = ("account", "meter_point", "tariff", "effective_from")
ACCOUNT_OPTIONAL = ("effective_to", "bill_day")


def round_p(value: Decimal, places: Decimal = CENT) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Account:
    account: str
    meter_point: str
    tariff: str
    effective_from: date
    effective_to: date | None = None
    bill_day: int = 1


def parse_accounts(text: str, source: str) -> tuple[list[Account], list[dict]]:
    """The accounts of a CSV's text and the problems (``{"line", "field", "problem"}``); the caller refuses the
    file when there is any."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in ACCOUNT_REQUIRED if c not in header]
    unknown = [c for c in header if c not in ACCOUNT_REQUIRED + ACCOUNT_OPTIONAL]
    if not header or missing or unknown:
        detail = "; ".join(filter(None, [missing and f"missing {missing}", unknown and f"unknown {unknown}"]))
        return [], [{"line": 1, "field": None, "problem": f"header: {detail or 'empty file'}"}]
    out, problems = [], []
    for line, values in enumerate(reader, 2):
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append({"line": line, "field": None, "problem": f"{len(values)} fields, the header has "
                                                                      f"{len(header)}"})
            continue
        row = {k: v.strip() for k, v in zip(header, values, strict=True)}
        bad = []
        if not row["account"]:
            bad.append(("account", "empty"))
        mp = row["meter_point"]
        if not (ids.lcl_problem(mp) is None or ids.fuel_of(mp) == "electricity"):
            bad.append(("meter_point", f"{mp!r} is not an electricity MPAN core or LCL household id"))
        if not row["tariff"]:
            bad.append(("tariff", "empty"))
        dates = {}
        for name in ("effective_from", "effective_to"):
            text_value = row.get(name, "")
            if not text_value:
                dates[name] = None
                continue
            try:
                dates[name] = date.fromisoformat(text_value)
            except ValueError:
                bad.append((name, f"{text_value!r} is not a date (YYYY-MM-DD)"))
                dates[name] = None
        if dates.get("effective_from") is None and not any(f == "effective_from" for f, _ in bad):
            bad.append(("effective_from", "empty"))
        if dates["effective_from"] and dates["effective_to"] and dates["effective_to"] <= dates["effective_from"]:
            bad.append(("effective_to", f"{dates['effective_to']} is not after effective_from"))
        bill_day = row.get("bill_day") or "1"
        if not (bill_day.isdigit() and 1 <= int(bill_day) <= 28):
            bad.append(("bill_day", f"{bill_day!r} is not a day 1-28"))
        problems += [{"line": line, "field": f, "problem": p} for f, p in bad]
        if not bad:
            out.append(Account(row["account"], mp, row["tariff"], dates["effective_from"], dates["effective_to"],
                               int(bill_day)))
    return out, problems


# ------------------------------------------------------------------------------------------------ bill periods


@dataclass(frozen=True)
class BillPeriod:
    account: str
    meter_point: str
    tariff: str
    bill_from: date
    bill_to: date  # exclusive
    ssc: str | None = None  # the meter's SSC over the bill (tou bills: :func:`with_ssc`)

    @property
    def days(self) -> int:
        return (self.bill_to - self.bill_from).days


def _bill_day_starts(start: date, end: date, bill_day: int) -> list[date]:
    """The dates in (start, end) whose day of month is ``bill_day``."""
    out = []
    year, month = start.year, start.month
    while True:
        d = date(year, month, bill_day)
        if d >= end:
            return out
        if d > start:
            out.append(d)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def bill_periods(accounts: Iterable[Account], tariffs: dict[str, Tariff], start: date, end: date) -> list[BillPeriod]:
    """The bills of ``accounts`` for local dates ``start`` to ``end`` (exclusive), sorted (see the module
    docstring). An account whose tariff is not in ``tariffs`` is skipped by the caller's check, not here."""
    rows: dict[tuple[str, str], list[Account]] = {}
    for a in accounts:
        rows.setdefault((a.account, a.meter_point), []).append(a)
    out = []
    for key in sorted(rows):
        ordered = sorted(rows[key], key=lambda a: a.effective_from)
        for i, a in enumerate(ordered):
            until = ordered[i + 1].effective_from if i + 1 < len(ordered) else None
            stop = min(d for d in (a.effective_to, until, end) if d is not None)
            begin = max(a.effective_from, start)
            if begin >= stop:
                continue
            tariff = tariffs.get(a.tariff)
            changes = [] if tariff is None else [d for d in tariff.changes() if begin < d < stop]
            cuts = sorted({begin, stop, *_bill_day_starts(begin, stop, a.bill_day), *changes})
            out += [BillPeriod(a.account, a.meter_point, a.tariff, lo, hi) for lo, hi in itertools.pairwise(cuts)]
    return sorted(out, key=lambda b: (b.account, b.meter_point, b.bill_from))


def with_ssc(bills: list[BillPeriod], registrations: dict[str, list[tuple[date, date | None, str | None]]],
             tou: set[str]) -> list[BillPeriod]:
    """``bills`` with the SSC of each bill on a tariff in ``tou`` (a band needs it), cut where the meter's
    registration changes within the bill, so a bill has one SSC. ``registrations``: per meter point, its registry
    rows ``(effective_from, effective_to or None, ssc)``; in force on a day is the latest effective_from at or
    before it whose effective_to is after it (the registry's rule). No registration: ``ssc`` None (unpriced)."""
    def ssc_on(rows, day):
        found = [r for r in rows if r[0] <= day and (r[1] is None or day < r[1])]
        return max(found, key=lambda r: r[0])[2] if found else None

    out = []
    for b in bills:
        if b.tariff not in tou:
            out.append(b)
            continue
        rows = registrations.get(b.meter_point, [])
        cuts = sorted({b.bill_from, b.bill_to, *(d for r in rows for d in r[:2] if d and b.bill_from < d < b.bill_to)})
        pieces = [(lo, hi, ssc_on(rows, lo)) for lo, hi in itertools.pairwise(cuts)]
        merged: list[list] = []
        for lo, hi, ssc in pieces:  # adjacent pieces under the same SSC stay one bill
            if merged and merged[-1][2] == ssc:
                merged[-1][1] = hi
            else:
                merged.append([lo, hi, ssc])
        out += [BillPeriod(b.account, b.meter_point, b.tariff, lo, hi, ssc) for lo, hi, ssc in merged]
    return out


# ------------------------------------------------------------------------------------------------------ money


@dataclass(frozen=True)
class Energy:
    """A bill's energy in one band: kWh (exact, from whole Wh), of which estimated, and the exact sum of
    kWh × p/kWh over its half-hours (``exact_p``), with ``unit_p`` the band's rate (None for dynamic)."""

    band: str
    kwh: Decimal
    estimated_kwh: Decimal
    exact_p: Decimal
    unit_p: Decimal | None


def price_bill(energy: Iterable[Energy], *, days: int, standing_p_per_day: Decimal, vat_rate: Decimal) -> dict:
    """The bill's money by the rounding rule of the module docstring: ``lines`` ([{band, kwh, unit_p, amount_p,
    estimated_kwh}], by band), ``energy_kwh``, ``estimated_kwh``, ``energy_p``, ``standing_p``, ``net_p``,
    ``vat_rate``, ``vat_p``, ``total_p`` (Decimals). A dynamic line's ``unit_p`` is its average (amount / kWh,
    to 0.0001 p)."""
    lines = []
    for e in sorted(energy, key=lambda e: e.band):
        amount = round_p(e.exact_p)
        unit = e.unit_p
        if unit is None:
            unit = round_p(e.exact_p / e.kwh, UNIT_P_PLACES) if e.kwh else Decimal(0)
        lines.append({"band": e.band, "kwh": e.kwh, "unit_p": unit, "amount_p": amount,
                      "estimated_kwh": e.estimated_kwh})
    energy_p = sum((line["amount_p"] for line in lines), Decimal(0))
    standing_p = round_p(days * money(standing_p_per_day))
    net_p = energy_p + standing_p
    vat_rate = money(vat_rate)
    vat_p = round_p(net_p * vat_rate)
    return {"lines": lines, "energy_kwh": sum((line["kwh"] for line in lines), Decimal(0)),
            "estimated_kwh": sum((line["estimated_kwh"] for line in lines), Decimal(0)),
            "energy_p": energy_p, "standing_p": standing_p, "net_p": net_p, "vat_rate": vat_rate, "vat_p": vat_p,
            "total_p": round_p(net_p + vat_p, PENNY)}


def bill_halfhours(halfhours: Iterable[tuple[datetime, float | Decimal, bool]], tariff: Tariff, *, bill_from: date,
                   bill_to: date, ssc: str | None = None, register_of=None,
                   prices: dict[datetime, Decimal] | None = None, vat_rate: Decimal = DEFAULT_VAT_RATE) -> dict:
    """One bill from a household's half-hours ``(UTC start, kWh, is_estimated)`` of local dates ``bill_from`` to
    ``bill_to`` (exclusive), under ``tariff`` (the rate in force at ``bill_from``; the job cuts bills where it
    changes): :func:`price_bill`'s answer plus ``status`` and ``unpriced`` (UTC starts). ``register_of``:
    :meth:`meterlake.mdd.Mdd.register_of` for a tou tariff; ``prices``: a dynamic tariff's
    (:func:`meterlake.tariffs.read_prices`). The job's prices are this function's rules, applied in Spark."""
    from meterlake import calendar as cal

    sums: dict[str, list] = {}
    unpriced = []
    for start, kwh, estimated in halfhours:
        if not bill_from <= cal.locate(start)[0] < bill_to:
            continue
        kwh = money(kwh)
        band = band_of(tariff, start, ssc, register_of)
        price = unit_price(tariff, band, start, prices)
        if price is None:
            if kwh:
                unpriced.append(start)
            continue
        s = sums.setdefault(band, [Decimal(0), Decimal(0), Decimal(0), price])
        s[0] += kwh
        s[1] += kwh if estimated else 0
        s[2] += kwh * price
    rate = tariff.rate_on(bill_from)
    energy = [Energy(band, k, est, exact, None if band == DYNAMIC_BAND else unit)
              for band, (k, est, exact, unit) in sums.items()]
    money_ = price_bill(energy, days=(bill_to - bill_from).days, vat_rate=vat_rate,
                        standing_p_per_day=rate.standing_p_per_day if rate else Decimal(0))
    return {**money_, "status": "incomplete" if unpriced else "complete", "unpriced": sorted(unpriced)}


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]
