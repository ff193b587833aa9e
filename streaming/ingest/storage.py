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

A name already taken by a different file (another size) gets the file's checksum before its extension; copies
go to a temporary name first and are renamed into place, so a reader never sees half a file.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs

from meterlake import lakefs
from meterlake.config import Settings

CHUNK = 1 << 20
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


def _join_url(root_url: str, fs_root: str, fs_path: str) -> str:
    """The URL of ``fs_path`` given the URL ``root_url`` whose filesystem path is ``fs_root``."""
    if "://" not in root_url:
        return fs_path
    relative = posixpath.relpath(fs_path, fs_root)
    return root_url.rstrip("/") + "/" + relative


class Storage:
    """The landing directory ``landing_url`` and the archive of ``settings`` (``ingest.archive_dir``)."""

    def __init__(self, settings: Settings, landing_url: str | None = None):
        self.settings = settings
        self.landing_url = settings.resolve_url(landing_url if landing_url is not None else settings.ingest.landing_dir)
        self.fs, self.root = lakefs.resolve(settings, self.landing_url)
        self.archive_url = settings.resolve_url(settings.ingest.archive_dir)
        self.archive_fs, self.archive_root = lakefs.resolve(settings, self.archive_url)
        self._checksums: dict[tuple[str, int, int], str] = {}

    # ------------------------------------------------------------------------------------------- landing

    def list(self) -> list[Landed]:
        """The landed files (recursively), oldest first; hidden and partial names left out."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.root, recursive=True, allow_not_found=True))
        except FileNotFoundError:
            return []
        out = []
        for info in infos:
            if info.type != pafs.FileType.File or not _is_candidate(info.base_name):
                continue
            relative = posixpath.relpath(info.path, self.root)
            if any(not _is_candidate(part) for part in relative.split("/")[:-1]):
                continue
            out.append(self._landed(info))
        return sorted(out, key=lambda f: (f.mtime_ns, f.fs_path))

    def _landed(self, info: pafs.FileInfo, url: str | None = None) -> Landed:
        mtime_ns = info.mtime_ns if info.mtime_ns is not None else 0
        return Landed(url or _join_url(self.landing_url, self.root, info.path), info.path, info.base_name,
                      info.size, mtime_ns)

    def at(self, url: str) -> tuple[pafs.FileSystem, Landed | None]:
        """The filesystem of ``url`` and the file there (None when it is gone)."""
        fs, path = lakefs.resolve(self.settings, url)
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            return fs, None
        return fs, self._landed(info, url)

    @staticmethod
    def local_checksum(path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def checksum(self, landed: Landed, fs: pafs.FileSystem | None = None) -> str:
        """SHA-256 (hex) of the file's bytes, streamed; remembered per (path, size, mtime)."""
        memo = (landed.url, landed.size, landed.mtime_ns)
        known = self._checksums.get(memo)
        if known is None:
            digest = hashlib.sha256()
            with (fs or self.fs).open_input_stream(landed.fs_path, compression=None) as stream:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
            known = self._checksums[memo] = digest.hexdigest()
        return known

    @contextmanager
    def local(self, landed: Landed, fs: pafs.FileSystem | None = None,
              spool_dir: str | None = None) -> Iterator[Path]:
        """A local path to read the file from: itself when local, else a copy streamed into ``spool_dir``."""
        fs = fs or self.fs
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
        with (fs or self.fs).open_input_stream(landed.fs_path, compression=None) as stream:
            return stream.read(size)

    def remove(self, landed: Landed, fs: pafs.FileSystem | None = None) -> bool:
        try:
            (fs or self.fs).delete_file(landed.fs_path)
            return True
        except FileNotFoundError:
            return False  # another worker removed it first

    # ------------------------------------------------------------------------------------------- the lake

    def _area(self, *parts: str) -> str:
        return posixpath.join(self.archive_root, *parts)

    def _url(self, fs_path: str) -> str:
        return _join_url(self.archive_url, self.archive_root, fs_path)

    def _copy_into(self, landed: Landed, directory: str, checksum: str, source: Path) -> str:
        """Copy the local file ``source`` (the landed file or its local copy) into ``directory`` of the archive."""
        self.archive_fs.create_dir(directory, recursive=True)
        target = posixpath.join(directory, landed.name)
        info = self.archive_fs.get_file_info(target)
        if info.type == pafs.FileType.File and info.size != landed.size:
            stem, dot, ext = landed.name.partition(".")
            target = posixpath.join(directory, f"{stem}.{checksum[:12]}{dot}{ext}")
        temporary = posixpath.join(directory, f".{posixpath.basename(target)}.{checksum[:8]}.tmp")
        with open(source, "rb") as src, self.archive_fs.open_output_stream(temporary, compression=None) as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        self._replace(temporary, target)
        return self._url(target)

    def _replace(self, source: str, target: str) -> None:
        if not isinstance(self.archive_fs, pafs.LocalFileSystem):  # POSIX rename replaces; an HDFS rename refuses
            try:
                self.archive_fs.delete_file(target)
            except (FileNotFoundError, OSError):
                pass
        self.archive_fs.move(source, target)

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
        reason_path = posixpath.join(directory, posixpath.basename(where) + ".reason.json")
        temporary = reason_path + f".{checksum[:8]}.tmp"
        with self.archive_fs.open_output_stream(temporary, compression=None) as out:
            out.write((json.dumps(note, indent=1, sort_keys=True) + "\n").encode())
        self._replace(temporary, reason_path)
        return where
