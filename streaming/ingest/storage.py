"""Where files land and where they are kept: the landing directory and the archive's raw and quarantine areas.

Both are pyarrow filesystems (:mod:`meterlake.lakefs`): a local directory, or HDFS (over WebHDFS) or S3, so the
same worker code watches a local landing directory or one on HDFS, and archives into a local or HDFS directory. Streams
are opened with ``compression=None``: a ``.gz`` file is hashed, copied and archived as the bytes it is (the parser
gunzips it).

Landing convention: a writer lands a file atomically (writes it under a name starting with ``.`` or ``_``, or
ending ``.tmp``/``.part``, then renames it). Such names are never listed. Workers also check the file's SHA-256
again while parsing it, so a file still changing is left for a later pass.

Layout of the archive (``ingest.archive_dir``; not the lake: these are the sources' own bytes, meter points and
serials in clear, while the lake holds only pseudonyms, see :mod:`meterlake.pseudonym`)::

    <archive>/<ingest.raw_area>/<yyyy>/<mm>/<dd>/<file>       processed files (the raw backup), by processing day
    <archive>/<ingest.quarantine_area>/<file>                  rejected and duplicate files
    <archive>/<ingest.quarantine_area>/<file>.reason.json      why: reason, detail, checksum, ...
    <archive>/<ingest.quarantine_area>/<file>.reason.<n>.json  why, when the same file was quarantined again

Nothing in the archive is ever overwritten or deleted by archiving: a name already taken by the same bytes (the
SHA-256 compared, not the size) is that file archived already; a name taken by a different file gives this one its
checksum before its extension. Copies go to a temporary name first and are then put in place under a name that is
free (a hard link on a local disk, which fails if the name is taken; a rename on HDFS, which refuses to replace),
so a reader never sees half a file and two workers never overwrite each other's. On S3 the last step is a copy
after a check, not atomic: one file name at a time per archive there.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs

from meterlake import lakefs
from meterlake.config import Settings

CHUNK = 1 << 20
#: Checksums a worker remembers (per path, size and mtime): enough for a landing directory's backlog; the oldest
#: go first, so a long-running worker's memory stays bounded.
CHECKSUM_MEMO = 100_000
_HIDDEN_PREFIXES = (".", "_")
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


@dataclass(frozen=True)
class Landed:
    """A file in the landing directory (or named by a claim-check reference)."""

    url: str  # how another worker reaches it: a local absolute path or hdfs://... / s3://...
    fs_path: str  # the path within ``fs``
    name: str  # its base name: ``source_file`` of its reads
    size: int
    mtime_ns: int


def _is_candidate(name: str) -> bool:
    return not name.startswith(_HIDDEN_PREFIXES) and not name.endswith(_PARTIAL_SUFFIXES)


def files_under(directory: Path) -> list[Path]:
    """Every file under the local ``directory`` that a landing-directory listing takes (hidden and partial names
    left out, in any folder on the way), in a stable order: sorted by path. ``meterlake ingest DIR`` uses it."""
    found = [p for p in directory.rglob("*")
             if p.is_file() and all(_is_candidate(part) for part in p.relative_to(directory).parts)]
    return sorted(found)


class Storage:
    """The landing directory ``landing_url`` and the archive of ``settings`` (``ingest.archive_dir``)."""

    def __init__(self, settings: Settings, landing_url: str | None = None):
        self.settings = settings
        self.landing_dir = lakefs.place(settings, settings.ingest.landing_dir if landing_url is None else landing_url)
        self.archive_dir = lakefs.place(settings, settings.ingest.archive_dir)
        self._checksums: OrderedDict[tuple[str, int, int], str] = OrderedDict()

    # ------------------------------------------------------------------------------------------- landing

    def list(self) -> list[Landed]:
        """The landed files (recursively), oldest first; hidden and partial names left out."""
        try:
            selector = pafs.FileSelector(self.landing_dir.root, recursive=True, allow_not_found=True)
            infos = self.landing_dir.fs.get_file_info(selector)
        except FileNotFoundError:
            return []
        out = []
        for info in infos:
            if info.type != pafs.FileType.File or not _is_candidate(info.base_name):
                continue
            relative = posixpath.relpath(info.path, self.landing_dir.root)
            if any(not _is_candidate(part) for part in relative.split("/")[:-1]):
                continue
            out.append(self._landed(info))
        return sorted(out, key=lambda f: (f.mtime_ns, f.fs_path))

    def _landed(self, info: pafs.FileInfo, url: str | None = None) -> Landed:
        mtime_ns = info.mtime_ns if info.mtime_ns is not None else 0
        return Landed(url or self.landing_dir.url_of(info.path), info.path, info.base_name, info.size, mtime_ns)

    def at(self, url: str) -> tuple[pafs.FileSystem, Landed | None]:
        """The filesystem of ``url`` and the file there (None when it is gone)."""
        where = lakefs.place(self.settings, url)
        info = where.fs.get_file_info(where.root)
        if info.type != pafs.FileType.File:
            return where.fs, None
        return where.fs, self._landed(info, where.url)

    @staticmethod
    def local_checksum(path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def checksum(self, landed: Landed, fs: pafs.FileSystem | None = None) -> str:
        """SHA-256 (hex) of the file's bytes, streamed; the last :data:`CHECKSUM_MEMO` remembered per (path,
        size, mtime)."""
        memo = (landed.url, landed.size, landed.mtime_ns)
        known = self._checksums.get(memo)
        if known is None:
            digest = hashlib.sha256()
            with (fs or self.landing_dir.fs).open_input_stream(landed.fs_path, compression=None) as stream:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
            known = self._checksums[memo] = digest.hexdigest()
            while len(self._checksums) > CHECKSUM_MEMO:
                self._checksums.popitem(last=False)
        else:
            self._checksums.move_to_end(memo)
        return known

    @contextmanager
    def local(self, landed: Landed, fs: pafs.FileSystem | None = None,
              spool_dir: str | None = None) -> Iterator[Path]:
        """A local path to read the file from: itself when local, else a copy streamed into ``spool_dir``."""
        fs = fs or self.landing_dir.fs
        if isinstance(fs, pafs.LocalFileSystem):
            yield Path(landed.fs_path)
            return
        with tempfile.TemporaryDirectory(prefix="meterlake-landed-", dir=spool_dir) as tmp:
            target = Path(tmp) / landed.name
            with fs.open_input_stream(landed.fs_path, compression=None) as stream, open(target, "wb") as out:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
            yield target

    def head(self, landed: Landed, fs: pafs.FileSystem | None = None, size: int = 1 << 16) -> bytes:
        with (fs or self.landing_dir.fs).open_input_stream(landed.fs_path, compression=None) as stream:
            return stream.read(size)

    def remove(self, landed: Landed, fs: pafs.FileSystem | None = None) -> bool:
        try:
            (fs or self.landing_dir.fs).delete_file(landed.fs_path)
            return True
        except FileNotFoundError:
            return False  # another worker removed it first

    # ------------------------------------------------------------------------------------------- the lake

    def _area(self, *parts: str) -> str:
        return posixpath.join(self.archive_dir.root, *parts)

    def _copy_into(self, landed: Landed, directory: str, checksum: str, source: Path) -> str:
        """Copy the local file ``source`` (the landed file or its local copy) into ``directory`` of the archive,
        under the file's name, or its name with the checksum when that name holds different bytes."""
        self.archive_dir.fs.create_dir(directory, recursive=True)
        stem, dot, ext = landed.name.partition(".")
        temporary = posixpath.join(directory, f".{landed.name}.{checksum[:8]}.{uuid.uuid4().hex[:8]}.tmp")
        with open(source, "rb") as src, self.archive_dir.fs.open_output_stream(temporary, compression=None) as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        try:
            for name in (landed.name, f"{stem}.{checksum[:12]}{dot}{ext}"):
                target = posixpath.join(directory, name)
                if self._place(temporary, target) or self._archive_checksum(target) == checksum:
                    return self.archive_dir.url_of(target)  # put there now, or these bytes were archived there before
            raise OSError(f"{landed.name}: {directory} holds other files under both its name and its "
                          f"checksummed name {name}; not overwriting either")
        finally:
            self._discard(temporary)

    def _archive_checksum(self, path: str) -> str | None:
        digest = hashlib.sha256()
        try:
            with self.archive_dir.fs.open_input_stream(path, compression=None) as stream:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        return digest.hexdigest()

    def _place(self, temporary: str, target: str) -> bool:
        """Give ``temporary`` the name ``target`` if it is free; False (and nothing changed) if it is taken."""
        if isinstance(self.archive_dir.fs, pafs.LocalFileSystem):
            try:
                os.link(temporary, target)  # atomic, and fails if the name is taken
            except FileExistsError:
                return False
            return True
        if self.archive_dir.fs.get_file_info(target).type != pafs.FileType.NotFound:
            return False
        self.archive_dir.fs.move(temporary, target)
        # WebHDFS answers a rename onto a taken name with "false", not an error: the temporary file is still there
        return self.archive_dir.fs.get_file_info(temporary).type == pafs.FileType.NotFound

    def _discard(self, path: str) -> None:
        try:
            self.archive_dir.fs.delete_file(path)
        except FileNotFoundError:
            pass  # renamed into place

    def archive(self, landed: Landed, checksum: str, source: Path, day: datetime | None = None) -> str:
        """Copy an accepted file (read from the local ``source``) to ``<archive>/<raw_area>/<yyyy>/<mm>/<dd>/``;
        returns where it went (a URL)."""
        day = day or datetime.now(UTC)  # the processing day: where to find a file, not a version of its reads
        directory = self._area(self.settings.ingest.raw_area, f"{day:%Y}", f"{day:%m}", f"{day:%d}")
        return self._copy_into(landed, directory, checksum, source)

    def quarantine(self, landed: Landed, checksum: str, reason: dict, source: Path) -> str:
        """Copy a rejected (or duplicate) file to the quarantine area with ``<file>.reason.json``."""
        directory = self._area(self.settings.ingest.quarantine_area)
        where = self._copy_into(landed, directory, checksum, source)
        note = {"file": landed.name, "landed_as": landed.url, "checksum": checksum, "size": landed.size, **reason}
        data = (json.dumps(note, indent=1, sort_keys=True) + "\n").encode()
        temporary = posixpath.join(directory, f".{posixpath.basename(where)}.{uuid.uuid4().hex[:8]}.reason.tmp")
        with self.archive_dir.fs.open_output_stream(temporary, compression=None) as out:
            out.write(data)
        try:
            # a file quarantined again (a duplicate landing twice) keeps its first reason and gets one more
            base = posixpath.join(directory, posixpath.basename(where))
            for suffix in ["", *(f".{n}" for n in range(1, 1000))]:
                if self._place(temporary, f"{base}.reason{suffix}.json"):
                    break
        finally:
            self._discard(temporary)
        return where
