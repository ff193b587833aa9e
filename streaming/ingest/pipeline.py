"""Ingest one file: detect its format, parse and check it in constant memory, and hand out its reads only once
the whole file has been read and found acceptable.

Two ways in:

* :func:`ingest_file` (a dry run): parse and validate, count, publish nothing. ``meterlake ingest --dry-run``.
* :func:`validated_file` (for publishing): parse into a spool (Arrow IPC files in a temporary directory) and,
  only if the file is accepted, yield a :class:`ValidatedFile` whose :meth:`~ValidatedFile.reads` and
  :meth:`~ValidatedFile.quarantine` stream the batches back, with the file-level columns (``source_version``
  where the format has one per file, ``file_id``, ``batch_id``) filled in. A rejected file raises
  :class:`FileRejected` before anything is handed out, so a file is published whole or not at all.

``now`` is the validation instant (reads ending after it are ``future_timestamp``); it is never used for a
version or an id: those come from the data (see :mod:`meterlake.schema`).

Grain of :class:`FileResult`: one per file.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from meterlake import schema
from streaming.ingest import d0010, device, hh_csv, lcl
from streaming.ingest.common import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_DUPLICATE_WINDOW,
    Collector,
    DuplicateWindow,
    FileInfo,
    FileRejected,
    first_line,
    iter_lines,
    open_source,
)

PARSERS = {module.FORMAT: module for module in (d0010, hh_csv, lcl, device)}
FORMATS = tuple(PARSERS)


def register_layout(name: str, layout, meter_point: str | None = None) -> str:
    """Make the format ``layout:<name>`` (a supplier's CSV layout, :mod:`streaming.ingest.layout`) known to this
    process's parsers; returns the format's name. The CLI calls it from ``[ingest.layouts.<name>]``."""
    from streaming.ingest.layout import LayoutParser

    parser = LayoutParser(name, layout, meter_point)
    PARSERS[parser.FORMAT] = parser
    return parser.FORMAT


def detect(path: str | Path) -> str:
    """The format of ``path`` from its first non-blank line: ``d0010``, ``hh-csv``, ``lcl`` or ``device``.

    Raises FileRejected (``empty_file``, ``unreadable_encoding`` or ``unknown_format``).
    """
    first = first_line(Path(path))
    if first is None:
        raise FileRejected("empty_file", "the file has no lines")
    if first.startswith("Z") and first[:4] in ("ZHV|", "ZHF|", "ZHD|"):
        return d0010.FORMAT
    for module in (device, lcl, hh_csv):
        if module.sniff(first):
            return module.FORMAT
    raise FileRejected("unknown_format", f"first line {first[:80]!r} is none of: D0010 (ZHV|...), hh-csv "
                                         f"header ({hh_csv.HEADER}), LCL header (LCLid,...), JSON lines")


@dataclass
class FileResult:
    """The outcome of ingesting one file. :meth:`to_json` is the ``--json`` shape of ``meterlake ingest``."""

    path: str
    format: str | None
    status: str  # accepted | rejected
    lines: int = 0
    reads: int = 0
    quarantined: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    detail: str | None = None  # why a file was rejected
    file_id: str | None = None
    source_version: int | None = None

    def to_json(self) -> dict:
        return {"path": self.path, "format": self.format, "status": self.status, "lines": self.lines,
                "reads": self.reads, "quarantined": self.quarantined, "duplicates": self.duplicates,
                "reasons": dict(sorted(self.reasons.items()))}


class _Counted:
    def __init__(self, lines: Iterator[tuple[int, str, bool]]):
        self._lines = lines
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._lines)
        self.count = item[0]
        return item


def _parse(path: Path, fmt: str | None, now: datetime, collector_for, source_name: str | None):
    """Parse the whole file; returns (format, collector, info, digest, lines). Raises FileRejected with
    ``.format`` and ``.lines`` set."""
    name = source_name or path.name
    lines_read = 0
    try:
        fmt = fmt or detect(path)
        if fmt not in PARSERS:
            raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
        now_us = schema.epoch_us(now)
        info = FileInfo(path=path, source_name=name, format=fmt)
        collector = collector_for(name)
        source = open_source(path)
        try:
            counted = _Counted(iter_lines(source))
            try:
                PARSERS[fmt].parse(counted, collector, info, now_us)
                for _ in counted:  # a parser that stops early still reads (and digests) the whole file
                    pass
            finally:
                lines_read = counted.count
            collector.finish()
            return fmt, collector, info, source.digest, lines_read
        finally:
            source.close()
    except FileRejected as exc:
        exc.lines = lines_read
        exc.format = fmt
        raise


def _rejected(path: Path, exc: FileRejected) -> FileResult:
    return FileResult(path=str(path), format=getattr(exc, "format", None), status="rejected", lines=exc.lines,
                      reasons={exc.reason: 1}, detail=exc.detail)


def _accepted(path: Path, fmt: str, collector: Collector, info: FileInfo, digest: bytes,
              lines: int) -> FileResult:
    return FileResult(path=str(path), format=fmt, status="accepted", lines=lines, reads=collector.reads,
                      quarantined=collector.quarantined, duplicates=collector.duplicates,
                      reasons=dict(collector.reasons), file_id=schema.file_id(info.version, digest),
                      source_version=info.version)


def ingest_file(path: str | Path, format: str | None = None, *, now: datetime,
                batch_rows: int = DEFAULT_BATCH_ROWS, source_name: str | None = None,
                duplicate_window: int = DEFAULT_DUPLICATE_WINDOW, erased=None) -> FileResult:
    """Parse and validate ``path`` without publishing (a dry run); a rejected file is a result, not an error.

    ``format`` is one of :data:`FORMATS` or None (detect). ``now`` (timezone-aware) is the validation instant
    for the future-timestamp check only. ``duplicate_window`` bounds the read keys remembered for duplicate
    detection (see :mod:`streaming.ingest.common`). ``erased``: the erasure list (a meter point -> bool; see
    :mod:`meterlake.privacy`); its meters' reads are dropped and counted under ``erased_meter``.
    """
    path = Path(path)
    try:
        fmt, collector, info, digest, lines = _parse(
            path, format, now,
            lambda name: Collector(name, batch_rows=batch_rows, window=DuplicateWindow(duplicate_window),
                                   erased=erased),
            source_name)
    except FileRejected as exc:
        return _rejected(path, exc)
    return _accepted(path, fmt, collector, info, digest, lines)


class _Spool:
    """An Arrow IPC stream file written batch by batch (created on the first batch)."""

    def __init__(self, path: Path, schema_: pa.Schema):
        self.path, self.schema = path, schema_
        self._writer = None
        self.batches = 0

    def __call__(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if self._writer is None:
            self._writer = pa.ipc.new_stream(str(self.path), self.schema)
        self._writer.write_batch(batch)
        self.batches += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if not self.batches:
            return
        # read, not memory-mapped: mapped pages would count against the process as the spool is walked
        with pa.OSFile(str(self.path)) as source:
            yield from pa.ipc.open_stream(source)


class ValidatedFile:
    """An accepted file's spooled output: :attr:`result` and the batches to publish."""

    def __init__(self, result: FileResult, reads: _Spool, quarantine: _Spool, digest: bytes, source_name: str):
        self.result = result
        self.source_name = source_name  # ``source_file`` of its reads and quarantine records
        self._reads, self._quarantine, self._digest = reads, quarantine, digest

    @property
    def digest(self) -> bytes:
        """SHA-256 of the file's bytes as stored."""
        return self._digest

    def reads(self) -> Iterator[pa.RecordBatch]:
        """:data:`~meterlake.schema.READ_SCHEMA` batches (at most ``batch_rows`` each, meter-days whole), with
        ``source_version``, ``file_id`` and ``batch_id`` filled in."""
        version = self.result.source_version
        file_id = self.result.file_id
        names = schema.READ_COLUMNS
        for index, batch in enumerate(self._reads):
            n = batch.num_rows
            columns = list(batch.columns)
            at = names.index("source_version")
            if columns[at].null_count:
                columns[at] = pc.fill_null(columns[at], pa.scalar(version, pa.int64()))
            columns[names.index("file_id")] = pa.array([file_id] * n, pa.string())
            columns[names.index("batch_id")] = pa.array([schema.batch_id(version, self._digest, index)] * n,
                                                        pa.string())
            yield pa.RecordBatch.from_arrays(columns, schema=schema.READ_SCHEMA)

    def quarantine(self) -> Iterator[pa.RecordBatch]:
        """:data:`~meterlake.schema.QUARANTINE_SCHEMA` batches."""
        yield from self._quarantine

    def reads_table(self) -> pa.Table:
        return pa.Table.from_batches(list(self.reads()), schema=schema.READ_SCHEMA)

    def quarantine_table(self) -> pa.Table:
        return pa.Table.from_batches(list(self.quarantine()), schema=schema.QUARANTINE_SCHEMA)


@contextmanager
def validated_file(path: str | Path, format: str | None = None, *, now: datetime,
                   batch_rows: int = DEFAULT_BATCH_ROWS, spool_dir: str | Path | None = None,
                   source_name: str | None = None,
                   duplicate_window: int = DEFAULT_DUPLICATE_WINDOW, erased=None) -> Iterator[ValidatedFile]:
    """Parse ``path`` into a spool; yield a :class:`ValidatedFile` if it is accepted, else raise
    :class:`FileRejected` (with ``.result``, the :class:`FileResult`) before anything is handed out.

    ``erased``: the erasure list, as for :func:`ingest_file`. The spool (two Arrow IPC files) lives in a
    temporary directory under ``spool_dir`` and is removed on exit.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="meterlake-spool-", dir=spool_dir) as tmp:
        reads = _Spool(Path(tmp) / "reads.arrows", schema.READ_SCHEMA)
        quarantine = _Spool(Path(tmp) / "quarantine.arrows", schema.QUARANTINE_SCHEMA)

        def collector_for(name: str) -> Collector:
            return Collector(name, reads_sink=reads, quarantine_sink=quarantine, batch_rows=batch_rows,
                             window=DuplicateWindow(duplicate_window), erased=erased)

        try:
            fmt, collector, info, digest, lines = _parse(path, format, now, collector_for, source_name)
        except FileRejected as exc:
            exc.result = _rejected(path, exc)
            raise
        finally:
            reads.close()
            quarantine.close()
        yield ValidatedFile(_accepted(path, fmt, collector, info, digest, lines), reads, quarantine, digest,
                            source_name or path.name)
