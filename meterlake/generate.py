"""A deterministic synthetic portfolio of meters and their reads, with defects injected on purpose.

Run: ``meterlake generate --meters 1000 --days 7 --start 2024-10-24 --seed 1 --out build/portfolio``.

Households
    Electricity meters follow Elexon profile class 1 (domestic unrestricted, register ``S``) or 2 (domestic
    Economy 7, SSC 0151: registers ``NT`` for 00:30-07:30 GMT and ``DY`` otherwise); gas meters (MPRN) have
    one register read daily in m3. Daily shapes (kW by UK clock hour, winter and summer, weekday and weekend)
    are a small hand-made table in the spirit of the Elexon load profiles, blended by season, scaled per
    household and multiplied by noise. Settlement days come from :mod:`meterlake.calendar`, so clock-change
    days have 46 or 50 periods. MPAN cores carry valid check digits.

Files written under OUT (formats as :mod:`streaming.ingest` documents them)
    ``registry.csv``                       one row per meter: meter_point, gsp_group, supplier,
                                           profile_class, ssc, llfc, effective_from
    ``hh/HH_<day>_<chunk>_v1.csv``         hh-csv: one settlement day of a chunk of meters (interval reads,
                                           and gas meters' register read at the day's start)
    ``hh/HH_<day>_<chunk>_v2.csv``         a correction: a later version of some meters' day
    ``d0010/D0010_<day>_<seq>.uff``        D0010 register reads of the electricity meters due that day (each
                                           meter every ``read_every_days``, at the day's start)
    ``lcl/MAC<n>.csv``                     the LCL public shape, for the first ``lcl_meters`` electricity
                                           meters
    ``device/DEV_<day>.jsonl``             device events (power every ``device_every_min``, an energy counter
                                           hourly) for the first ``device_meters`` electricity meters; and
                                           the meters' own reads (device ``esme-<n>``, an energy counter) of
                                           the meters in ``read_intervals`` (half-hourly, daily or monthly
                                           from an instant: what ``meterlake meters`` set them to)
    ``accounts.csv``                       one billing account per electricity meter: Economy 7 meters on the
                                           ``e7-gen`` tariff (tou), every third other meter on ``agile-gen``
                                           (dynamic), the rest on ``flat-gen`` (``meterlake accounts load``)
    ``tariffs.toml``, ``agile-prices.csv`` those three tariffs and the dynamic one's half-hourly prices for the
                                           days, in Octopus's published layout (``meterlake tariffs load``)
    ``manifest.json``                      every file in arrival order and every injected defect

Defects (:data:`DEFECTS`; how many of each is an option) and what ingest or the store must make of them:
``expect`` is ``quarantine`` (that file and line quarantined with ``reason``), ``duplicate`` (that line is an
exact duplicate, counted and dropped), ``rejected`` (the whole file rejected with ``reason``) or ``store``
(valid input whose handling the store or lake checks: late and duplicate files, corrections, missing reads,
register resets, meter exchanges). ``valid_as_of`` in the manifest is the instant to validate against (after
every file's creation, before the injected future reads).

Deterministic: the same options give byte-identical files. Consumption comes from numpy ``Generator(PCG64)``
streams seeded by (seed, day, chunk), and defects from a separate stream, so a day's values do not depend on
the defects chosen. Memory is bounded by one chunk of meters for one day (``meters_per_file`` x 50 values)
plus a few numbers per meter (registers, attributes); nothing holds the whole portfolio's reads.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence

from meterlake import calendar as cal
from meterlake import formats, ids

MANIFEST_VERSION = 1

# What each defect kind must become: (expect, reason).
DEFECTS: dict[str, tuple[str, str | None]] = {
    "bad_check_digit": ("quarantine", "bad_mpan_check_digit"),
    "non_numeric": ("quarantine", "non_numeric_value"),
    "off_grid": ("quarantine", "off_grid_timestamp"),
    "future": ("quarantine", "future_timestamp"),
    "missing_value": ("quarantine", "missing_value"),
    "unknown_register": ("quarantine", "unknown_register"),
    "conflicting_duplicate": ("quarantine", "conflicting_duplicate"),
    "duplicate_line": ("duplicate", None),
    "d0010_bad_check_digit": ("quarantine", "bad_mpan_check_digit"),
    "d0010_non_numeric": ("quarantine", "non_numeric_value"),
    "lcl_null": ("quarantine", "missing_value"),
    "lcl_duplicate": ("duplicate", None),
    "device_malformed": ("quarantine", "malformed_line"),
    "truncated_file": ("rejected", "truncated_file"),
    "trailer_count": ("rejected", "trailer_count_mismatch"),
    "unknown_flow": ("rejected", "unknown_flow"),
    "bad_encoding": ("rejected", "unreadable_encoding"),
    "late_file": ("store", None),
    "duplicate_file": ("store", None),
    "correction": ("store", None),
    "missing_reads": ("store", None),
    "register_reset": ("store", None),
    "meter_exchange": ("store", None),
}
DEFAULT_DEFECTS = {kind: 1 for kind in DEFECTS} | {"correction": 2}
_HH_ROW_DEFECTS = ("bad_check_digit", "non_numeric", "off_grid", "future", "missing_value",
                   "unknown_register", "conflicting_duplicate", "duplicate_line")

# Hand-made daily shapes: mean kW by UK clock hour (0-23) for a typical household.
_SHAPES = {
    1: {  # domestic unrestricted: a morning bump, a daytime plateau, the evening peak
        "winter_weekday": [0.30, 0.24, 0.21, 0.20, 0.20, 0.22, 0.30, 0.50, 0.55, 0.48, 0.46, 0.47,
                           0.48, 0.46, 0.45, 0.50, 0.68, 0.88, 0.90, 0.84, 0.77, 0.72, 0.62, 0.45],
        "winter_weekend": [0.38, 0.30, 0.25, 0.22, 0.21, 0.21, 0.23, 0.30, 0.45, 0.60, 0.70, 0.74,
                           0.76, 0.72, 0.64, 0.64, 0.76, 0.88, 0.90, 0.84, 0.78, 0.72, 0.62, 0.46],
        "summer_weekday": [0.25, 0.21, 0.19, 0.18, 0.18, 0.19, 0.25, 0.38, 0.42, 0.39, 0.37, 0.37,
                           0.38, 0.35, 0.34, 0.37, 0.46, 0.54, 0.52, 0.48, 0.49, 0.53, 0.50, 0.36],
        "summer_weekend": [0.30, 0.24, 0.21, 0.19, 0.19, 0.19, 0.20, 0.25, 0.35, 0.46, 0.52, 0.56,
                           0.60, 0.54, 0.46, 0.45, 0.47, 0.50, 0.51, 0.48, 0.50, 0.53, 0.50, 0.37],
    },
    2: {  # domestic Economy 7: storage heating and water in the night hours
        "winter_weekday": [1.50, 2.40, 2.40, 2.20, 1.90, 1.60, 1.40, 0.90, 0.60, 0.50, 0.48, 0.47,
                           0.50, 0.48, 0.47, 0.52, 0.70, 0.95, 1.00, 0.95, 0.88, 0.82, 0.72, 0.75],
        "winter_weekend": [1.60, 2.50, 2.50, 2.30, 2.00, 1.70, 1.40, 0.80, 0.70, 0.75, 0.80, 0.82,
                           0.85, 0.80, 0.72, 0.72, 0.82, 1.00, 1.04, 0.98, 0.90, 0.85, 0.74, 0.76],
        "summer_weekday": [0.35, 0.45, 0.72, 0.70, 0.65, 0.58, 0.68, 0.74, 0.55, 0.40, 0.37, 0.37,
                           0.40, 0.36, 0.35, 0.38, 0.45, 0.58, 0.62, 0.56, 0.53, 0.57, 0.55, 0.42],
        "summer_weekend": [0.38, 0.48, 0.78, 0.75, 0.68, 0.60, 0.62, 0.60, 0.58, 0.57, 0.58, 0.60,
                           0.62, 0.58, 0.50, 0.47, 0.50, 0.57, 0.60, 0.55, 0.55, 0.57, 0.54, 0.42],
    },
}
# Economy 7 night: the half-hours from 00:30 to 07:30 GMT (UTC) all year, as SSC 0151's night register 00210 in
# Elexon's market domain data (01:30-08:30 UK clock time in summer); the meters are registered with SSC 0151
_NIGHT_SLOTS = range(1, 15)
_GSP_GROUPS = sorted(ids.DISTRIBUTOR_GSP_GROUP.items())  # (distributor id, GSP group)
_SUPPLIERS = ("SUPA", "SUPB", "SUPC")
_SSC = {1: "0393", 2: "0151"}  # unrestricted; 7-hour Economy 7
_LLFC = {1: "101", 2: "102"}
_REGISTER_WRAP = 100_000
READ_INTERVALS = ("30min", "daily", "monthly")
HH_HEADER = formats.HH_CSV_HEADER


@dataclass(frozen=True)
class Options:
    meters: int
    days: int
    start: date
    seed: int
    meters_per_file: int = 1000
    gas_share: float = 0.15
    economy7_share: float = 0.2
    lcl_meters: int = 2
    device_meters: int = 2
    device_every_min: int = 15
    read_every_days: int = 7
    # days after the end of its day that a late file and a correction are created (0: like every file, 2 hours
    # after the day's end, a correction a day later); past the SF cut-off (7 days at most) they reach R1 only
    late_days: int = 0
    defects: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DEFECTS))
    # meter point -> (from instant, ISO 8601 UTC; "30min" | "daily" | "monthly"): electricity meters that send
    # their own register reads in the device stream from then on (streaming.commands' gateway keeps them)
    read_intervals: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self):
        if self.meters < 1 or self.days < 1 or self.meters_per_file < 1:
            raise ValueError("meters, days and meters_per_file must be at least 1")
        unknown = set(self.defects) - set(DEFECTS)
        if unknown:
            raise ValueError(f"unknown defect kind(s) {sorted(unknown)}; known: {sorted(DEFECTS)}")
        if self.late_days < 0:
            raise ValueError("late_days must not be negative")
        if any(n < 0 for n in self.defects.values()):
            raise ValueError("defect counts must not be negative")
        if self.device_every_min < 1 or 30 % self.device_every_min and self.device_every_min % 30:
            raise ValueError("device_every_min must divide 30 or be a multiple of it")
        bad = {mp: v for mp, v in self.read_intervals.items() if v[1] not in READ_INTERVALS}
        if bad:
            raise ValueError(f"read intervals must be one of {', '.join(READ_INTERVALS)}: {bad}")


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rng(*key: int) -> Generator:
    return Generator(PCG64(SeedSequence(list(key))))


# ------------------------------------------------------------------------------------------------ portfolio


class Portfolio:
    """Per-meter attributes (a few numbers each) and the registers carried from day to day."""

    def __init__(self, options: Options):
        n = options.meters
        rng = _rng(options.seed, 0)
        self.gas = rng.random(n) < options.gas_share
        self.economy7 = ~self.gas & (rng.random(n) < options.economy7_share)
        self.gsp = rng.integers(0, len(_GSP_GROUPS), n)
        self.supplier = rng.integers(0, len(_SUPPLIERS), n)
        self.scale = rng.lognormal(0.0, 0.3, n)
        self.base = int(rng.integers(10**8, 9 * 10**8))
        # registers: S (or DY for Economy 7), NT; gas m3
        self.reg_day = np.floor(rng.uniform(1_000, 60_000, n))
        self.reg_night = np.floor(rng.uniform(1_000, 30_000, n))
        self.reg_gas = np.round(rng.uniform(500, 9_000, n), 3)
        self.exchanged = np.zeros(n, dtype=bool)
        electricity = np.flatnonzero(~self.gas)
        self.lcl = {int(i): k for k, i in enumerate(electricity[: options.lcl_meters])}
        self.devices = [int(i) for i in electricity[: options.device_meters]]

    def fuel(self, i: int) -> str:
        return "gas" if self.gas[i] else "electricity"

    def profile_class(self, i: int) -> int:
        return 2 if self.economy7[i] else 1

    def meter_point(self, i: int) -> str:
        if self.gas[i]:
            return str(1_000_000_000 + (self.base + i) % 8_999_999_999)
        return ids.make_mpan_core(_GSP_GROUPS[self.gsp[i]][0], self.base + i)

    def serial(self, i: int) -> str:
        if self.gas[i]:
            return f"G{i:08d}"
        return f"{'X' if self.exchanged[i] else 'E'}{i:08d}"

    def registers(self, i: int) -> list[str]:
        if self.gas[i]:
            return ["S"]
        return ["DY", "NT"] if self.economy7[i] else ["S"]


def _season_weight(day: date) -> float:
    """1 in mid-January (winter shape) down to 0 in mid-July (summer shape)."""
    return (1 + math.cos(2 * math.pi * (day.timetuple().tm_yday - 15) / 365.25)) / 2


def _slot_shapes(day: date) -> dict[int, np.ndarray]:
    """kW for each of the 48 UK clock half-hours of ``day``, by profile class."""
    w = _season_weight(day)
    kind = "weekend" if day.weekday() >= 5 else "weekday"
    return {pc: np.repeat(w * np.array(s[f"winter_{kind}"]) + (1 - w) * np.array(s[f"summer_{kind}"]), 2)
            for pc, s in _SHAPES.items()}


@dataclass
class Day:
    """One settlement day: its periods' UTC starts, UK clock half-hour slots and UTC half-hour slots."""

    day: date
    index: int
    starts: list[datetime]
    slots: np.ndarray
    iso: list[str]
    utc_slots: np.ndarray

    @classmethod
    def of(cls, day: date, index: int) -> Day:
        starts = [start for _, start in cal.periods(day)]
        slots = []
        for start in starts:
            wall = cal.to_local_clock(start)
            slots.append((wall.hour * 60 + wall.minute) // 30)
        utc_slots = np.array([(s.hour * 60 + s.minute) // 30 for s in starts])
        return cls(day, index, starts, np.array(slots), [_iso(s) for s in starts], utc_slots)

    @property
    def start(self) -> datetime:
        return self.starts[0]

    @property
    def end(self) -> datetime:
        return self.starts[-1] + cal.PERIOD


def _chunk_values(options: Options, portfolio: Portfolio, day: Day, lo: int, hi: int):
    """kWh per (meter, period) for meters lo..hi-1 (rounded to Wh), the qualities, and gas m3 for the day."""
    rng = _rng(options.seed, 1, day.index, lo // options.meters_per_file)
    shapes = _slot_shapes(day.day)
    m, p = hi - lo, len(day.starts)
    pcs = np.where(portfolio.economy7[lo:hi], 2, 1)
    kw = np.where(pcs[:, None] == 2, shapes[2][day.slots][None, :], shapes[1][day.slots][None, :])
    noise = rng.gamma(8.0, 1 / 8.0, (m, p))
    kwh = np.round(kw / 2 * portfolio.scale[lo:hi, None] * noise, 3)
    estimated = rng.random((m, p)) < 0.005
    w = _season_weight(day.day)
    gas_m3 = np.round((1.2 + 4.3 * w) * portfolio.scale[lo:hi] * rng.gamma(10.0, 0.1, m), 3)
    return kwh, estimated, gas_m3


# ------------------------------------------------------------------------------------------------- writing


class _Lines:
    """A text file written line by line (UTF-8, '\\n'), counting lines."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed by close()
        self.count = 0

    def write(self, line: str) -> int:
        self._f.write(line)
        self._f.write("\n")
        self.count += 1
        return self.count

    def close(self) -> None:
        self._f.close()


@dataclass
class Generated:
    out: Path
    files: list[dict] = field(default_factory=list)  # in arrival order once finished
    defects: list[dict] = field(default_factory=list)

    def file(self, path: Path, fmt: str, day: date | None, created: datetime | None) -> dict:
        entry = {"path": path.relative_to(self.out).as_posix(), "format": fmt,
                 "day": day.isoformat() if day else None, "created_utc": _iso(created) if created else None}
        self.files.append(entry)
        return entry

    def defect(self, kind: str, file: Path, line: int | None = None, **extra) -> None:
        expect, reason = DEFECTS[kind]
        self.defects.append({"kind": kind, "file": file.relative_to(self.out).as_posix(), "line": line,
                             "expect": expect, "reason": reason, **extra})


class _Plan:
    """Where each defect goes, drawn once from the defect stream (seed, 2) before anything is written."""

    def __init__(self, options: Options, portfolio: Portfolio):
        rng = _rng(options.seed, 2)
        self.rng = rng
        n, days = options.meters, options.days
        electricity = np.flatnonzero(~portfolio.gas)
        wanted = options.defects
        taken: set[tuple[int, int]] = set()

        def meter_day(pool: np.ndarray, min_day: int = 0) -> tuple[int, int] | None:
            if len(pool) == 0 or min_day >= days:
                return None
            for _ in range(200):
                pair = (int(rng.choice(pool)), int(rng.integers(min_day, days)))
                if pair not in taken:
                    taken.add(pair)
                    return pair
            return None

        # hh rows: (day, meter) -> [(kind, period)]
        self.hh: dict[tuple[int, int], list[tuple[str, int]]] = {}
        for kind in _HH_ROW_DEFECTS:
            for _ in range(wanted.get(kind, 0)):
                pair = meter_day(electricity)
                if pair:
                    self.hh.setdefault((pair[1], pair[0]), []).append((kind, int(rng.integers(0, 46))))
        self.missing: dict[tuple[int, int], int] = {}
        for _ in range(wanted.get("missing_reads", 0)):
            pair = meter_day(electricity)
            if pair:
                self.missing[(pair[1], pair[0])] = int(rng.integers(0, 42))
        # meter exchange and register reset: distinct electricity meters, on a day after the first if any
        first = 1 if days > 1 else 0
        self.exchange: dict[int, int] = {}  # day -> meter
        for _ in range(wanted.get("meter_exchange", 0)):
            pair = meter_day(electricity, first)
            if pair and pair[1] not in self.exchange:
                self.exchange[pair[1]] = pair[0]
        self.reset: dict[int, int] = {}  # day -> meter, a single-register meter read that day
        single = electricity[~portfolio.economy7[electricity]]
        single = np.array([i for i in single if i not in self.exchange.values()], dtype=np.int64)
        for _ in range(wanted.get("register_reset", 0)):
            for _ in range(100):
                if len(single) == 0:
                    break
                i = int(rng.choice(single))
                k = (-i) % options.read_every_days  # the day index on which meter i is read
                if first <= k < days and k not in self.reset and (i, k) not in taken:
                    taken.add((i, k))
                    self.reset[k] = i
                    break
        # D0010 record defects: picked among the meters read that day when the file is written
        self.d0010_bad = wanted.get("d0010_bad_check_digit", 0)
        self.d0010_non_numeric = wanted.get("d0010_non_numeric", 0)
        # files (day, chunk) for corrections, the late file, the duplicate file
        chunks = -(-n // options.meters_per_file)
        all_files = [(d, c) for d in range(days) for c in range(chunks)]
        order = [all_files[i] for i in rng.permutation(len(all_files))]
        self.corrections = order[: wanted.get("correction", 0)]
        rest = order[len(self.corrections):]
        # a late file must have later days to arrive after
        late = [f for f in rest if f[0] < days - 1][: wanted.get("late_file", 0)]
        self.late = late
        self.duplicate = order[: wanted.get("duplicate_file", 0)]
        self.other = {k: wanted.get(k, 0) for k in ("lcl_null", "lcl_duplicate", "device_malformed",
                                                     "truncated_file", "trailer_count", "unknown_flow",
                                                     "bad_encoding")}


def _hh_rows(portfolio: Portfolio, day: Day, i: int, kwh: np.ndarray,
             estimated: np.ndarray) -> Iterator[tuple[int, str, str, str, float, str]]:
    """(period index, register, start iso, value text, value, quality) of meter i's intervals."""
    registers = portfolio.registers(i)
    for p, start in enumerate(day.iso):
        register = registers[0] if len(registers) == 1 else ("NT" if day.utc_slots[p] in _NIGHT_SLOTS else "DY")
        value = float(kwh[p])
        yield p, register, start, f"{value:.3f}", value, "estimated" if estimated[p] else "actual"


def _mutate(kind: str, mp: str, register: str, start: str, value_text: str, options: Options) -> tuple:
    if kind == "bad_check_digit":
        mp = mp[:12] + str((int(mp[12]) + 1) % 10)
    elif kind == "non_numeric":
        value_text = value_text[:-1] + "O"
    elif kind == "off_grid":
        start = _iso(datetime.fromisoformat(start) + timedelta(minutes=7))
    elif kind == "future":
        start = _iso(datetime.fromisoformat(start) + timedelta(days=options.days + 400))
    elif kind == "missing_value":
        value_text = ""
    elif kind == "unknown_register":
        register = "S?"
    return mp, register, start, value_text


def _write_hh(options: Options, portfolio: Portfolio, plan: _Plan, gen: Generated, day: Day, chunk: int,
              lo: int, hi: int, kwh, estimated, version: int, meters: list[int] | None = None,
              factor: float = 1.0) -> Path:
    """One hh-csv file for the chunk's meters (or only ``meters``, for a correction), version 1 or 2."""
    path = gen.out / "hh" / f"HH_{day.day:%Y%m%d}_{chunk:04d}_v{version}.csv"
    created_at = day.end + timedelta(hours=2, seconds=chunk) + timedelta(days=version - 1)
    if options.late_days and (version == 2 or (day.index, chunk) in plan.late):
        created_at = day.end + timedelta(days=options.late_days, hours=2, seconds=chunk)
    created = _iso(created_at)
    gen.file(path, "hh-csv", day.day, created_at)
    out = _Lines(path)
    out.write(HH_HEADER)
    for i in meters if meters is not None else range(lo, hi):
        mp, serial = portfolio.meter_point(i), portfolio.serial(i)
        if portfolio.gas[i]:
            if version == 1:
                out.write(f"{mp},{serial},S,register,{day.iso[0]},{portfolio.reg_gas[i]:.3f},m3,actual,{created}")
            continue
        defects = dict((p, kind) for kind, p in plan.hh.get((day.index, i), [])) if version == 1 else {}
        gap = plan.missing.get((day.index, i)) if version == 1 else None
        for p, register, start, value_text, value, quality in _hh_rows(portfolio, day, i, kwh[i - lo],
                                                                      estimated[i - lo]):
            if gap is not None and gap <= p < gap + 4:
                if p == gap:
                    gen.defect("missing_reads", path, None, meter_point=mp,
                               interval_starts=day.iso[gap:gap + 4])
                continue
            if factor != 1.0:
                value_text = f"{round(value * factor, 3):.3f}"
            kind = defects.get(p)
            row_mp, row_reg, row_start, row_value = mp, register, start, value_text
            if kind and kind not in ("duplicate_line", "conflicting_duplicate"):
                row_mp, row_reg, row_start, row_value = _mutate(kind, mp, register, start, value_text,
                                                                options)
            line = out.write(f"{row_mp},{serial},{row_reg},interval,{row_start},{row_value},kWh,{quality},"
                             f"{created}")
            if kind in ("duplicate_line", "conflicting_duplicate"):
                again = value_text if kind == "duplicate_line" else f"{value + 0.111:.3f}"
                line = out.write(f"{mp},{serial},{register},interval,{start},{again},kWh,{quality},{created}")
            if kind:
                gen.defect(kind, path, line, meter_point=mp)
    out.close()
    return path


def _d0010_value(value: float) -> str:
    return f"{math.floor(value)}.0"


def _write_d0010(options: Options, portfolio: Portfolio, plan: _Plan, gen: Generated, day: Day,
                 sequence: int) -> Path | None:
    """Register reads at the start of ``day`` of the meters due (plus an exchanged meter's two meters)."""
    exchange = plan.exchange.get(day.index)
    reset = plan.reset.get(day.index)
    every = options.read_every_days
    due = [i for i in range((-day.index) % every, options.meters, every) if not portfolio.gas[i]]
    if exchange is not None and exchange not in due:
        due = sorted([*due, exchange])
    if not due:
        return None
    if reset is not None:
        previous = portfolio.reg_day[reset]
        portfolio.reg_day[reset] = 0.0
    created_at = cal.from_local_clock(datetime.combine(day.day + timedelta(days=1), datetime.min.time())
                                      + timedelta(hours=6))
    path = gen.out / "d0010" / f"D0010_{day.day:%Y%m%d}_{sequence:06d}.uff"
    gen.file(path, "d0010", day.day, created_at)
    rng = _rng(options.seed, 10, day.index)
    wall = f"{day.day:%Y%m%d}000000"
    out = _Lines(path)
    out.write(f"ZHV|{sequence:010d}|D0010002|D|MLKD|X|MLKS|{cal.to_local_clock(created_at):%Y%m%d%H%M%S}||||OPER|")
    candidates = [i for i in due if i != exchange and i != reset]
    picks = rng.permutation(candidates).tolist() if candidates else []
    bad_mpan = set(picks[: plan.d0010_bad])
    non_numeric = set(picks[plan.d0010_bad: plan.d0010_bad + plan.d0010_non_numeric])
    plan.d0010_bad -= len(bad_mpan)
    plan.d0010_non_numeric -= len(non_numeric)
    groups = 0
    for i in due:
        mp = portfolio.meter_point(i)
        registers = portfolio.registers(i)
        values = ([portfolio.reg_day[i], portfolio.reg_night[i]] if len(registers) == 2
                  else [portfolio.reg_day[i]])
        shown_mp = mp[:12] + str((int(mp[12]) + 1) % 10) if i in bad_mpan else mp
        out.write(f"026|{shown_mp}|V|")
        groups += 1
        meters = [(portfolio.serial(i), "R" if rng.random() > 0.1 else "C", values)]
        if i == exchange:
            meters = [(portfolio.serial(i), "F", values), (f"X{i:08d}", "I", [0.0] * len(values))]
        lines = []
        for serial, reading_type, meter_values in meters:
            out.write(f"028|{serial}|{reading_type}|")
            groups += 1
            for register, value in zip(registers, meter_values, strict=True):
                text = _d0010_value(value)
                if i in non_numeric and not lines:
                    text = text[:-3] + "l.0"
                lines.append(out.write(f"030|{register}|{wall}|{text}|||T|N|"))
                groups += 1
        if i in bad_mpan:
            for line in lines:
                gen.defect("d0010_bad_check_digit", path, line, meter_point=mp)
        if i in non_numeric:
            gen.defect("d0010_non_numeric", path, lines[0], meter_point=mp)
        if i == exchange:
            gen.defect("meter_exchange", path, lines[0], meter_point=mp, old_serial=portfolio.serial(i),
                       new_serial=f"X{i:08d}", day=day.day.isoformat(), lines=lines)
        if i == reset:
            gen.defect("register_reset", path, lines[0], meter_point=mp, previous_value=math.floor(previous),
                       value=0.0)
    out.write(f"ZPT|{sequence:010d}|{groups}||1|{cal.to_local_clock(created_at):%Y%m%d%H%M%S}|")
    out.close()
    if exchange is not None:
        portfolio.exchanged[exchange] = True
        portfolio.reg_day[exchange] = 0.0
        portfolio.reg_night[exchange] = 0.0
    return path


def _copy_with(gen: Generated, source: Path, target: Path, change) -> None:
    """Stream ``source`` to ``target`` through ``change(line_no, line) -> str | bytes | None`` (None drops
    the line), and list ``target`` as a file like ``source``."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        for n, raw in enumerate(src, 1):
            new = change(n, raw.decode("utf-8").rstrip("\n"))
            if new is not None:
                dst.write((new.encode("utf-8") if isinstance(new, str) else new) + b"\n")
    _list_copy(gen, source, target)


def _list_copy(gen: Generated, source: Path, target: Path) -> dict:
    """List ``target`` in ``gen.files`` as a copy of ``source`` (same format, day and creation)."""
    name = source.relative_to(gen.out).as_posix()
    entry = dict(next(f for f in gen.files if f["path"] == name), path=target.relative_to(gen.out).as_posix())
    gen.files.append(entry)
    return entry


def _write_rejected_copies(plan: _Plan, gen: Generated, d0010_file: Path | None,
                           hh_file: Path | None) -> None:
    """File-level defects: damaged copies of a written D0010 file and hh-csv file."""
    if d0010_file is not None:
        stem = d0010_file.with_suffix("")
        for kind, suffix, change in (
            ("truncated_file", "truncated", lambda n, line: None if line.startswith("ZPT|") else line),
            ("trailer_count", "badcount", lambda n, line: _bump_trailer(line)),
            ("unknown_flow", "d0086", lambda n, line: line.replace("|D0010002|", "|D0086001|", 1)
             if line.startswith("ZHV|") else line),
        ):
            for copy in range(plan.other[kind]):
                target = Path(f"{stem}_{suffix}{copy or ''}.uff")
                _copy_with(gen, d0010_file, target, change)
                gen.defect(kind, target)
    if hh_file is not None:
        for copy in range(plan.other["bad_encoding"]):
            target = hh_file.with_name(hh_file.stem + f"_latin1{copy or ''}.csv")
            _copy_with(gen, hh_file, target, _latin1_serial_on_line_2)
            gen.defect("bad_encoding", target, 2)


def _latin1_serial_on_line_2(n: int, line: str) -> str | bytes:
    if n != 2:
        return line
    fields = line.split(",")
    fields[1] = "\xa3" + fields[1]  # a pound sign, written as Latin-1: not UTF-8
    return ",".join(fields).encode("latin-1")


def _bump_trailer(line: str) -> str:
    if not line.startswith("ZPT|"):
        return line
    fields = line.split("|")
    fields[2] = str(int(fields[2]) + 1)
    return "|".join(fields)


class _Lcl:
    """The LCL-shape files of the first electricity meters, appended day by day."""

    def __init__(self, gen: Generated, portfolio: Portfolio, plan: _Plan, options: Options):
        self.files: dict[int, _Lines] = {}
        self.paths: dict[int, Path] = {}
        for i, k in portfolio.lcl.items():
            path = gen.out / "lcl" / f"MAC{k + 1:06d}.csv"
            self.paths[i] = path
            self.files[i] = _Lines(path)
            self.files[i].write(formats.LCL_HEADER)
            gen.file(path, "lcl", None, None)
        self.null = plan.other["lcl_null"]
        self.duplicate = plan.other["lcl_duplicate"]
        self.gen = gen

    def day(self, portfolio: Portfolio, day: Day, i: int, kwh: np.ndarray) -> None:
        out, path = self.files[i], self.paths[i]
        household = f"MAC{portfolio.lcl[i] + 1:06d}"
        for p, start in enumerate(day.starts):
            end = (start + cal.PERIOD).strftime("%Y-%m-%d %H:%M:%S")
            text = f"{kwh[p]:.3f}"
            if p == 5 and self.null:
                self.null -= 1
                self.gen.defect("lcl_null", path, out.write(f"{household},{end},Null"), meter_point=household)
                continue
            out.write(f"{household},{end},{text}")
            if p == 9 and self.duplicate:
                self.duplicate -= 1
                self.gen.defect("lcl_duplicate", path, out.write(f"{household},{end},{text}"),
                                meter_point=household)

    def close(self) -> None:
        for out in self.files.values():
            out.close()


def _write_devices(options: Options, portfolio: Portfolio, plan: _Plan, gen: Generated, day: Day,
                   values: dict[int, np.ndarray], counters: dict, intervals: dict[int, tuple[datetime, str]]) -> None:
    intervals = {i: v for i, v in intervals.items() if v[0] < day.end}
    if not values or not (set(values) & set(portfolio.devices)) and not intervals:
        return
    path = gen.out / "device" / f"DEV_{day.day:%Y%m%d}.jsonl"
    gen.file(path, "device", day.day, day.end)
    rng = _rng(options.seed, 20, day.index)
    out = _Lines(path)
    step = timedelta(minutes=options.device_every_min)
    for i in (i for i in portfolio.devices if i in values):
        kwh = values[i]
        mp = portfolio.meter_point(i)
        t, n = day.start, 0
        while t < day.end:
            p = int((t - day.start) // cal.PERIOD)
            event = {"device_id": f"ihd-{i:06d}", "meter_point": mp, "ts": _iso(t),
                     "power_w": round(float(kwh[p]) * 2000 * float(rng.uniform(0.9, 1.1)), 1)}
            if t.minute == 0:
                event["energy_wh"] = int(counters[i] + 1000 * float(kwh[:p].sum()))
            text = json.dumps(event, separators=(", ", ": "))
            if n == 0 and plan.other["device_malformed"]:
                plan.other["device_malformed"] -= 1
                gen.defect("device_malformed", path, out.write(text[: len(text) // 2]), meter_point=mp)
            else:
                out.write(text)
            t += step
            n += 1
        counters[i] += 1000 * float(kwh.sum())
    for i, (since, interval) in sorted(intervals.items()):
        kwh, mp = values[i], portfolio.meter_point(i)
        for p, t in enumerate(day.starts):
            due = (interval == "30min" or (p == 0 and interval == "daily")
                   or (p == 0 and interval == "monthly" and day.day.day == 1))
            if due and t >= since:
                out.write(json.dumps({"device_id": f"esme-{i:06d}", "meter_point": mp, "ts": _iso(t),
                                      "energy_wh": int(counters[("esme", i)] + 1000 * float(kwh[:p].sum()))},
                                     separators=(", ", ": ")))
        counters[("esme", i)] += 1000 * float(kwh.sum())
    out.close()


def _read_intervals(options: Options, portfolio: Portfolio) -> dict[int, tuple[datetime, str]]:
    """Meter index -> (from, interval) of ``options.read_intervals``' electricity meters in the portfolio."""
    if not options.read_intervals:
        return {}
    index = {portfolio.meter_point(i): i for i in range(options.meters) if not portfolio.gas[i]}
    return {index[mp]: (datetime.fromisoformat(since.replace("Z", "+00:00")), interval)
            for mp, (since, interval) in options.read_intervals.items() if mp in index}


def _write_registry(out: Path, options: Options, portfolio: Portfolio) -> None:
    registry = _Lines(out / "registry.csv")
    registry.write("meter_point,gsp_group,supplier,profile_class,ssc,llfc,effective_from")
    for i in range(options.meters):
        gsp = _GSP_GROUPS[portfolio.gsp[i]][1]
        supplier = _SUPPLIERS[portfolio.supplier[i]]
        if portfolio.gas[i]:
            registry.write(f"{portfolio.meter_point(i)},{gsp},{supplier},,,,{options.start.isoformat()}")
        else:
            pc = portfolio.profile_class(i)
            registry.write(f"{portfolio.meter_point(i)},{gsp},{supplier},{pc},{_SSC[pc]},{_LLFC[pc]},"
                           f"{options.start.isoformat()}")
    registry.close()


_TARIFFS = """\
# The generated portfolio's tariffs (meterlake tariffs load); docs/jobs.md, "Billing".
[tariffs.flat-gen]
kind = "flat"
standing_p_per_day = 53.35
[[tariffs.flat-gen.rates]]
effective_from = "{start}"
unit_p = 24.5

[tariffs.e7-gen]
kind = "tou"
standing_p_per_day = 50.0
[[tariffs.e7-gen.rates]]
effective_from = "{start}"
unit_p = {{ "00043" = 32.0, "00210" = 15.0 }}

[tariffs.agile-gen]
kind = "dynamic"
standing_p_per_day = 46.36
[tariffs.agile-gen.prices]
file = "agile-prices.csv"
time_column = "Period from"
time_format = "%d/%m/%Y %H:%M"
timezone = "Europe/London"
price_column = "Agile Import price (p/kWh)"
"""


def _write_billing(out: Path, options: Options, portfolio: Portfolio) -> None:
    """accounts.csv, tariffs.toml and agile-prices.csv (see the module docstring)."""
    accounts = _Lines(out / "accounts.csv")
    accounts.write("account,meter_point,tariff,effective_from,bill_day")
    for i in range(options.meters):
        if portfolio.gas[i]:
            continue
        tariff = "e7-gen" if portfolio.economy7[i] else "agile-gen" if i % 3 == 0 else "flat-gen"
        accounts.write(f"A{i:07d},{portfolio.meter_point(i)},{tariff},{options.start.isoformat()},1")
    accounts.close()
    (out / "tariffs.toml").write_text(_TARIFFS.format(start=options.start.isoformat()), encoding="utf-8")
    prices = _Lines(out / "agile-prices.csv")
    prices.write("Period from,Agile Import price (p/kWh)")
    rng = _rng(options.seed, 20)
    for index in range(options.days):
        day = Day.of(options.start + timedelta(days=index), index)
        noise = rng.normal(0.0, 2.0, len(day.starts))
        for n, start in enumerate(day.starts):  # in time order: a repeated clock time's BST row comes first
            wall = cal.to_local_clock(start)
            peak = 16 <= wall.hour < 19
            prices.write(f"{wall:%d/%m/%Y %H:%M},{max(0.0, (30.0 if peak else 18.0) + noise[n]):.2f}")
    prices.close()


def _arrival_order(gen: Generated, plan: _Plan, hh_paths: dict[tuple[int, int, int], Path]) -> None:
    """Reorder ``gen.files`` (written order) into arrival order for late files, corrections, duplicates."""
    order = [f["path"] for f in gen.files]

    def rel(path: Path) -> str:
        return path.relative_to(gen.out).as_posix()

    def move_after(name: str, anchor: str) -> None:
        order.remove(name)
        order.insert(order.index(anchor) + 1, name)

    for k, (d, c) in enumerate(plan.corrections):
        if (d, c, 2) not in hh_paths:
            continue
        v1, v2 = rel(hh_paths[(d, c, 1)]), rel(hh_paths[(d, c, 2)])
        arrives = "after_original" if k % 2 == 0 else "before_original"
        if arrives == "before_original":
            move_after(v1, v2)  # the original is delivered late, after its correction
        gen.defect("correction", hh_paths[(d, c, 2)], None, supersedes=v1, arrives=arrives)
    for d, c in plan.late:
        late = rel(hh_paths[(d, c, 1)])
        last_later_day = [name for name in order if name.startswith("hh/") and name != late
                          and name.split("_")[1] > hh_paths[(d, c, 1)].name.split("_")[1]][-1]
        move_after(late, last_later_day)
        gen.defect("late_file", hh_paths[(d, c, 1)], None, arrives_after=last_later_day)
    by_path = {f["path"]: f for f in gen.files}
    gen.files = [dict(by_path[name], arrival=n) for n, name in enumerate(order)]


def generate(options: Options, out: str | Path) -> dict:
    """Write the portfolio under ``out`` (created; files of an earlier run there are overwritten) and return
    the manifest (also written to ``out/manifest.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    portfolio = Portfolio(options)
    plan = _Plan(options, portfolio)
    gen = Generated(out)
    _write_registry(out, options, portfolio)
    _write_billing(out, options, portfolio)
    lcl = _Lcl(gen, portfolio, plan, options)
    counters: dict = {i: float(np.floor(portfolio.reg_day[i])) * 1000 for i in portfolio.devices}
    intervals = _read_intervals(options, portfolio)
    counters.update({("esme", i): float(np.floor(portfolio.reg_day[i])) * 1000 for i in intervals})
    hh_paths: dict[tuple[int, int, int], Path] = {}
    first_d0010 = first_hh = None
    sequence = 0
    chunks = -(-options.meters // options.meters_per_file)
    latest_created = None
    for index in range(options.days):
        day = Day.of(options.start + timedelta(days=index), index)
        sequence += 1
        d0010_path = _write_d0010(options, portfolio, plan, gen, day, sequence)
        first_d0010 = first_d0010 or d0010_path
        device_values: dict[int, np.ndarray] = {}
        for chunk in range(chunks):
            lo = chunk * options.meters_per_file
            hi = min(options.meters, lo + options.meters_per_file)
            kwh, estimated, gas_m3 = _chunk_values(options, portfolio, day, lo, hi)
            hh_paths[(index, chunk, 1)] = _write_hh(options, portfolio, plan, gen, day, chunk, lo, hi, kwh,
                                                    estimated, version=1)
            first_hh = first_hh or hh_paths[(index, chunk, 1)]
            if (index, chunk) in plan.corrections:
                electricity = [i for i in range(lo, hi) if not portfolio.gas[i]]
                picked = sorted(int(i) for i in plan.rng.permutation(electricity)[:3])
                if picked:
                    hh_paths[(index, chunk, 2)] = _write_hh(options, portfolio, plan, gen, day, chunk, lo, hi,
                                                            kwh, estimated, version=2, meters=picked,
                                                            factor=1.1)
            if (index, chunk) in plan.duplicate:
                source = hh_paths[(index, chunk, 1)]
                target = source.with_name(source.stem + "_dup.csv")
                target.write_bytes(source.read_bytes())
                entry = _list_copy(gen, source, target)
                for d in [d for d in gen.defects if d["file"] == source.relative_to(out).as_posix()
                          and d["expect"] in ("quarantine", "duplicate")]:
                    gen.defects.append(dict(d, file=entry["path"]))
                gen.defect("duplicate_file", target, None, duplicate_of=source.relative_to(out).as_posix())
            night = np.isin(day.utc_slots, list(_NIGHT_SLOTS))
            for i in range(lo, hi):
                if portfolio.gas[i]:
                    portfolio.reg_gas[i] = round(portfolio.reg_gas[i] + gas_m3[i - lo], 3)
                    continue
                if portfolio.economy7[i]:
                    portfolio.reg_day[i] += kwh[i - lo][~night].sum()
                    portfolio.reg_night[i] += kwh[i - lo][night].sum()
                else:
                    portfolio.reg_day[i] += kwh[i - lo].sum()
                if i in portfolio.lcl:
                    lcl.day(portfolio, day, i, kwh[i - lo])
                if i in portfolio.devices or i in intervals:
                    device_values[i] = kwh[i - lo]
        _write_devices(options, portfolio, plan, gen, day, device_values, counters, intervals)
        latest_created = day.end + timedelta(days=2)
    lcl.close()
    _write_rejected_copies(plan, gen, first_d0010, first_hh)
    _arrival_order(gen, plan, hh_paths)
    valid_as_of = max(latest_created, max(datetime.fromisoformat(f["created_utc"]) for f in gen.files
                                          if f["created_utc"])) + timedelta(hours=1)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "options": {**asdict(options), "start": options.start.isoformat()},
        "valid_as_of": _iso(valid_as_of),
        "counts": {"meters": options.meters, "electricity": int((~portfolio.gas).sum()),
                   "economy7": int(portfolio.economy7.sum()), "gas": int(portfolio.gas.sum()),
                   "files": len(gen.files), "defects": len(gen.defects)},
        "files": gen.files,
        "defects": gen.defects,
    }
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    return manifest
