"""What every format parser shares: reading lines safely, checking fields, collecting reads in batches.

A parser reads ``(line_no, text, terminated)`` from :func:`iter_lines`, checks each record with the helpers
here, and hands each good read to :meth:`Collector.read` and each bad record to :meth:`Collector.quarantine`.
A problem with the whole file raises :class:`FileRejected`. The collector drops exact duplicates, quarantines
conflicting ones, and cuts Arrow batches of at most ``batch_rows`` reads that do not split a meter's
settlement day when the file lists each meter-day's reads together.

Memory is bounded whatever the file's size: one batch of reads, one of quarantine records, and a window of the
most recent :data:`DEFAULT_DUPLICATE_WINDOW` distinct read keys for duplicate detection (some 2,000
meter-days of half-hours: real files list each meter-day's reads together, and the published LCL duplicates
are adjacent rows). Duplicates further apart than the window are not seen here; the store writes them
idempotently (same key, same version; a conflicting value far away is last-write-wins there).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import re
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from hashlib import blake2b
from itertools import repeat, starmap
from operator import methodcaller
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from meterlake import calendar as cal
from meterlake import schema
from meterlake.errors import MeterlakeError
from meterlake.instants import iso_utc
from meterlake.privacy import ERASED_REASON, ErasureList

DEFAULT_BATCH_ROWS = 50_000
DEFAULT_DUPLICATE_WINDOW = 100_000
PERIOD_US = 1_800_000_000
# Device clocks drift: a device event up to this far ahead of "now" is not yet "in the future".
DEVICE_CLOCK_TOLERANCE_US = 5 * 60 * 1_000_000

REGISTER_RE = re.compile(r"[A-Z0-9]{1,2}")


class FileRejected(MeterlakeError):
    """The whole file is refused (``reason`` is one of :data:`meterlake.schema.REJECTION_REASONS`)."""

    type = "file_rejected"

    def __init__(self, reason: str, detail: str):
        if reason not in schema.REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}", reason=reason, detail=detail)
        self.reason = reason
        self.detail = detail
        self.lines = 0


class RecordProblem(Exception):
    """Raised by the field checks; the parser turns it into a quarantine record."""

    def __init__(self, field: str | None, reason: str, detail: str):
        super().__init__(detail)
        self.field, self.reason, self.detail = field, reason, detail


# ------------------------------------------------------------------------------------------------ reading


class _HashingReader(io.RawIOBase):
    """Passes a binary file through, feeding every byte read to a SHA-256 (the file's digest)."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        if n:
            self.sha256.update(memoryview(buffer)[:n])
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


@dataclass
class Source:
    """An open file: its lines (bytes), and (once read to the end) the SHA-256 of its bytes as stored."""

    path: Path
    _hasher: _HashingReader
    binary: io.BufferedIOBase

    @property
    def digest(self) -> bytes:
        return self._hasher.sha256.digest()

    def close(self) -> None:
        self.binary.close()


def open_source(path: Path) -> Source:
    """Open ``path`` for reading, gunzipping it when it starts with the gzip magic."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by Source.close
    head = raw.peek(2)[:2]
    hasher = _HashingReader(raw)
    buffered = io.BufferedReader(hasher, buffer_size=1 << 20)
    binary = gzip.GzipFile(fileobj=buffered, mode="rb") if head == b"\x1f\x8b" else buffered
    return Source(path, hasher, binary)


def iter_lines(source: Source) -> Iterator[tuple[int, str, bool]]:
    """``(line_no, text_without_line_end, terminated)`` for every line, decoded as UTF-8 (a BOM on the first
    line is dropped; lines end with LF or CRLF). Undecodable or cut input raises :class:`FileRejected` (which
    the caller sees before anything from the file is published)."""
    line_no = 0
    try:
        for raw in source.binary:
            line_no += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FileRejected("unreadable_encoding", f"line {line_no}: not UTF-8 ({exc.reason} at "
                                                          f"byte {exc.start + 1} of the line)") from None
            if line_no == 1 and line.startswith("\ufeff"):
                line = line[1:]
            if "\x00" in line:
                raise FileRejected("unreadable_encoding", f"line {line_no}: NUL byte (binary data)")
            stripped = line.rstrip("\r\n")
            yield line_no, stripped, len(stripped) != len(line)
    except EOFError:
        raise FileRejected("truncated_file", f"the gzip stream ends early, after line {line_no}") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        detail = f"damaged gzip stream after line {line_no}: {exc}"
        raise FileRejected("unreadable_encoding", detail) from None


def first_line(path: Path) -> str | None:
    """The first non-blank line of ``path`` (decoded as :func:`open_source` does), or None (no such line)."""
    source = open_source(path)
    try:
        for _, text, _ in iter_lines(source):
            if text.strip():
                return text
        return None
    finally:
        source.close()


def header_names(lines: Iterator[tuple[int, str, bool]]) -> list[str]:
    """The names of a comma-separated file's header line, as written (no quoting: no name holds a comma); a file
    without one is rejected."""
    header = next(lines, None)
    if header is None:
        raise FileRejected("empty_file", "no header line")
    return header[1].split(",")


def split_fields(text: str, width: int) -> list[str]:
    """A record's fields (no quoting); a line with another number of fields than the header's is malformed."""
    fields = text.split(",")
    if len(fields) != width:
        raise RecordProblem(None, "malformed_line", f"{len(fields)} fields, expected {width}")
    return fields


# --------------------------------------------------------------------------------------------- field checks


class TimestampParser:
    """ISO 8601 text -> microseconds since the epoch, remembering recent answers (files repeat timestamps)."""

    def __init__(self, naive_is_utc: bool = False, limit: int = 100_000):
        self._cache: dict[str, int] = {}
        self._naive_is_utc = naive_is_utc
        self._limit = limit

    def __call__(self, text: str, field: str) -> int:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            raise RecordProblem(field, "bad_timestamp", f"{text!r} is not an ISO 8601 timestamp") from None
        if instant.tzinfo is None:
            if not self._naive_is_utc:
                raise RecordProblem(field, "bad_timestamp", f"{text!r} has no UTC offset (add Z)")
            instant = instant.replace(tzinfo=UTC)
        us = schema.epoch_us(instant)
        if len(self._cache) >= self._limit:
            self._cache.clear()
        self._cache[text] = us
        return us


def local_clock_us(text: str, field: str) -> int:
    """A D0010 date-time ``CCYYMMDDHHMMSS`` in UK clock time -> UTC microseconds (via the calendar)."""
    if len(text) != 14 or not text.isdigit():
        raise RecordProblem(field, "bad_timestamp", f"{text!r} is not CCYYMMDDHHMMSS")
    try:
        wall = datetime.strptime(text, "%Y%m%d%H%M%S")
        return schema.epoch_us(cal.from_local_clock(wall))
    except ValueError as exc:
        raise RecordProblem(field, "bad_timestamp", f"{text!r}: {exc}") from None


def number(text: str, field: str) -> float:
    """A finite float from ``text``; empty is ``missing_value``, anything else ``non_numeric_value``."""
    text = text.strip()
    if not text or text.lower() == "null":
        raise RecordProblem(field, "missing_value", f"{field} is empty" if not text else f"{field} is {text}")
    try:
        value = float(text)
    except ValueError:
        raise RecordProblem(field, "non_numeric_value", f"{field} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise RecordProblem(field, "non_numeric_value", f"{field} {text!r} is not a finite number")
    return value


def register(text: str, field: str = "register_id") -> str:
    if not REGISTER_RE.fullmatch(text):
        detail = f"register {text!r} is not 1-2 upper-case letters or digits"
        raise RecordProblem(field, "unknown_register", detail)
    return text


def bad_line(out: Collector, line_no: int, problem: RecordProblem, text: str, terminated: bool,
             meter_point: str | None = None, start_us: int | None = None) -> None:
    """A line with ``problem``: quarantined, unless it is the file's unterminated last line, which was cut short
    (a cut last line parses badly; a complete one that is bad is only quarantined): then the file is rejected."""
    if not terminated:
        raise FileRejected("truncated_file", f"the last line ({line_no}) is unterminated and "
                                             f"incomplete: {problem.detail}") from None
    out.problem(line_no, problem, text, meter_point, start_us)


def check_grid(start_us: int, field: str) -> None:
    if start_us % PERIOD_US:
        shown = iso_utc(schema.from_epoch_us(start_us))
        raise RecordProblem(field, "off_grid_timestamp", f"{shown} is not on the half-hour grid")


def check_not_future(end_us: int, now_us: int, field: str, tolerance_us: int = 0) -> None:
    if end_us > now_us + tolerance_us:
        shown = iso_utc(schema.from_epoch_us(end_us))
        raise RecordProblem(field, "future_timestamp", f"the read ends at {shown}, after the validation time")


# ------------------------------------------------------------------------------------------------ collecting


@dataclass
class FileInfo:
    """What a parser learns about the file as a whole (for its version and ids)."""

    path: Path
    source_name: str
    format: str
    created_us: int | None = None  # the creation instant given by the data (or the latest instant in it)
    sequence: int = 0  # orders sources created within one second (e.g. the D0010 file identifier)

    def saw_instant(self, us: int) -> None:
        """For formats without a header: the file is as recent as the latest instant in it."""
        if self.created_us is None or us > self.created_us:
            self.created_us = us

    @property
    def version(self) -> int:
        return (self.created_us or 0) + self.sequence


class DuplicateWindow:
    """The most recent ``capacity`` distinct read keys, with the value, quality and line of each first read.

    A key is kept as its 128-bit BLAKE2b digest (a collision is astronomically unlikely), so an entry costs
    under 500 bytes: the default window stays under 50 MB whatever the file's size.
    """

    def __init__(self, capacity: int = DEFAULT_DUPLICATE_WINDOW):
        self._seen: dict[bytes, tuple] = {}
        self._order: deque[bytes] = deque()
        self._capacity = capacity

    def check(self, key: str, value: float, quality: str, line: int | None) -> tuple | None:
        """None for a new key (now remembered), else the earlier ``(value, quality, line)``."""
        digest = _DIGEST(_BLAKE2B_16(key.encode()))
        earlier = self._seen.get(digest)
        if earlier is not None:
            return earlier
        self._seen[digest] = (value, quality, line)
        self._order.append(digest)
        if len(self._order) > self._capacity:
            del self._seen[self._order.popleft()]
        return None

    def add_all_new(self, keys: list[bytes], values: list, qualities: list, lines: list) -> bool:
        """Remember a block of keys at once, as :meth:`check` one by one would, and return True, when every key
        is new (none remembered, none twice in the block); else remember nothing and return False (the caller
        then checks them one by one)."""
        digests = list(map(_DIGEST, map(_BLAKE2B_16, keys)))
        seen = self._seen
        if len(set(digests)) != len(digests) or any(d in seen for d in digests):
            return False
        seen.update(zip(digests, zip(values, qualities, lines, strict=True), strict=True))
        self._order.extend(digests)
        excess = len(self._order) - self._capacity
        if excess > 0:  # forget the oldest keys (the loop runs in C: no Python call per key)
            deque(map(seen.__delitem__, starmap(self._order.popleft, repeat((), excess))), maxlen=0)
        return True


#: a read's duplicate-window key: its read-key fields (meter point, serial, register, kind, start, device, unit)
#: joined by this separator, a missing one as "None"; :meth:`Collector.read` and :meth:`Collector.read_block`
#: build the same key, each in its own form, and the window keeps a 16-byte BLAKE2b digest of it
_KEY_SEP = "\x1f"
_BLAKE2B_16 = partial(blake2b, digest_size=16)
_DIGEST = methodcaller("digest")

BatchSink = Callable[[pa.RecordBatch], None]


@dataclass
class Collector:
    """Collects one file's reads and quarantine records into bounded Arrow batches for ``reads_sink`` and
    ``quarantine_sink`` (either may be None: counted only, as in a dry run)."""

    source_name: str
    reads_sink: BatchSink | None = None
    quarantine_sink: BatchSink | None = None
    batch_rows: int = DEFAULT_BATCH_ROWS
    window: DuplicateWindow = field(default_factory=DuplicateWindow)
    reads: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: Counter = field(default_factory=Counter)
    #: the erasure list (meterlake.privacy.ErasureList): a read of a meter on it is dropped and counted under
    #: ``erased_meter``, not quarantined (a quarantine record keeps the line in clear)
    erased: ErasureList | None = None

    def __post_init__(self):
        self._cols: dict[str, list] = {name: [] for name in _BUFFER_COLUMNS}
        self._blocks: list[pa.RecordBatch] = []  # reads taken before those in _cols, already as Arrow
        self._block_rows = 0
        self._quarantine: list[dict] = []

    def read(self, line: int | None, raw: str | None, *, meter_point: str, meter_serial: str | None,
             fuel: str, register_id: str | None, read_kind: str, start_us: int, value: float, unit: str,
             quality: str, device_id: str | None = None, version: int | None = None) -> bool:
        """Take one good read; returns False when it was an exact duplicate (dropped) or a conflicting one
        (quarantined), or of an erased meter (dropped)."""
        if self.erased is not None and self.erased(meter_point):
            self.reasons[ERASED_REASON] += 1
            return False
        sep = _KEY_SEP
        key = (f"{meter_point}{sep}{meter_serial}{sep}{register_id}{sep}{read_kind}{sep}{start_us}{sep}"
               f"{device_id}{sep}{unit}")
        earlier = self.window.check(key, value, quality, line)
        if earlier is not None:
            if earlier[:2] == (value, quality):
                self.duplicates += 1
                return False
            where = f"line {earlier[2]}" if earlier[2] is not None else "an earlier record"
            self.quarantine(line, "value", "conflicting_duplicate",
                            f"{where} has the same read with value {earlier[0]} ({earlier[1]}), "
                            f"this one {value} ({quality})", raw, meter_point, start_us)
            return False
        self.reads += 1
        if self.reads_sink is None:
            return True
        c = self._cols
        c["meter_point"].append(meter_point)
        c["meter_serial"].append(meter_serial)
        c["fuel"].append(fuel)
        c["register_id"].append(register_id)
        c["read_kind"].append(read_kind)
        c["interval_start_utc"].append(start_us)
        c["value"].append(value)
        c["unit"].append(unit)
        c["quality"].append(quality)
        c["source_line"].append(line)
        c["device_id"].append(device_id)
        c["source_version"].append(version)
        if self._block_rows + len(c["meter_point"]) >= self.batch_rows:
            self._flush_reads(final=False)
        return True

    def read_block(self, **columns: pa.Array) -> bool:
        """Take a block of checked reads at once (an Arrow array for each of :meth:`read`'s fields, plus
        ``line``), exactly as :meth:`read` would take them one by one when none is a duplicate; returns False
        and takes nothing when some need :meth:`read`'s decision (a duplicate, or an erasure list to consult)."""
        if self.erased is not None:
            return False
        n = len(columns["meter_point"])
        none = pa.scalar(str(None), pa.string())  # what :meth:`read`'s str() makes of a missing field
        keys = pc.binary_join_element_wise(
            columns["meter_point"], pc.fill_null(columns["meter_serial"], none),
            pc.fill_null(columns["register_id"], none), columns["read_kind"],
            pc.cast(columns["start_us"], pa.string()), pc.fill_null(columns["device_id"], none), columns["unit"],
            _KEY_SEP)
        if not self.window.add_all_new(keys.cast(pa.binary()).to_pylist(), columns["value"].to_pylist(),
                                       columns["quality"].to_pylist(), columns["line"].to_pylist()):
            return False
        self.reads += n
        if self.reads_sink is None:
            return True
        self._hold_cols()
        self._blocks.append(schema.build_reads(
            source_file=self.source_name, meter_point=columns["meter_point"],
            meter_serial=columns["meter_serial"], fuel=columns["fuel"], register_id=columns["register_id"],
            read_kind=columns["read_kind"], interval_start_utc=columns["start_us"], value=columns["value"],
            unit=columns["unit"], quality=columns["quality"], source_line=columns["line"],
            device_id=columns["device_id"], source_version=columns["version"]))
        self._block_rows += n
        if self._block_rows >= self.batch_rows:
            self._flush_reads(final=False)
        return True

    def _hold_cols(self) -> None:
        """Move the reads buffered as Python values into :attr:`_blocks` (keeping their order)."""
        c = self._cols
        if c["meter_point"]:
            self._blocks.append(schema.build_reads(source_file=self.source_name, **c))
            self._block_rows += len(c["meter_point"])
            self._cols = {name: [] for name in _BUFFER_COLUMNS}

    def quarantine(self, line: int | None, field: str | None, reason: str, detail: str,
                   raw: str | None, meter_point: str | None = None, start_us: int | None = None) -> None:
        """Quarantine a record; ``meter_point`` and ``start_us`` where the line gave them (valid) before its
        problem, so the record counts against that meter-day (its settlement date from ``start_us``)."""
        if reason not in schema.QUARANTINE_REASONS:
            raise ValueError(f"unknown quarantine reason {reason!r}")
        if self.erased is not None and (self.erased(meter_point) or self.erased.named_in(raw, detail)):
            # its line would keep it in clear
            self.reasons[ERASED_REASON] += 1
            return
        self.quarantined += 1
        self.reasons[reason] += 1
        if self.quarantine_sink is None:
            return
        day = None if start_us is None else cal.locate(datetime.fromtimestamp(start_us / 1e6, UTC))[0]
        self._quarantine.append({"source_file": self.source_name, "source_line": line, "field": field,
                                 "reason": reason, "detail": detail, "raw": raw, "meter_point": meter_point,
                                 "settlement_date": day})
        if len(self._quarantine) >= self.batch_rows:
            self._flush_quarantine()

    def problem(self, line: int | None, problem: RecordProblem, raw: str | None, meter_point: str | None = None,
                start_us: int | None = None) -> None:
        self.quarantine(line, problem.field, problem.reason, problem.detail, raw, meter_point, start_us)

    def finish(self) -> None:
        if self.reads_sink is not None:
            self._flush_reads(final=True)
        if self.quarantine_sink is not None:
            self._flush_quarantine()

    def _flush_quarantine(self) -> None:
        if self._quarantine:
            self.quarantine_sink(schema.quarantine_batch(self._quarantine))
            self._quarantine = []

    def _flush_reads(self, final: bool) -> None:
        """Hand out the buffered reads: all of them (``final``), else batches of ``batch_rows`` reads each cut
        before its last meter-day (see :func:`_meter_day_cut`) while that many are buffered."""
        self._hold_cols()
        if not self._block_rows:
            return
        buffered = pa.Table.from_batches(self._blocks).combine_chunks()
        batch = buffered.to_batches()[0] if buffered.num_rows else None
        while batch is not None and batch.num_rows and (final or batch.num_rows >= self.batch_rows):
            head = batch if final else batch.slice(0, self.batch_rows)
            cut = head.num_rows if final else _meter_day_cut(head)
            self.reads_sink(head.slice(0, cut))
            batch = batch.slice(cut)
        self._blocks = [batch] if batch is not None and batch.num_rows else []
        self._block_rows = batch.num_rows if self._blocks else 0


_BUFFER_COLUMNS = ("meter_point", "meter_serial", "fuel", "register_id", "read_kind", "interval_start_utc",
                   "value", "unit", "quality", "source_line", "device_id", "source_version")


def _meter_day_cut(batch: pa.RecordBatch) -> int:
    """Where to cut a full buffer so the last meter's settlement day stays whole: before the trailing run of
    rows with the last row's (meter_point, settlement_date). The whole buffer when it is one run."""
    meters = batch.column("meter_point")
    days = batch.column("settlement_date")
    n = batch.num_rows
    last = (meters[n - 1], days[n - 1])
    i = n - 1
    while i > 0 and (meters[i - 1], days[i - 1]) == last:
        i -= 1
    return i if i > 0 else n

