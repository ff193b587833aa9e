"""The lake on a filesystem: atomic Parquet and manifest writes, listings, and the live files of each date.

One abstraction for every store: a ``pyarrow.fs.FileSystem`` and a root path (:func:`open_lake` builds them from
``paths.lake`` through :mod:`meterlake.lakefs`: a local directory, HDFS over WebHDFS, or S3). The layout is
identical on each (:mod:`meterlake.lake.layout`, docs/lake.md).

Atomic writes: the data goes to a hidden temporary name in the target directory, is made durable, then renamed.
On a local disk durable means ``fsync`` of the file and then of the directory after the rename; on HDFS the
closed file is on its DataNodes' pipeline and the NameNode's rename is atomic; on S3 the final object appears
whole at once. A rename never silently fails: where a store cannot rename over an existing file (HDFS), the
target is removed first, and the result is checked.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from meterlake.config import Settings
from meterlake.lake import layout

PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}


@dataclass(frozen=True)
class DataFile:
    name: str
    path: str
    size: int


class Lake:
    """The lake at ``root`` on ``fs``. Paths given to methods are relative to the root, ``/``-separated."""

    def __init__(self, fs: pafs.FileSystem, root: str):
        self.fs = fs
        self.root = root.rstrip("/") or "/"
        self.local = isinstance(fs, pafs.LocalFileSystem)
        self._made: set[str] = set()  # directories known to exist

    def __repr__(self) -> str:
        return f"Lake({self.fs.type_name}:{self.root})"

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}" if relative else self.root

    # ------------------------------------------------------------------------------------------ primitives

    def exists(self, relative: str) -> bool:
        return self.fs.get_file_info(self.path(relative)).type != pafs.FileType.NotFound

    def list_dir(self, relative: str) -> list[pafs.FileInfo]:
        """The entries directly under ``relative`` (none if it does not exist)."""
        selector = pafs.FileSelector(self.path(relative), allow_not_found=True, recursive=False)
        return self.fs.get_file_info(selector)

    def read_bytes(self, relative: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(self.path(relative)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def delete(self, relative: str) -> None:
        try:
            self.fs.delete_file(self.path(relative))
        except FileNotFoundError:
            pass

    def _ensure_dir(self, directory: str) -> None:
        if directory in self._made:
            return
        if self.local:
            if not os.path.isdir(directory):
                os.makedirs(directory, exist_ok=True)
                _fsync_dir(os.path.dirname(directory))
        else:
            self.fs.create_dir(directory, recursive=True)
        self._made.add(directory)

    def _write_atomic(self, relative: str, write) -> int:
        """Write ``relative`` by ``write(file)`` to a temporary name, make it durable, rename. Returns bytes."""
        final = self.path(relative)
        directory, name = final.rsplit("/", 1)
        tmp = f"{directory}/{layout.temporary_name(name, uuid.uuid4().hex[:12])}"
        self._ensure_dir(directory)
        if self.local:
            try:
                with open(tmp, "wb") as f:
                    write(f)
                    f.flush()
                    os.fsync(f.fileno())
                    size = f.tell()
                os.replace(tmp, final)
            except BaseException:
                _remove_quietly(tmp)
                raise
            _fsync_dir(directory)
            return size
        try:
            with self.fs.open_output_stream(tmp) as out:
                write(out)
                size = out.tell()
            self.fs.move(tmp, final)
            if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                # HDFS (WebHDFS) does not rename over an existing file, and says so only with "false"
                self.fs.delete_file(final)
                self.fs.move(tmp, final)
                if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                    raise OSError(f"renaming {tmp} to {final} did not happen")
        except BaseException:
            try:
                self.fs.delete_file(tmp)
            except OSError:
                pass
            raise
        return size

    def write_parquet(self, relative: str, table: pa.Table) -> int:
        """Write ``table`` as one Parquet file (zstd) atomically; returns its size in bytes."""
        return self._write_atomic(relative, lambda f: pq.write_table(table, f, **PARQUET_OPTIONS))

    def write_text(self, relative: str, text: str) -> int:
        return self.write_bytes(relative, text.encode())

    def write_bytes(self, relative: str, data: bytes) -> int:
        return self._write_atomic(relative, lambda f: f.write(data))

    def read_parquet(self, relative: str) -> pa.Table:
        return pq.read_table(self.path(relative), filesystem=self.fs)

    def parquet_rows(self, relative: str) -> int | None:
        """The rows of a Parquet file, from its footer (None if there is no such file)."""
        if not self.exists(relative):
            return None
        with self.fs.open_input_file(self.path(relative)) as f:
            return pq.ParquetFile(f).metadata.num_rows

    # ------------------------------------------------------------------------------------------ the layout

    def dates(self) -> list[date]:
        """Settlement dates with a directory in the lake, in order."""
        found = (layout.parse_date_dir(info.base_name) for info in self.list_dir("")
                 if info.type == pafs.FileType.Directory)
        return sorted(d for d in found if d is not None)

    def manifest(self, day: date) -> layout.Manifest:
        text = self.read_bytes(layout.manifest_name(day))
        return layout.Manifest(day) if text is None else layout.Manifest.from_json(text.decode())

    def write_manifest(self, manifest: layout.Manifest) -> None:
        self.write_text(layout.manifest_name(manifest.settlement_date), manifest.to_json())

    def date_listing(self, day: date) -> list[pafs.FileInfo]:
        return [i for i in self.list_dir(layout.date_dir(day)) if i.type == pafs.FileType.File]

    def live_files(self, day: date) -> list[DataFile]:
        """The live data files of ``day``: read the manifest first, then list (see :mod:`layout`)."""
        manifest = self.manifest(day)
        listing = {i.base_name: i for i in self.date_listing(day)}
        return [DataFile(n, listing[n].path, listing[n].size) for n in layout.live_files(list(listing), manifest)]

    def all_live_files(self, days: list[date] | None = None) -> Iterator[tuple[date, DataFile]]:
        for day in self.dates() if days is None else days:
            for f in self.live_files(day):
                yield day, f

    def part_retired_or_present(self, day: date, part: layout.PartName) -> bool:
        """Is the mirror file ``part`` of ``day`` already in the lake (present, or merged by compaction)?"""
        if self.exists(f"{layout.date_dir(day)}/{part.name}"):
            return True
        return self.manifest(day).is_retired(part)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def open_lake(settings: Settings, url: str | None = None) -> Lake:
    """The lake of ``paths.lake`` (or ``url``): a local path, ``hdfs://…`` or ``s3://…`` (see meterlake.lakefs)."""
    from meterlake import lakefs

    fs, root = lakefs.resolve(settings, url)
    return Lake(fs, root)
