"""The GB settlement calendar: the one place UK local time is handled.

Rules
-----
* A settlement (retail) day is 00:00 to 24:00 Europe/London local time.
* Settlement period 1 starts at local midnight; every period is 30 minutes of real (UTC) time, numbered on
  through the day. So a day has 46 periods on the spring clock change (last Sunday of March, 01:00 GMT becomes
  02:00 BST), 50 on the autumn change (last Sunday of October, local 01:00-02:00 happens twice), 48 otherwise.
* ``period = floor((utc - utc_of_local_midnight) / 30 min) + 1``, where ``utc_of_local_midnight`` is the UTC
  instant at which the settlement date begins (23:00 the day before in BST, 00:00 in GMT). The Spark jobs, the
  mirror and the dbt macro reproduce this formula; the tests of this module pin it down.

Why UTC is stored
-----------------
Every instant in the lake (``read_at``, a period's start) is stored in UTC: UTC has no repeated or missing
hours, so instants sort, subtract and join without ambiguity. Local time is derived only here, as
(settlement_date, settlement_period); a naive timestamp is refused rather than guessed at.

Grain
-----
One settlement period is one half-hour of one settlement date, keyed by
``(settlement_date, settlement_period)``; its UTC start is :func:`period_start`.

API
---
Scalar: :func:`periods_in_day`, :func:`day_bounds`, :func:`locate`, :func:`period_start`, :func:`period_end`,
:func:`periods`, :func:`clock_change_days`; local clock time (for flows such as D0010 that write it, and for
shapes by time of day): :func:`from_local_clock`, :func:`to_local_clock`.
Vectorised (no Python loop per row; only one per distinct day): :func:`locate_arrow`, :func:`locate_pandas`,
:func:`period_start_arrow`.

Run: ``meterlake calendar day 2026-03-29``, ``meterlake calendar locate 2026-10-25T01:30:00Z``,
``meterlake calendar period 2026-10-25 4``, ``meterlake calendar changes 2026``.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pandas as pd

LONDON = ZoneInfo("Europe/London")
PERIOD = timedelta(minutes=30)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
# Up to this many days between the earliest and latest row, day starts go in a dense table indexed by day
# number (O(n)); beyond it (stray far-off timestamps) the table holds only the distinct days, via np.unique.
_DENSE_DAYS = 50_000


# ----------------------------------------------------------------------------------------------------- scalar


def _check_date(d: date) -> date:
    # a datetime is a date subclass; accepting one would silently drop its time and zone
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"expected a datetime.date, got {type(d).__name__}")
    return d


def _local_midnight_utc(d: date) -> datetime:
    # GB clocks change at 01:00 UTC, so local midnight always exists and is never repeated
    return datetime.combine(d, time(), tzinfo=LONDON).astimezone(UTC)


def day_bounds(d: date) -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive: the next day's start) of settlement date ``d``."""
    _check_date(d)
    return _local_midnight_utc(d), _local_midnight_utc(d + timedelta(days=1))


def periods_in_day(d: date) -> int:
    """Number of settlement periods on ``d``: 46 (spring clock change), 50 (autumn) or 48."""
    start, end = day_bounds(d)
    return (end - start) // PERIOD


def period_start(d: date, period: int) -> datetime:
    """UTC start of settlement period ``period`` (1-based) of settlement date ``d``.

    Raises ValueError for a period that does not exist on that day.
    """
    start, end = day_bounds(d)
    count = (end - start) // PERIOD
    if isinstance(period, bool) or not isinstance(period, int | np.integer):
        raise TypeError(f"settlement period must be an int, got {type(period).__name__}")
    if not 1 <= period <= count:
        raise ValueError(f"{d.isoformat()} has {count} periods; period {period} does not exist")
    return start + (int(period) - 1) * PERIOD


def period_end(d: date, period: int) -> datetime:
    """UTC end (exclusive) of settlement period ``period`` of ``d``: its start plus 30 minutes."""
    return period_start(d, period) + PERIOD


def periods(d: date) -> Iterator[tuple[int, datetime]]:
    """Every ``(settlement_period, start_utc)`` of ``d``, in order."""
    start, end = day_bounds(d)
    for i in range((end - start) // PERIOD):
        yield i + 1, start + i * PERIOD


def locate(instant: datetime) -> tuple[date, int]:
    """The ``(settlement_date, settlement_period)`` containing a timezone-aware instant.

    An instant inside a period locates that period (periods are half-open: start inclusive, end exclusive).
    Raises ValueError for a naive datetime: it could be UTC or local, and a guess mis-settles an hour.
    """
    if not isinstance(instant, datetime):
        raise TypeError(f"expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()}: give a timezone (e.g. UTC, '...Z')")
    utc = instant.astimezone(UTC)
    settlement_date = utc.astimezone(LONDON).date()
    return settlement_date, (utc - _local_midnight_utc(settlement_date)) // PERIOD + 1


def clock_change_days(year: int) -> list[tuple[date, int]]:
    """The days of ``year`` that do not have 48 periods, as ``(date, periods)``, in date order.

    Derived from the time-zone database, not from the last-Sunday rule, so it follows any change of rule.
    """
    day, out = date(year, 1, 1), []
    while day.year == year:
        n = periods_in_day(day)
        if n != 48:
            out.append((day, n))
        day += timedelta(days=1)
    return out


def from_local_clock(wall: datetime, *, fold: int = 0) -> datetime:
    """The UTC instant of a naive UK clock time ``wall`` (as written by flows such as D0010).

    In the repeated autumn hour, ``fold=0`` picks the first (BST) occurrence and ``fold=1`` the second (GMT).
    Raises ValueError for an aware datetime (it is an instant already) and for a clock time that does not
    exist (inside the skipped spring hour, 01:00-02:00).
    """
    if not isinstance(wall, datetime):
        raise TypeError(f"expected a datetime, got {type(wall).__name__}")
    if wall.tzinfo is not None:
        raise ValueError(f"{wall.isoformat()} already has a time zone: it is an instant, not a clock time")
    local = wall.replace(tzinfo=LONDON, fold=fold)
    utc = local.astimezone(UTC)
    if utc.astimezone(LONDON).replace(tzinfo=None) != wall:
        raise ValueError(f"{wall.isoformat()} does not exist in UK local time (clocks went forward)")
    return utc


def to_local_clock(instant: datetime) -> datetime:
    """The naive UK clock time showing at a timezone-aware ``instant`` (the inverse of
    :func:`from_local_clock`)."""
    if not isinstance(instant, datetime):
        raise TypeError(f"expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()}: give a timezone (e.g. UTC, '...Z')")
    return instant.astimezone(LONDON).replace(tzinfo=None)


# ------------------------------------------------------------------------------------------------- vectorised


def _day_start_table(days: np.ndarray, per_second: int) -> np.ndarray:
    """UTC start of each settlement date (given as days since 1970-01-01), in epoch units of ``per_second``.

    One Python call per element: callers pass distinct days only.
    """
    starts = np.empty(len(days), dtype=np.int64)
    for i, day in enumerate(days.tolist()):
        try:
            start = _local_midnight_utc(_EPOCH_DATE + timedelta(days=day))
        except OverflowError:
            raise ValueError("instant outside the calendar's range (0001-01-02 to 9999-12-30)") from None
        # local midnights are whole seconds, so this is exact in any unit
        starts[i] = (start - _EPOCH) // timedelta(seconds=1) * per_second
    return starts


def _starts_around(days: np.ndarray, per_second: int) -> tuple[np.ndarray, np.ndarray]:
    """A table of day starts and an index into it: ``table[base + k]`` is the UTC start of settlement date
    ``days + k - 1`` for k in 0, 1, 2 (the day before, the day itself, the day after).

    The table is built from the distinct days only, so the Python work is per day, never per row.
    """
    if len(days) == 0:
        return np.zeros(3, dtype=np.int64), np.zeros(0, dtype=np.int64)
    lo, hi = int(days.min()), int(days.max())
    if hi - lo < _DENSE_DAYS:
        return _day_start_table(np.arange(lo - 1, hi + 2, dtype=np.int64), per_second), days - lo
    distinct, inverse = np.unique(days, return_inverse=True)
    around = (distinct[:, None] + np.array([-1, 0, 1], dtype=np.int64)).ravel()
    return _day_start_table(around, per_second), inverse.reshape(-1) * 3


def _to_arrow(values: np.ndarray, type_: pa.DataType, valid: pa.Array) -> pa.Array:
    """``values`` as an Arrow array of ``type_``, null wherever the boolean array ``valid`` is false."""
    if pc.all(valid).as_py() is not False:
        return pa.array(values, type=type_)
    return pa.array(values, type=type_, mask=~np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool))


def _filled_int64(arr: pa.Array) -> np.ndarray:
    """An integer column as int64 numpy, nulls replaced by the smallest value so they widen no day range."""
    if arr.null_count:
        smallest = pc.min(arr)
        arr = arr.fill_null(smallest if smallest.is_valid else 0)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.int64)


def _locate_chunk(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    per_second = _PER_SECOND[arr.type.unit]
    values = _filled_int64(arr.cast(pa.int64()))
    utc_day = values // (86_400 * per_second)
    table, base = _starts_around(utc_day, per_second)
    # London is always within a day of UTC (from -0:01:15 local mean time before 1848 to +2:00 in wartime
    # double summer time), so the settlement date is the UTC date, the day before or the day after:
    # k = 0, 1 or 2 counts the day starts at or before the instant.
    k = (values >= table[base + 1]).astype(np.int64) + (values >= table[base + 2])
    settlement_day = utc_day + k - 1
    period = (values - table[base + k]) // (1_800 * per_second) + 1
    valid = arr.is_valid()
    dates = _to_arrow(settlement_day.astype(np.int32), pa.int32(), valid).view(pa.date32())
    return dates, _to_arrow(period.astype(np.int8), pa.int8(), valid)


def _check_timestamp_type(t: pa.DataType) -> None:
    if not pa.types.is_timestamp(t):
        raise TypeError(f"expected a timestamp column, got {t}")
    if t.tz is None:
        raise ValueError(f"naive timestamps ({t}) are ambiguous: store instants as timestamp with tz='UTC'")


def locate_arrow(ts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array] | tuple[pa.ChunkedArray, ...]:
    """Vectorised :func:`locate`: settlement dates (``date32``) and periods (``int8``) for a timestamp column.

    ``ts`` is a timezone-aware Arrow timestamp column of any unit (s, ms, us, ns). Arrow stores instants as
    UTC whatever the tz label, so any tz is accepted; naive timestamps are refused (ValueError). Nulls
    propagate. A ChunkedArray in gives ChunkedArrays out, chunk for chunk.
    """
    _check_timestamp_type(ts.type)
    if isinstance(ts, pa.ChunkedArray):
        parts = [_locate_chunk(chunk) for chunk in ts.chunks]
        return (pa.chunked_array([p[0] for p in parts], type=pa.date32()),
                pa.chunked_array([p[1] for p in parts], type=pa.int8()))
    return _locate_chunk(ts)


def locate_pandas(series: pd.Series | pd.DatetimeIndex) -> pd.DataFrame:
    """Vectorised :func:`locate` for tz-aware pandas datetimes.

    Returns a DataFrame with the input Series' index and columns ``settlement_date`` (``datetime.date``
    objects, None where the input is NaT) and ``settlement_period`` (nullable ``Int8``). Naive datetimes are
    refused (ValueError).
    """
    import pandas as pd

    s = series if isinstance(series, pd.Series) else pd.Series(series)
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(s.dtype):
            raise ValueError("naive datetimes are ambiguous: localise or convert them to UTC first")
        raise TypeError(f"expected tz-aware datetimes, got dtype {s.dtype}")
    dates, numbers = locate_arrow(pa.Array.from_pandas(s))
    return pd.DataFrame(
        {
            "settlement_date": dates.to_pandas(date_as_object=True).array,
            "settlement_period": numbers.to_pandas(types_mapper={pa.int8(): pd.Int8Dtype()}.get).array,
        },
        index=s.index,
    )


def period_start_arrow(dates: pa.Array | pa.ChunkedArray, periods: pa.Array | pa.ChunkedArray,
                       unit: str = "us") -> pa.Array:
    """Vectorised :func:`period_start`: the UTC start (``timestamp[unit, tz=UTC]``) of each (date, period).

    ``dates`` is date32 (or date64), ``periods`` any integer column of the same length. A null in either gives
    a null. A period that does not exist on its date raises ValueError naming the first such pair.
    """
    if unit not in _PER_SECOND:
        raise ValueError(f"unit must be one of {sorted(_PER_SECOND)}, got {unit!r}")
    if isinstance(dates, pa.ChunkedArray):
        dates = dates.combine_chunks()
    if isinstance(periods, pa.ChunkedArray):
        periods = periods.combine_chunks()
    if len(dates) != len(periods):
        raise ValueError(f"dates and periods differ in length: {len(dates)} != {len(periods)}")
    if not pa.types.is_date(dates.type):
        raise TypeError(f"expected a date column, got {dates.type}")
    if not pa.types.is_integer(periods.type):
        raise TypeError(f"expected an integer period column, got {periods.type}")
    per_second = _PER_SECOND[unit]
    valid = pc.and_(dates.is_valid(), periods.is_valid())
    days = _filled_int64(dates.cast(pa.date32()).cast(pa.int32()))
    numbers = _filled_int64(periods.cast(pa.int64()))
    table, base = _starts_around(days, per_second)
    start, next_start = table[base + 1], table[base + 2]
    per_period = 1_800 * per_second
    counts = (next_start - start) // per_period
    bad = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool) & ((numbers < 1) | (numbers > counts))
    if bad.any():
        i = int(np.argmax(bad))
        day = _EPOCH_DATE + timedelta(days=int(days[i]))
        count, number = int(counts[i]), int(numbers[i])
        raise ValueError(f"{day.isoformat()} has {count} periods; period {number} does not exist")
    result = start + (numbers - 1) * per_period
    return _to_arrow(result, pa.int64(), valid).view(pa.timestamp(unit, tz="UTC"))
