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

The swap is the creation of the date's next manifest version (a new name, atomic on every store; see
:mod:`meterlake.lake.layout`): readers see the old set of live files or the new one, never a mixture.
The mirror is never blocked: it only adds part files, and a part file it writes while a
compaction runs is above the new watermark, so it stays live. Retired files are deleted by a later compaction
once ``retire_grace_s`` has passed, so a reader holding an older list can still open them, and so are superseded
manifest versions. One compaction at a time per lake: a lock file on a local lake; on HDFS two compactions of one
date cannot both commit (the second finds its manifest version taken, fails, and its files, under names of its
own, are collected later); on S3, where no name can be created exclusively, a lease in Cassandra (the LWT claims
of the ingest workers, :func:`streaming.ingest.claims.held_lease`) when the caller gives it (``meterlake lake
compact`` does), checked again before each commit.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meterlake import settlement_runs
from meterlake.lake import layout
from meterlake.lake.files import Lake, ManifestConflict
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
    dropped: int = 0  # rows of an erased meter left out

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


#: Rows of a date compaction holds at once (about 150 bytes each in memory, twice while sorting): a date is merged
#: in ranges of meter points of about this many rows (a meter point's rows are never split).
BATCH_ROWS = 2_000_000


def _dataset(lake: Lake, day: date, names: list[str]):
    """The live files as one pyarrow dataset with every column of every file (a newer mirror's too)."""
    return lake.dataset([lake.path(f"{layout.date_dir(day)}/{n}") for n in names], LAKE_SCHEMA)


def meter_ranges(dataset, batch_rows: int) -> list[tuple[str, str]]:
    """Inclusive ``(first, last)`` meter points splitting the dataset's rows into ranges of about ``batch_rows``
    (a range holds at least one meter point, whatever its rows). Reads only the ``meter_point`` column, a batch at
    a time."""
    partial: list[pa.Table] = []
    held = 0

    def merged() -> pa.Table:
        t = pa.concat_tables(partial).group_by("meter_point").aggregate([("rows", "sum")])
        return t.select(["meter_point", "rows_sum"]).rename_columns(["meter_point", "rows"])

    for batch in dataset.to_batches(columns=["meter_point"]):
        counts = pc.value_counts(batch.column(0))
        partial.append(pa.table({"meter_point": counts.field("values"), "rows": counts.field("counts")}))
        held += len(counts)
        if held > 4 * batch_rows:  # distinct meters held: fold the partial counts
            partial = [merged()]
            held = partial[0].num_rows
    if not partial:
        return []
    counts = merged().sort_by("meter_point")
    meters, rows = counts.column("meter_point").to_pylist(), counts.column("rows").to_pylist()
    ranges, start, held = [], 0, 0
    for i, n in enumerate(rows):
        if held and held + n > batch_rows:
            ranges.append((meters[start], meters[i - 1]))
            start, held = i, 0
        held += n
    ranges.append((meters[start], meters[-1]))
    return ranges


def _merged_ranges(dataset, ranges, *, keep_superseded: bool, drop: str | None = None):
    """Per meter-point range, in order: ``(rows read, collapsed rows)``; the rows of meter point ``drop`` (an
    erasure) are left out."""
    for first, last in ranges:
        where = (pc.field("meter_point") >= first) & (pc.field("meter_point") <= last)
        if drop is not None:
            where = where & (pc.field("meter_point") != drop)
        table = dataset.to_table(filter=where)
        yield table.num_rows, collapse(table, keep_superseded=keep_superseded)


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
    return manifest.successor(pending_delete=keep), deleted


def compact_date(lake: Lake, day: date, *, target_bytes: int, grace_s: float, horizon: Horizon,
                 now: float | None = None, batch_rows: int = BATCH_ROWS, guard=None,
                 drop: str | None = None) -> DateResult:
    """Compact one settlement date (see the module docstring). Safe to run while the mirror writes.

    ``drop``: a meter point (its pseudonym) to erase: a date holding any of its rows is compacted whatever its
    files, without them (:attr:`DateResult.dropped` counts them), through the same swap.

    ``now`` (epoch seconds, default the clock) decides both the retired files' grace and the date's horizon.
    The date is read and merged ``batch_rows`` rows at a time (:func:`meter_ranges`): a read's rows all share
    its meter point, so each range collapses on its own.
    """
    now = time.time() if now is None else now
    result = DateResult(day, past_horizon=horizon.passed(day, now))
    manifest = lake.manifest(day)  # manifest first, then the listing: see layout.live_files
    listing = {i.base_name: i.size for i in lake.date_listing(day)}
    live = layout.live_files(list(listing), manifest)
    due = result.past_horizon and manifest.superseded > 0  # kept for runs that can no longer need them
    if drop is not None:
        dataset, _ = _dataset(lake, day, live)
        result.dropped = dataset.count_rows(filter=pc.field("meter_point") == drop)
        if not result.dropped:
            return result  # nothing of the meter on this date: it is left as it is
        due = True
    if due or _needs_compaction(live, listing, target_bytes):
        dataset, total_rows = _dataset(lake, day, live)
        bytes_in = sum(listing[n] for n in live)
        rows_per_file = max(1, target_bytes // max(1, bytes_in // max(1, total_rows)))
        outputs, held, rows_in, rows_out, superseded = [], [], 0, 0, 0
        generation, token = manifest.generation + 1, uuid.uuid4().hex[:8]  # names no other compaction writes

        def write(chunk: pa.Table) -> None:
            name = layout.compacted_name(generation, len(outputs), token)
            size = lake.write_parquet(f"{layout.date_dir(day)}/{name}", chunk)
            outputs.append({"name": name, "rows": chunk.num_rows, "bytes": size})

        # a range of meter points at a time, in meter point order: the files come out sorted as a whole
        for read, merged in _merged_ranges(dataset, meter_ranges(dataset, batch_rows),
                                           keep_superseded=not result.past_horizon, drop=drop):
            rows_in, rows_out = rows_in + read, rows_out + merged.num_rows
            superseded += 0 if result.past_horizon else superseded_rows(merged)
            held.append(merged)
            while sum(t.num_rows for t in held) >= rows_per_file:
                pending = pa.concat_tables(held)
                write(pending.slice(0, rows_per_file))
                held = [pending.slice(rows_per_file)]
        if held and sum(t.num_rows for t in held) or not outputs:
            write(pa.concat_tables(held) if held else dataset.schema.empty_table())
        manifest = layout.retire(manifest, live, outputs, now, superseded)
        _commit(lake, manifest, guard)  # the swap
        result.compacted = True
        result.inputs, result.outputs = len(live), len(outputs)
        result.rows_in, result.rows_out = rows_in, rows_out
        result.bytes_in, result.bytes_out = bytes_in, sum(o["bytes"] for o in outputs)
        log.info("%s: %d files (%d rows) -> %d files (%d rows, %d of them superseded versions)", day,
                 result.inputs, result.rows_in, result.outputs, result.rows_out, superseded)
    result.superseded = manifest.superseded
    cleaned, deleted = collect_garbage(lake, manifest, now, grace_s)
    if cleaned.pending_delete != manifest.pending_delete:
        _commit(lake, cleaned, guard)
        manifest = cleaned
    deleted += lake.collect_manifests(day, manifest.version, now - grace_s)
    result.deleted = deleted
    return result


def _commit(lake: Lake, manifest: layout.Manifest, guard=None) -> None:
    if guard is not None:
        guard.check()  # the lease still held: raises LeaseLost otherwise
    try:
        lake.write_manifest(manifest)
    except ManifestConflict as exc:
        from meterlake.errors import MeterlakeError

        raise MeterlakeError(f"another compaction changed the date meanwhile ({exc}); nothing of this one is live, "
                             "its files are collected later", lake=lake.root) from None


@contextlib.contextmanager
def _lock(lake: Lake, lease=None):
    """One compaction at a time: an advisory lock on a local lake (released if the process dies); elsewhere the
    ``lease`` given (a context manager yielding an object whose ``check()`` raises once it is lost: the Cassandra
    lease ``meterlake lake compact`` takes on S3), or nothing (HDFS: the manifest's exclusive versions suffice)."""
    if not lake.local:
        if lease is None:
            yield None
        else:
            with lease as held:
                yield held
        return
    directory = lake.path(layout.MANIFEST_DIR)
    os.makedirs(directory, exist_ok=True)
    with open(f"{directory}/.compaction.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            from meterlake.errors import MeterlakeError

            raise MeterlakeError("another compaction is running on this lake", lake=lake.root) from None
        yield None


def compact(lake: Lake, days: list[date] | None = None, *, target_bytes: int, grace_s: float, horizon: Horizon,
            now: float | None = None, lease=None) -> list[DateResult]:
    """Compact ``days`` (default: every date in the lake), holding ``lease`` (see :func:`_lock`) off a local disk."""
    with _lock(lake, lease) as guard:
        return [compact_date(lake, d, target_bytes=target_bytes, grace_s=grace_s, horizon=horizon, now=now,
                             guard=guard) for d in (lake.dates() if days is None else days)]


def erase(lake: Lake, meter_point: str, *, target_bytes: int, horizon: Horizon, now: float | None = None,
          lease=None) -> list[DateResult]:
    """Erase the rows of ``meter_point`` (its pseudonym) from every date that has any: each such date is compacted
    without them (:func:`compact_date` with ``drop``), and the files retired by it, the ones holding the rows, are
    deleted at once rather than after the grace period (a reader that listed them just before may fail and is
    run again). Returns the dates changed."""
    with _lock(lake, lease) as guard:
        results = [compact_date(lake, d, target_bytes=target_bytes, grace_s=0.0, horizon=horizon, now=now,
                                guard=guard, drop=meter_point) for d in lake.dates()]
    return [r for r in results if r.dropped]


def drop_dates(lake: Lake, days: list[date], *, now: float | None = None, lease=None) -> list[dict]:
    """Remove whole settlement dates (retention): per date, first a manifest version with nothing live (the swap:
    readers see the date's files or none), then its files and manifests. Returns ``{"settlement_date", "files",
    "bytes"}`` per date removed."""
    import pyarrow.fs as pafs

    now = time.time() if now is None else now
    out = []
    with _lock(lake, lease) as guard:
        for day in days:
            manifest = lake.manifest(day)
            listing = lake.date_listing(day)
            live = layout.live_files([i.base_name for i in listing], manifest)
            _commit(lake, layout.retire(manifest, live, [], now), guard)
            for relative in (layout.date_dir(day), layout.manifest_dir(day)):
                with contextlib.suppress(FileNotFoundError):
                    lake.fs.delete_dir(lake.path(relative))
            lake.delete(layout.manifest_name(day))
            out.append({"settlement_date": day, "files": len(listing),
                        "bytes": sum(i.size or 0 for i in listing if i.type == pafs.FileType.File)})
    return out
