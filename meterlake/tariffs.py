"""Tariffs: their TOML definitions, dynamic price files checked against the settlement calendar, and the one rule
for the unit price of a half-hour. Pure Python (no Spark): the bill job and a notebook's what-if use the same.

Run: ``meterlake tariffs load FILE...`` stores the definitions (and a dynamic tariff's prices and price file
defects) in the lake (``tariffs/*.parquet``). Examples, one per kind: ``tariffs/*.toml`` in the repository.

A tariff file (docs/jobs.md, "Tariffs")::

    [tariffs.flat-2024]
    kind = "flat"                       # one unit rate (band "all")
    standing_p_per_day = 53.35
    [[tariffs.flat-2024.rates]]         # dated: each applies from its effective_from to the next one's
    effective_from = "2024-01-01"
    unit_p = 28.62
    # standing_p_per_day = 60.1         # optional: a new standing charge from this date

    [tariffs.e7-2022]
    kind = "tou"                        # a unit rate per Time Pattern Regime of the meter's SSC (meterlake.mdd)
    standing_p_per_day = 50.0
    [[tariffs.e7-2022.rates]]
    effective_from = "2022-01-01"
    unit_p = { "00043" = 32.0, "00210" = 15.0 }

    [tariffs.agile-2022]
    kind = "dynamic"                    # a unit rate per half-hour from a price file (band "dynamic")
    standing_p_per_day = 46.36
    [tariffs.agile-2022.prices]         # path relative to the TOML file, or absolute
    file = "agile-prices.csv"
    time_column = "Period from"         # the half-hour's start
    time_format = "%d/%m/%Y %H:%M"      # or "iso"
    timezone = "Europe/London"          # or "UTC"
    price_column = "Agile Import price (p/kWh)"

Prices are pence (p/kWh, p/day), VAT excluded. A price file is checked day by day against
:mod:`meterlake.calendar`: each local date must have each of its half-hours (46, 48 or 50) once. In the repeated
autumn hour a clock time's first row is its BST half-hour and its second row its GMT one; a file with one row for
it (48 rows on a 50-period day) leaves the GMT half-hours unpriced and reports the day (:class:`Defect`), a clock
time inside the skipped spring hour is reported and not used, and two different prices for one half-hour are
reported and neither is used. Nothing is priced by guesswork: a half-hour without a price stays unpriced.
"""
from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from meterlake import calendar as cal
from meterlake.errors import UsageError

KINDS = ("flat", "tou", "dynamic")
PLACES = 6  # decimals of a price (p/kWh, p/day), as stored
FLAT_BAND = "all"
DYNAMIC_BAND = "dynamic"
TIMEZONES = ("Europe/London", "UTC")
_PRICE_KEYS = {"file", "time_column", "time_format", "timezone", "price_column"}


def money(value) -> Decimal:
    """A price as an exact decimal (floats through their shortest repr: 28.62 stays 28.62)."""
    return value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else str(value))


@dataclass(frozen=True)
class Rate:
    """The unit rates (``{band: p/kWh}``; empty for a dynamic tariff) and standing charge from ``effective_from``."""

    effective_from: date
    unit_p: dict[str, Decimal]
    standing_p_per_day: Decimal


@dataclass(frozen=True)
class PriceFile:
    file: Path
    time_column: str
    time_format: str
    timezone: str
    price_column: str


@dataclass(frozen=True)
class Tariff:
    name: str
    kind: str
    rates: tuple[Rate, ...]  # sorted by effective_from
    prices: PriceFile | None = None
    source_file: str | None = None

    def rate_on(self, day: date) -> Rate | None:
        """The rate in force on local date ``day`` (None before the first)."""
        found = None
        for rate in self.rates:
            if rate.effective_from <= day:
                found = rate
        return found

    def changes(self) -> list[date]:
        """The dates a new rate starts (bills are cut there)."""
        return [r.effective_from for r in self.rates]


@dataclass(frozen=True)
class Defect:
    """A problem of a price file's local date: ``kind`` (``period_count``, ``nonexistent_time``,
    ``conflicting_prices``, ``bad_row``), a readable ``detail``, and the UTC half-hours left unpriced by it."""

    tariff: str
    local_date: date
    kind: str
    detail: str
    unpriced: tuple[datetime, ...] = field(default=())


# ------------------------------------------------------------------------------------------------ definitions


def _problem(source: str, name: str | None, key: str, message: str) -> UsageError:
    where = f"[tariffs.{name}]" if name else "the file"
    return UsageError(f"{source}: {where} {key}: {message}", path=source, tariff=name, field=key)


def _date(source: str, name: str, value) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _problem(source, name, "effective_from", f"{value!r} is not a date (YYYY-MM-DD)") from None


def _number(source: str, name: str, key: str, value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _problem(source, name, key, f"{value!r} is not a number")
    price = money(value)
    if not price.is_finite() or price.as_tuple().exponent < -PLACES:
        raise _problem(source, name, key, f"{value!r}: a price has at most {PLACES} decimals")
    return price


def _tariff(source: Path, name: str, spec: dict) -> Tariff:
    src = str(source)
    kind = spec.get("kind")
    if kind not in KINDS:
        raise _problem(src, name, "kind", f"{kind!r} is not one of {list(KINDS)}")
    unknown = set(spec) - {"kind", "standing_p_per_day", "rates", "prices", "description"}
    if unknown:
        raise _problem(src, name, sorted(unknown)[0], "unknown key")
    if "standing_p_per_day" not in spec:
        raise _problem(src, name, "standing_p_per_day", "missing")
    standing = _number(src, name, "standing_p_per_day", spec["standing_p_per_day"])
    rates = []
    entries = spec.get("rates", [])
    if kind != "dynamic" and not entries:
        raise _problem(src, name, "rates", f"a {kind} tariff needs [[tariffs.{name}.rates]] with unit_p")
    for entry in entries:
        when = _date(src, name, entry.get("effective_from"))
        standing = _number(src, name, "standing_p_per_day", entry.get("standing_p_per_day", standing))
        unit = entry.get("unit_p")
        if kind == "flat":
            bands = {FLAT_BAND: _number(src, name, "unit_p", unit)}
        elif kind == "tou":
            if not isinstance(unit, dict) or not unit:
                raise _problem(src, name, "unit_p", "a tou rate is a table of Time Pattern Regime id = p/kWh")
            bands = {str(tpr): _number(src, name, f"unit_p.{tpr}", p) for tpr, p in unit.items()}
        else:
            if unit is not None:
                raise _problem(src, name, "unit_p", "a dynamic tariff's unit rates come from its price file")
            bands = {}
        rates.append(Rate(when, bands, standing))
    if not rates:  # a dynamic tariff without dated changes: its standing charge always
        rates.append(Rate(date.min, {}, standing))
    if len({r.effective_from for r in rates}) != len(rates):
        raise _problem(src, name, "rates", "two rates with the same effective_from")
    prices = None
    if kind == "dynamic":
        p = spec.get("prices")
        if not isinstance(p, dict) or not {"file", "time_column", "price_column"} <= set(p):
            raise _problem(src, name, "prices", "a dynamic tariff needs a prices table with file, time_column "
                                                "and price_column")
        if set(p) - _PRICE_KEYS:
            raise _problem(src, name, f"prices.{sorted(set(p) - _PRICE_KEYS)[0]}", "unknown key")
        tz = p.get("timezone", "Europe/London")
        if tz not in TIMEZONES:
            raise _problem(src, name, "prices.timezone", f"{tz!r} is not one of {list(TIMEZONES)}")
        file = Path(p["file"])
        prices = PriceFile(file if file.is_absolute() else source.parent / file, p["time_column"],
                           p.get("time_format", "iso"), tz, p["price_column"])
    elif "prices" in spec:
        raise _problem(src, name, "prices", f"only a dynamic tariff has a price file, this one is {kind}")
    return Tariff(name, kind, tuple(sorted(rates, key=lambda r: r.effective_from)), prices, source.name)


def load_toml(path: str | Path) -> list[Tariff]:
    """The tariffs of a TOML file; :class:`UsageError` naming the file, tariff and key of the first problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not TOML: {exc}", path=str(path)) from None
    tariffs = data.get("tariffs")
    if not isinstance(tariffs, dict) or not tariffs:
        raise _problem(str(path), None, "tariffs", "no [tariffs.<name>] table")
    return [_tariff(path, name, spec) for name, spec in tariffs.items()]


# ------------------------------------------------------------------------------------------------ price files


def _parse_time(text: str, fmt: str) -> datetime:
    return datetime.fromisoformat(text) if fmt == "iso" else datetime.strptime(text, fmt)


def parse_prices(text: str, spec: PriceFile, tariff: str, source: str) -> tuple[dict[datetime, Decimal], list[Defect]]:
    """``({UTC half-hour start: p/kWh}, defects)`` of a price file's text (rows in any order)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    for column in (spec.time_column, spec.price_column):
        if column not in header:
            raise UsageError(f"{source}: line 1: no column {column!r} (the header has {header})", path=source,
                             line=1, field=column)
    t_at, p_at = header.index(spec.time_column), header.index(spec.price_column)
    defects: list[Defect] = []
    by_day: dict[date, list[tuple[datetime, Decimal, int]]] = {}  # local (or UTC) clock times per local date
    for line, values in enumerate(reader, 2):
        if not values or all(not v.strip() for v in values):
            continue
        try:
            when = _parse_time(values[t_at].strip(), spec.time_format)
        except (ValueError, IndexError):
            raise UsageError(f"{source}: line {line}: {spec.time_column}: {values[t_at:t_at + 1]} is not a time "
                             f"in the format {spec.time_format!r}", path=source, line=line,
                             field=spec.time_column) from None
        try:
            price = Decimal(values[p_at].strip())
            if not price.is_finite() or price.as_tuple().exponent < -PLACES:
                raise ValueError
        except (ArithmeticError, ValueError, IndexError):
            raise UsageError(f"{source}: line {line}: {spec.price_column}: {values[p_at:p_at + 1]} is not a "
                             f"number with at most {PLACES} decimals", path=source, line=line,
                             field=spec.price_column) from None
        if when.tzinfo is not None:  # an ISO time with its offset is an instant already
            when = when.astimezone(UTC)
            local_day = cal.locate(when)[0]
        elif spec.timezone == "UTC":
            when = when.replace(tzinfo=UTC)
            local_day = cal.locate(when)[0]
        else:
            local_day = when.date()
        by_day.setdefault(local_day, []).append((when, price, line))

    prices: dict[datetime, Decimal] = {}
    for day in sorted(by_day):
        seen: dict[datetime, list[Decimal]] = {}
        folds: dict[datetime, int] = {}
        for when, price, line in by_day[day]:
            if when.tzinfo is None:
                occurrence = folds.get(when, 0)
                folds[when] = occurrence + 1
                try:
                    first = cal.from_local_clock(when, fold=0)
                except ValueError:
                    defects.append(Defect(tariff, day, "nonexistent_time",
                                          f"{source}: line {line}: {when:%H:%M} does not exist in UK time on "
                                          f"{day} (clocks went forward); row not used"))
                    continue
                second = cal.from_local_clock(when, fold=1)
                # the repeated autumn hour: a clock time's first row is its BST half-hour, a second its GMT one
                instant = second if occurrence >= 1 and second != first else first
            else:
                instant = when
            if instant.minute % 30 or instant.second or instant.microsecond:
                defects.append(Defect(tariff, day, "bad_row", f"{source}: line {line}: {instant:%H:%M}Z is not "
                                                                "the start of a half-hour; row not used"))
                continue
            seen.setdefault(instant, []).append(price)
        conflicting = sorted(t for t, ps in seen.items() if len(set(ps)) > 1)
        for t in conflicting:
            defects.append(Defect(tariff, day, "conflicting_prices",
                                  f"{len(seen[t])} different prices for {_z(t)}; not priced", (t,)))
        for t, ps in seen.items():
            if t not in conflicting:
                prices[t] = ps[0]
        expected = [start for _, start in cal.periods(day)]
        unpriced = tuple(t for t in expected if t not in prices or t in conflicting)
        given = sum(1 for t in expected if t in seen)
        if len(expected) != given:
            defects.append(Defect(tariff, day, "period_count",
                                  f"{given} half-hours for a day of {len(expected)}; unpriced: "
                                  + ", ".join(_z(t) for t in unpriced), unpriced))
    return prices, defects


def _z(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_prices(tariff: Tariff) -> tuple[dict[datetime, Decimal], list[Defect]]:
    """:func:`parse_prices` of a dynamic tariff's price file."""
    spec = tariff.prices
    try:
        text = spec.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"tariff {tariff.name}: cannot read its price file {spec.file}: {exc}",
                         path=str(spec.file)) from None
    return parse_prices(text, spec, tariff.name, str(spec.file))


# ---------------------------------------------------------------------------------------------- the unit price


def band_of(tariff: Tariff, start_utc: datetime, ssc: str | None, register_of) -> str | None:
    """The band of a half-hour under ``tariff``: ``all`` (flat), ``dynamic``, or for tou the TPR of the meter's
    SSC holding the half-hour (``register_of(ssc, start_utc)``, :meth:`meterlake.mdd.Mdd.register_of`; None when
    the SSC or its regime is unknown)."""
    if tariff.kind == "flat":
        return FLAT_BAND
    if tariff.kind == "dynamic":
        return DYNAMIC_BAND
    return register_of(ssc, start_utc) if ssc else None


def unit_price(tariff: Tariff, band: str | None, start_utc: datetime,
               prices: dict[datetime, Decimal] | None = None) -> Decimal | None:
    """p/kWh of a half-hour in ``band`` (None: no price; such a half-hour is listed, never billed)."""
    if band is None:
        return None
    if tariff.kind == "dynamic":
        return (prices or {}).get(start_utc)
    rate = tariff.rate_on(cal.locate(start_utc)[0])
    return None if rate is None else rate.unit_p.get(band)


def halfhours(start: date, end: date) -> list[datetime]:
    """UTC starts of every half-hour of the local dates ``start`` (inclusive) to ``end`` (exclusive)."""
    out, day = [], start
    while day < end:
        out.extend(s for _, s in cal.periods(day))
        day += timedelta(days=1)
    return out
