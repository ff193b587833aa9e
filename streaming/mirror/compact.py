"""Lake compaction: per settlement date, merge the live files into a few of about the target size, collapse
duplicate reads, and swap them in atomically; superseded versions of a read go only once no settlement run can
need them.

Run: ``meterlake lake compact [--date D] [--json]``. Grain of the output: per read key (:data:`READ_KEY`) of the
date, one row per distinct (``source_version``, ``value``, ``quality``) while the date is within its
:class:`Horizon`, and one row, its highest ``source_version``, after. Copies of a version (the same read published
twice) always collapse to the one from the lowest Kafka offset.

Why keep superseded versions: a settlement run (SF … DF, :mod:`meterlake.settlement_runs`) uses per read the
highest version at or before its cut-off, and must be reproducible later, byte for byte. Once a correction
(version 2) lands after the SF cut-off, SF still needs version 1. So a date keeps every version until the DF run of
every settlement that reads it (its own, and those of the dates up to ``profile_weeks`` weeks later, which read it
for profiles and proration) is past its cut-off plus ``mirror.superseded_after_df_days``; the first compaction
after that collapses the date to the latest versions (the manifest counts the superseded rows it kept, so a date
that needs it is found without reading its files).

The swap is the manifest's replacement (one atomic rename): readers see the old set of live files or the new
one, never a mixture. The mirror is never blocked: it only adds part files, and a part file it writes while a
compaction runs is above the new watermark, so it stays live. Retired files are deleted by a later compaction
once ``retire_grace_s`` has passed, so a reader holding an older list can still open them. One compaction at a
time per lake (a lock file on a local lake; elsewhere run it from one scheduler).
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meterlake import settlement_runs
from meterlake.lake import layout
from meterlake.lake.files import Lake
from meterlake.lake.schema import FIRST_COPY, LAKE_SCHEMA, READ_KEY
from meterlake.schema import differs_from_previous

log = logging.getLogger("meterlake.mirror.compact")


#: Columns whose equality, with the key and version, makes two rows copies of one read (else a conflict the clean
#: job flags as ``duplicate_conflict``, kept while versions are).
_SAME_READ = ("source_version", "value", "quality")
#: Which copy is kept: the lowest Kafka position, then source position (the order the jobs' live-version rule
#: and the ``reads`` view use, so they pick the same row before and after compaction).
_FIRST_COPY = FIRST_COPY


@dataclass(frozen=True)
class Horizon:
    """When a settlement date's superseded versions may go: ``after_df_days`` after the DF run's cut-off of the
    last settlement date that reads the date's partition, which is ``reads_ahead_days`` after it
    (:func:`horizon_from`)."""

    after_df_days: int
    reads_ahead_days: int = 0

    def end(self, day: date) -> datetime:
        last_reader = day + timedelta(days=self.reads_ahead_days)
        final = settlement_runs.cutoff_instant(last_reader, settlement_runs.RUNS[-1])
        return final + timedelta(days=self.after_df_days)

    def passed(self, day: date, now: float) -> bool:
        return now >= self.end(day).timestamp()


def horizon_from(settings) -> Horizon:
    """The horizon of the configuration. A settlement of date D reads interval reads of the same weekday
    ``jobs.profile_weeks`` weeks back (profiles) and register reads ``jobs.proration_days`` either side
    (``input_days`` in jobs/settle/job.py), so date X is read by settlements up to that many days after X."""
    jobs = settings.jobs
    return Horizon(settings.mirror.superseded_after_df_days, max(7 * jobs.profile_weeks, jobs.proration_days))


def _starts(t: pa.Table, names) -> np.ndarray:
    """Over sorted rows (one chunk): does each row start a new run of equal ``names``?"""
    first = np.zeros(t.num_rows, dtype=bool)
    if t.num_rows == 0:
        return first
    first[0] = True
    for name in names:
        first[1:] |= differs_from_previous(t.column(name).chunk(0))
    return first


def collapse(table: pa.Table, *, keep_superseded: bool = False) -> pa.Table:
    """The rows of ``table`` compaction keeps (see the module docstring), sorted by meter point, read time, the
    rest of the key, then latest version first.

    Copies of a read with the same version, value and quality collapse to the first (:data:`_FIRST_COPY`). With
    ``keep_superseded`` every other row stays; without, only the latest version's first copy: the row the
    ``reads`` view shows.
    """
    if table.num_rows == 0:
        return table
    keys = [("meter_point", "ascending"), ("interval_start_utc", "ascending")]
    keys += [(k, "ascending") for k in READ_KEY if k not in ("meter_point", "interval_start_utc")]
    keys += [("source_version", "descending")]
    same = READ_KEY + (_SAME_READ if keep_superseded else ())
    if keep_superseded:  # copies of one (version, value, quality) side by side, their first copy first
        keys += [(k, "ascending") for k in _SAME_READ[1:]]
    keys += [(k, "ascending") for k in _FIRST_COPY if k in table.schema.names]
    t = table.take(pc.sort_indices(table, sort_keys=keys)).combine_chunks()  # nulls sort last
    return t.filter(pa.array(_starts(t, same)))


def superseded_rows(collapsed: pa.Table) -> int:
    """Rows of a :func:`collapse` output that are not the first of their read."""
    return collapsed.num_rows - int(_starts(collapsed, READ_KEY).sum())


def _chunks(table: pa.Table, rows_per_file: int) -> list[pa.Table]:
    return [table.slice(at, rows_per_file) for at in range(0, max(table.num_rows, 1), rows_per_file)]


@dataclass
class DateResult:
    settlement_date: date
    compacted: bool = False
    inputs: int = 0
    outputs: int = 0
    rows_in: int = 0
    rows_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    past_horizon: bool = False
    superseded: int = 0  # superseded rows the date's compacted files keep (after this run)
    deleted: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"settlement_date": self.settlement_date, "compacted": self.compacted, "inputs": self.inputs,
                "outputs": self.outputs, "rows_in": self.rows_in, "rows_out": self.rows_out,
                "collapsed": self.rows_in - self.rows_out, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "past_horizon": self.past_horizon, "superseded_kept": self.superseded, "deleted": len(self.deleted)}


def _needs_compaction(live: list[str], sizes: dict[str, int], target_bytes: int) -> bool:
    parts = [n for n in live if layout.parse_part(n)]
    if parts:
        return True
    small = [n for n in live if sizes[n] < target_bytes // 2]
    return len(small) > 1


def _read_all(lake: Lake, day: date, names: list[str]) -> pa.Table:
    tables = [lake.read_parquet(f"{layout.date_dir(day)}/{n}") for n in names]
    # a file written by a newer mirror may carry more columns; keep them all
    return pa.concat_tables(tables, promote_options="permissive") if tables else LAKE_SCHEMA.empty_table()


def collect_garbage(lake: Lake, manifest: layout.Manifest, now: float, grace_s: float) -> tuple[layout.Manifest,
                                                                                             list[str]]:
    """Delete retired files older than the grace period; returns the manifest without them and their names.

    Also removes leftovers of interrupted writers in the date's directory: temporary files and compacted files
    the manifest does not list, once they are older than the grace period.
    """
    day = manifest.settlement_date
    directory = layout.date_dir(day)
    keep, deleted = [], []
    for entry in manifest.pending_delete:
        if now - entry["retired_at"] >= grace_s:
            lake.delete(f"{directory}/{entry['name']}")
            deleted.append(entry["name"])
        else:
            keep.append(entry)
    listed = set(manifest.compacted_names) | {e["name"] for e in keep}
    for info in lake.date_listing(day):
        name = info.base_name
        stray = (name.startswith(".") and name.endswith(".tmp")) or (
            layout.parse_compacted(name) is not None and name not in listed)
        mtime = info.mtime.timestamp() if info.mtime is not None else now
        if stray and now - mtime >= grace_s:
            lake.delete(f"{directory}/{name}")
            deleted.append(name)
    return layout.Manifest(day, manifest.generation, manifest.compacted, manifest.retired_through, keep,
                           manifest.superseded), deleted


def compact_date(lake: Lake, day: date, *, target_bytes: int, grace_s: float, horizon: Horizon,
                 now: float | None = None) -> DateResult:
    """Compact one settlement date (see the module docstring). Safe to run while the mirror writes.

    ``now`` (epoch seconds, default the clock) decides both the retired files' grace and the date's horizon.
    """
    now = time.time() if now is None else now
    result = DateResult(day, past_horizon=horizon.passed(day, now))
    manifest = lake.manifest(day)  # manifest first, then the listing: see layout.live_files
    listing = {i.base_name: i.size for i in lake.date_listing(day)}
    live = layout.live_files(list(listing), manifest)
    due = result.past_horizon and manifest.superseded > 0  # kept for runs that can no longer need them
    if due or _needs_compaction(live, listing, target_bytes):
        table = _read_all(lake, day, live)
        merged = collapse(table, keep_superseded=not result.past_horizon)
        superseded = 0 if result.past_horizon else superseded_rows(merged)
        bytes_in = sum(listing[n] for n in live)
        per_row = max(1, bytes_in // max(1, table.num_rows))
        outputs = []
        generation = manifest.generation + 1
        for k, chunk in enumerate(_chunks(merged, max(1, target_bytes // per_row))):
            name = layout.compacted_name(generation, k)
            size = lake.write_parquet(f"{layout.date_dir(day)}/{name}", chunk)
            outputs.append({"name": name, "rows": chunk.num_rows, "bytes": size})
        manifest = layout.retire(manifest, live, outputs, now, superseded)
        lake.write_manifest(manifest)  # the swap
        result.compacted = True
        result.inputs, result.outputs = len(live), len(outputs)
        result.rows_in, result.rows_out = table.num_rows, merged.num_rows
        result.bytes_in, result.bytes_out = bytes_in, sum(o["bytes"] for o in outputs)
        log.info("%s: %d files (%d rows) -> %d files (%d rows, %d of them superseded versions)", day,
                 result.inputs, result.rows_in, result.outputs, result.rows_out, superseded)
    result.superseded = manifest.superseded
    cleaned, deleted = collect_garbage(lake, manifest, now, grace_s)
    if cleaned.pending_delete != manifest.pending_delete:
        lake.write_manifest(cleaned)
    result.deleted = deleted
    return result


@contextlib.contextmanager
def _lock(lake: Lake):
    """One compaction at a time on a local lake (an advisory lock; released if the process dies)."""
    if not lake.local:
        yield
        return
    directory = lake.path(layout.MANIFEST_DIR)
    os.makedirs(directory, exist_ok=True)
    with open(f"{directory}/.compaction.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            from meterlake.errors import MeterlakeError

            raise MeterlakeError("another compaction is running on this lake", lake=lake.root) from None
        yield


def compact(lake: Lake, days: list[date] | None = None, *, target_bytes: int, grace_s: float, horizon: Horizon,
            now: float | None = None) -> list[DateResult]:
    """Compact ``days`` (default: every date in the lake)."""
    with _lock(lake):
        return [compact_date(lake, d, target_bytes=target_bytes, grace_s=grace_s, horizon=horizon, now=now)
                for d in (lake.dates() if days is None else days)]
