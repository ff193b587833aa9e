"""Elexon market domain data (MDD): which Time Pattern Regime (register) of a Standard Settlement Configuration
a half-hour belongs to.

Run: ``meterlake mdd load DIR`` (a release's CSV files, e.g. ../shared/realdata/elexon/mdd_377) writes the tables
below into the lake (``mdd/*.parquet``); the bill jobs read them back.

The four files used (names start with these; the release number follows):

==================================================  =====================================================
file                                                table (grain)
==================================================  =====================================================
``Standard_Settlement_Configuration_*.csv``         ``ssc``: one row per (ssc, effective_from)
``Time_Pattern_Regime_*.csv``                       ``tpr``: one row per tpr (clock or teleswitch, GMT or not)
``Clock_Interval_*.csv``                            ``clock_intervals``: one row per (tpr, weekday, dates, times)
``Measurement_Requirement_*.csv``                   ``ssc_tpr``: one row per (ssc, tpr)
==================================================  =====================================================

The rule (:meth:`Mdd.register_of`): a half-hour is a TPR's when one of the TPR's clock intervals contains its
start. A TPR with the GMT indicator ``Y`` gives its intervals in GMT (= UTC), all year; one with ``N`` in UK
clock time (:mod:`meterlake.calendar` converts). The weekday (``Day of the Week ID``, 1 Monday … 7 Sunday), the
date range (day and month; one that ends before it starts runs over the new year) and the times (``24:00`` is the
end of the day) are read in that same clock. So SSC 0151's night register 00210 (00:30–07:30, GMT) is 01:30–08:30
UK time in summer. Nothing about an SSC is hard-coded. A teleswitched TPR has no clock intervals: no half-hour is
its by this rule (``None``), and billing lists such half-hours as unpriced.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa

from meterlake import calendar as cal
from meterlake.errors import UsageError

FILES = {"ssc": "Standard_Settlement_Configuration", "tpr": "Time_Pattern_Regime",
         "clock_intervals": "Clock_Interval", "ssc_tpr": "Measurement_Requirement"}

SCHEMAS = {
    "ssc": pa.schema([("ssc", pa.string()), ("effective_from", pa.date32()), ("effective_to", pa.date32()),
                      ("description", pa.string()), ("ssc_type", pa.string())]),
    "tpr": pa.schema([("tpr", pa.string()), ("teleswitch_clock", pa.string()), ("is_gmt", pa.bool_())]),
    "clock_intervals": pa.schema([("tpr", pa.string()), ("day_of_week", pa.int8()), ("start_day", pa.int8()),
                                  ("start_month", pa.int8()), ("end_day", pa.int8()), ("end_month", pa.int8()),
                                  ("start_minute", pa.int16()), ("end_minute", pa.int16())]),
    "ssc_tpr": pa.schema([("ssc", pa.string()), ("tpr", pa.string())]),
}

#: each table's columns as the file heads them (in the order of :data:`SCHEMAS`, derived columns aside)
_HEADERS = {
    "ssc": ["Standard Settlement Configuration ID", "Effective From Settlement Date (SSC)",
            "Effective To Settlement Date (SSC)", "Standard Settlement Configuration Description",
            "Standard Settlement Configuration Type"],
    "tpr": ["Time Pattern Regime ID", "Tele-switch/Clock Indicator", "GMT Indicator"],
    "clock_intervals": ["Time Pattern Regime ID", "Day of the Week ID", "Start Day", "Start Month", "End Day",
                        "End Month", "Start Time", "End Time"],
    "ssc_tpr": ["Standard Settlement Configuration ID", "Time Pattern Regime ID"],
}


def _mdd_date(text: str) -> date | None:
    text = text.strip()
    return datetime.strptime(text, "%d/%m/%Y").date() if text else None


def _minute(text: str) -> int:
    hh, mm = text.strip().split(":")
    minute = int(hh) * 60 + int(mm)
    if not 0 <= minute <= 1440:
        raise ValueError(f"{text!r} is not a time of day")
    return minute


def _convert(table: str, values: list[str]) -> dict:
    if table == "ssc":
        ssc, start, end, description, kind = values
        return {"ssc": ssc, "effective_from": _mdd_date(start), "effective_to": _mdd_date(end),
                "description": description, "ssc_type": kind}
    if table == "tpr":
        tpr, clock, gmt = values
        if gmt not in ("Y", "N"):
            raise ValueError(f"GMT Indicator {gmt!r} is not Y or N")
        return {"tpr": tpr, "teleswitch_clock": clock, "is_gmt": gmt == "Y"}
    if table == "clock_intervals":
        tpr, dow, sd, sm, ed, em, st, et = values
        row = {"tpr": tpr, "day_of_week": int(dow), "start_day": int(sd), "start_month": int(sm),
               "end_day": int(ed), "end_month": int(em), "start_minute": _minute(st), "end_minute": _minute(et)}
        if not 1 <= row["day_of_week"] <= 7:
            raise ValueError(f"Day of the Week ID {dow!r} is not 1-7")
        return row
    ssc, tpr = values
    return {"ssc": ssc, "tpr": tpr}


def parse(table: str, text: str, source: str) -> pa.Table:
    """One MDD file's rows as the lake table ``table``; a bad line raises :class:`UsageError` naming the file,
    line and field."""
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    wanted = _HEADERS[table]
    missing = [h for h in wanted if h not in header]
    if missing:
        raise UsageError(f"{source}: line 1: missing column(s) {missing}", path=source, line=1)
    index = [header.index(h) for h in wanted]
    rows = []
    for line, values in enumerate(reader, 2):
        if not values or all(not v.strip() for v in values):
            continue
        try:
            picked = [values[i].strip() for i in index]
            rows.append(_convert(table, picked))
        except (ValueError, IndexError) as exc:
            raise UsageError(f"{source}: line {line}: {exc}", path=source, line=line) from None
    return pa.Table.from_pylist(rows, schema=SCHEMAS[table])


def find_files(directory: str | Path) -> dict[str, Path]:
    """{table: file} of an MDD release directory; :class:`UsageError` when one is missing."""
    directory = Path(directory)
    found = {}
    for table, stem in FILES.items():
        matches = sorted(directory.glob(f"{stem}_*.csv"))
        if not matches:
            raise UsageError(f"{directory}: no {stem}_*.csv (an MDD release's CSV files are needed)",
                             path=str(directory))
        found[table] = matches[-1]
    return found


def read_dir(directory: str | Path) -> dict[str, pa.Table]:
    """The four tables of an MDD release directory."""
    tables = {}
    for table, path in find_files(directory).items():
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}", path=str(path)) from None
        tables[table] = parse(table, text, str(path))
    return tables


@dataclass(frozen=True)
class _Interval:
    day_of_week: int
    start: tuple[int, int]  # (month, day)
    end: tuple[int, int]
    start_minute: int
    end_minute: int

    def contains(self, clock: datetime) -> bool:
        if clock.isoweekday() != self.day_of_week:
            return False
        md = (clock.month, clock.day)
        in_dates = (self.start <= md <= self.end) if self.start <= self.end else (md >= self.start or md <= self.end)
        minute = clock.hour * 60 + clock.minute
        return in_dates and self.start_minute <= minute < self.end_minute


@dataclass
class Mdd:
    """The SSC → TPR → clock interval rules of one MDD release (from :func:`read_dir`'s tables or the lake's)."""

    tprs_of: dict[str, list[str]]
    is_gmt: dict[str, bool]
    intervals: dict[str, list[_Interval]]
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_tables(cls, tables: dict[str, pa.Table]) -> Mdd:
        tprs_of: dict[str, list[str]] = {}
        for r in tables["ssc_tpr"].to_pylist():
            tprs_of.setdefault(r["ssc"], []).append(r["tpr"])
        is_gmt = {r["tpr"]: r["is_gmt"] for r in tables["tpr"].to_pylist()}
        intervals: dict[str, list[_Interval]] = {}
        for r in tables["clock_intervals"].to_pylist():
            intervals.setdefault(r["tpr"], []).append(_Interval(
                r["day_of_week"], (r["start_month"], r["start_day"]), (r["end_month"], r["end_day"]),
                r["start_minute"], r["end_minute"]))
        return cls({k: sorted(set(v)) for k, v in tprs_of.items()}, is_gmt, intervals)

    def registers(self, ssc: str) -> list[str]:
        """The TPRs (registers) of ``ssc``, sorted; empty for an SSC the release does not know."""
        return self.tprs_of.get(ssc, [])

    def register_of(self, ssc: str, start_utc: datetime) -> str | None:
        """The TPR of ``ssc`` whose clock intervals hold the half-hour starting at ``start_utc`` (aware); None
        when none does (an unknown SSC, a teleswitched regime)."""
        key = (ssc, start_utc)
        if key in self._cache:
            return self._cache[key]
        if start_utc.tzinfo is None:
            raise ValueError(f"naive datetime {start_utc.isoformat()}: give a UTC instant")
        utc_clock = start_utc.astimezone(UTC).replace(tzinfo=None)
        local_clock = cal.to_local_clock(start_utc)
        found = None
        for tpr in self.registers(ssc):
            clock = utc_clock if self.is_gmt.get(tpr, False) else local_clock
            if any(i.contains(clock) for i in self.intervals.get(tpr, ())):
                found = tpr
                break
        self._cache[key] = found
        return found
