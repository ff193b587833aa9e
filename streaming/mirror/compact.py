"""Lake compaction: per settlement date, merge the live files into a few of about the target size, keeping only
the latest version of each read, and swap them in atomically.

Run: ``meterlake lake compact [--date D] [--json]``. Grain of the output: one row per read key
(:data:`READ_KEY`) of the date: its highest ``source_version`` (equal versions of a key are the same read,
published twice; the one from the lowest Kafka offset is kept).

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
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from meterlake.schema import differs_from_previous
from streaming.mirror import layout
from streaming.mirror.convert import LAKE_SCHEMA
from streaming.mirror.lake import Lake

log = logging.getLogger("meterlake.mirror.compact")

#: What identifies a read: two rows with the same key are versions of the same read (docs/lake.md).
READ_KEY = ("meter_point", "meter_serial", "register_id", "read_kind", "interval_start_utc", "device_id", "unit")


def collapse(table: pa.Table) -> pa.Table:
    """The latest version of each read of ``table``, sorted by meter point, read time and the rest of the key."""
    if table.num_rows == 0:
        return table
    keys = [("meter_point", "ascending"), ("interval_start_utc", "ascending")]
    keys += [(k, "ascending") for k in READ_KEY if k not in ("meter_point", "interval_start_utc")]
    keys += [("source_version", "descending")]
    if "kafka_offset" in table.schema.names:
        keys += [("kafka_topic", "ascending"), ("kafka_partition", "ascending"), ("kafka_offset", "ascending")]
    t = table.take(pc.sort_indices(table, sort_keys=keys)).combine_chunks()  # nulls sort last
    first = np.zeros(t.num_rows, dtype=bool)
    first[0] = True
    for name in READ_KEY:
        first[1:] |= differs_from_previous(t.column(name).chunk(0) if t.column(name).num_chunks else t.column(name))
    return t.filter(pa.array(first))


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
    deleted: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"settlement_date": self.settlement_date, "compacted": self.compacted, "inputs": self.inputs,
                "outputs": self.outputs, "rows_in": self.rows_in, "rows_out": self.rows_out,
                "collapsed": self.rows_in - self.rows_out, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "deleted": len(self.deleted)}


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
    return layout.Manifest(day, manifest.generation, manifest.compacted, manifest.retired_through, keep), deleted


def compact_date(lake: Lake, day: date, *, target_bytes: int, grace_s: float,
                 now: float | None = None) -> DateResult:
    """Compact one settlement date (see the module docstring). Safe to run while the mirror writes."""
    now = time.time() if now is None else now
    result = DateResult(day)
    manifest = lake.manifest(day)  # manifest first, then the listing: see layout.live_files
    listing = {i.base_name: i.size for i in lake.date_listing(day)}
    live = layout.live_files(list(listing), manifest)
    if _needs_compaction(live, listing, target_bytes):
        table = _read_all(lake, day, live)
        merged = collapse(table)
        bytes_in = sum(listing[n] for n in live)
        per_row = max(1, bytes_in // max(1, table.num_rows))
        outputs = []
        generation = manifest.generation + 1
        for k, chunk in enumerate(_chunks(merged, max(1, target_bytes // per_row))):
            name = layout.compacted_name(generation, k)
            size = lake.write_parquet(f"{layout.date_dir(day)}/{name}", chunk)
            outputs.append({"name": name, "rows": chunk.num_rows, "bytes": size})
        manifest = layout.retire(manifest, live, outputs, now)
        lake.write_manifest(manifest)  # the swap
        result.compacted = True
        result.inputs, result.outputs = len(live), len(outputs)
        result.rows_in, result.rows_out = table.num_rows, merged.num_rows
        result.bytes_in, result.bytes_out = bytes_in, sum(o["bytes"] for o in outputs)
        log.info("%s: %d files (%d rows) -> %d files (%d rows)", day, result.inputs, result.rows_in,
                 result.outputs, result.rows_out)
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


def compact(lake: Lake, days: list[date] | None = None, *, target_bytes: int, grace_s: float) -> list[DateResult]:
    """Compact ``days`` (default: every date in the lake)."""
    with _lock(lake):
        return [compact_date(lake, d, target_bytes=target_bytes, grace_s=grace_s)
                for d in (lake.dates() if days is None else days)]
