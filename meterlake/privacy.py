"""Data protection: the erasure list and its audit records, the archive's files that name a meter, and what the
retention settings let go.

Run: ``meterlake privacy erase --meter-point M --reason R`` and ``meterlake privacy retention [--dry-run]``
(meterlake/cli/privacy_cmd.py puts the steps together; docs/privacy.md describes them).

The erasure list lives in the lake, beside the data it protects, where every ingest worker, the mirror and the jobs
already look: one audit record per erasure, ``_privacy/erasures/<pseudonym>-<UTC stamp>.json``, holding the
meter's pseudonym (:mod:`meterlake.pseudonym`), never the identifier in clear, the reason, when, and what was
removed. The list is the set of pseudonyms those names carry: a listing, not a read of every record. Ingest asks
:class:`ErasureList` about each meter point of a file it publishes and drops the reads of an erased meter, counted
under the reason ``erased_meter`` (dropped, not quarantined: a quarantine record keeps the line as it came, in
clear).

The archive (``ingest.archive_dir``) holds the sources' own bytes (a D0010's trailer counts its records, and a
file's SHA-256 is its identity: its ``file_id`` and its claim), so a file naming an erased meter is deleted, not
rewritten: :func:`archived_files_naming` finds them (a file's text, decompressed, holding the identifier as a whole
token), :func:`delete_archived` removes them. The other meters' reads of such a file stay in Cassandra and the
lake; only the raw copy goes.
"""
from __future__ import annotations

import gzip
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow.fs as pafs

log = logging.getLogger("meterlake.privacy")

ERASURES_DIR = "_privacy/erasures"
#: The reason ingest counts a dropped read of an erased meter under (in a file's ``reasons``).
ERASED_REASON = "erased_meter"
_TOKEN_RE = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{6,13}(?![0-9A-Za-z])")
_RECORD_RE = re.compile(r"(P[0-9a-f]+)-(\d{8}T\d{6}\d*Z)-[0-9a-f]+\.json")


# ------------------------------------------------------------------------------------------- the erasure list


def record_name(pseudonym: str, at: datetime) -> str:
    return f"{pseudonym}-{at.astimezone(UTC):%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:8]}.json"


def parse_record_name(name: str) -> str | None:
    """The pseudonym an audit record's file name carries, or None for any other name. Pure."""
    m = _RECORD_RE.fullmatch(name)
    return m.group(1) if m else None


def write_record(lake, pseudonym: str, reason: str, at: datetime, removed: dict) -> str:
    """Write the audit record of one erasure (exclusively: never over another); returns its path in the lake."""
    relative = f"{ERASURES_DIR}/{record_name(pseudonym, at)}"
    body = {"meter_point": pseudonym, "reason": reason, "erased_at": at, "removed": removed}
    from meterlake.jsontext import dumps

    lake.write_bytes(relative, dumps(body).encode(), exclusive=True)
    return relative


def records(lake) -> list[dict]:
    """Every audit record, oldest first."""
    out = []
    for info in sorted(lake.list_dir(ERASURES_DIR), key=lambda i: i.base_name.split("-", 1)[-1]):
        if parse_record_name(info.base_name) is None:
            continue
        data = lake.read_bytes(f"{ERASURES_DIR}/{info.base_name}")
        if data is not None:
            out.append(json.loads(data.decode()))
    return out


def erased_pseudonyms(lake) -> frozenset[str]:
    """The pseudonyms of every erased meter: the names of the audit records."""
    return frozenset(p for i in lake.list_dir(ERASURES_DIR) if (p := parse_record_name(i.base_name)) is not None)


@dataclass(frozen=True)
class ErasureList:
    """``erased(meter_point)``: is this identifier (in clear, as a file gives it) on the erasure list? Reads the
    list once; the pseudonymisation key is needed only when the list has someone on it."""

    pseudonyms: frozenset[str]
    pseudonymiser: object | None = None

    def __call__(self, meter_point: str | None) -> bool:
        if not self.pseudonyms or meter_point is None:
            return False
        return self.pseudonymiser.one(meter_point) in self.pseudonyms

    def __bool__(self) -> bool:
        return bool(self.pseudonyms)

    def named_in(self, *texts: str | None) -> bool:
        """Does any of ``texts`` (a quarantined line, its detail) name an erased meter (a token of the shape of
        a meter point: 6 to 13 letters and digits)?"""
        if not self.pseudonyms:
            return False
        return any(self(token) for text in texts if text for token in _TOKEN_RE.findall(text))


def without_erased(erased: ErasureList, table):
    """``table`` (a read-model table: sets, reads or quarantine records, identifiers in clear) without the rows of
    erased meters: by ``meter_point``, or for quarantine records (``raw``) by their line and detail."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not erased or table.num_rows == 0:
        return table
    if "raw" in table.column_names:
        keep = [not erased.named_in(r, d) for r, d in zip(table["raw"].to_pylist(), table["detail"].to_pylist(),
                                                          strict=True)]
    elif "meter_point" in table.column_names:
        names = erased.pseudonymiser.array(table["meter_point"])
        keep = pc.invert(pc.is_in(names, value_set=pa.array(sorted(erased.pseudonyms))))
    else:
        return table
    return table.filter(keep)


class Refreshing:
    """The erasure list of ``settings``, read again once it is ``every_s`` old (for the long-running consumers).
    A lake that does not answer (a transient failure, :func:`meterlake.lakefs.transient`) leaves the list read last
    in use until the next attempt: the store does not stop for the lake's weather."""

    def __init__(self, settings, every_s: float = 30.0, clock=None):
        import time

        self.settings, self.every_s, self.clock = settings, every_s, clock or time.monotonic
        self._list, self._at = ErasureList(frozenset()), None

    def __call__(self) -> ErasureList:
        now = self.clock()
        if self._at is None or now - self._at >= self.every_s:
            from meterlake import lakefs

            try:
                self._list = erasure_list(self.settings)
            except Exception as exc:
                if not lakefs.transient(exc):
                    raise
                log.warning("the erasure list could not be read (%s); the last one read stays in use", exc)
            self._at = now
        return self._list


def erasure_list(settings, lake=None) -> ErasureList:
    """The erasure list of ``settings``' lake. Raises UsageError when it names a meter and there is no
    pseudonymisation key (ingest must not let an erased meter through for want of one)."""
    from meterlake import pseudonym
    from meterlake.lake.files import open_lake

    names = erased_pseudonyms(open_lake(settings) if lake is None else lake)
    return ErasureList(names, pseudonym.for_settings(settings) if names else None)


# ------------------------------------------------------------------------------------------------ the archive


def archive(settings) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root of ``ingest.archive_dir``."""
    from meterlake import lakefs

    return lakefs.resolve(settings, settings.resolve_url(settings.ingest.archive_dir))


def _archive_files(fs: pafs.FileSystem, root: str) -> list[pafs.FileInfo]:
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path)


def names(data: bytes, identifier: str) -> bool:
    """Does ``data`` (a file's bytes; gzip is opened) hold ``identifier`` as a whole token (no digit or letter
    either side)? Pure."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    token = re.escape(identifier.encode())
    return re.search(rb"(?<![0-9A-Za-z])" + token + rb"(?![0-9A-Za-z])", data) is not None


def archived_files_naming(fs: pafs.FileSystem, root: str, identifier: str) -> tuple[int, list[str]]:
    """``(files scanned, paths of the archive's files naming identifier)``. Each file is read whole, one at a
    time (archived flows are tens of MB at most; a claim-checked one is read in one go too)."""
    scanned, found = 0, []
    for info in _archive_files(fs, root):
        if info.base_name.endswith(".reason.json"):
            continue
        scanned += 1
        with fs.open_input_stream(info.path, compression=None) as f:
            if names(f.read(), identifier):
                found.append(info.path)
    return scanned, found


def delete_archived(fs: pafs.FileSystem, paths: list[str]) -> None:
    for path in paths:
        try:
            fs.delete_file(path)
        except FileNotFoundError:
            pass


# -------------------------------------------------------------------------------------------------- retention


def cutoff(today: date, retention_days: int) -> date:
    """The first date kept when ``retention_days`` days are kept up to ``today``. Pure."""
    return today - timedelta(days=retention_days)


def expired_archive_files(fs: pafs.FileSystem, root: str, before: datetime) -> list[pafs.FileInfo]:
    """The archive's files last changed before ``before``: processed files (by their ``yyyy/mm/dd`` processing
    day) and quarantined ones with their reasons (by modification time)."""
    out = []
    for info in _archive_files(fs, root):
        day = _processing_day(info.path[len(root):])
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) if day else info.mtime
        if at is not None and at.astimezone(UTC) <= before:
            out.append(info)
    return out


def _processing_day(relative: str) -> date | None:
    """``<area>/<yyyy>/<mm>/<dd>/<file>``: the processing day of an archived file, or None. Pure."""
    parts = relative.strip("/").split("/")
    if len(parts) < 5 or not all(p.isdigit() for p in parts[1:4]):
        return None
    try:
        return date(int(parts[1]), int(parts[2]), int(parts[3]))
    except ValueError:
        return None
