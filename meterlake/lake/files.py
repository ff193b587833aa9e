"""The lake on a filesystem: atomic Parquet and manifest writes, listings, and the live files of each date.

One abstraction for every store: a ``pyarrow.fs.FileSystem`` and a root path (:func:`open_lake` builds them from
``paths.lake`` through :mod:`meterlake.lakefs`: a local directory, HDFS over WebHDFS, or S3). The layout is
identical on each (:mod:`meterlake.lake.layout`, docs/lake.md).

Atomic writes: the data goes to a hidden temporary name in the target directory, is made durable, then renamed.
On a local disk durable means ``fsync`` of the file and then of the directory after the rename; on HDFS the
closed file is on its DataNodes' pipeline and the NameNode's rename is atomic; on S3 the final object appears
whole at once. Off the local disk a write never replaces an existing file: HDFS (WebHDFS) cannot rename over
one, and removing it first would leave readers a gap. What changes over time is therefore versioned: a new
name per version, the highest complete one current (the manifests, :meth:`Lake.manifest`; the jobs' outputs,
:mod:`jobs.lakeio`). ``exclusive`` writes refuse an existing name on a local disk too (a hard link, which fails if
the name is taken), so two writers of the same version cannot both succeed on local and HDFS.
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


class ManifestConflict(OSError):
    """Another writer committed the manifest version this writer meant to commit."""


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

    def _write_atomic(self, relative: str, write, exclusive: bool = False) -> int:
        """Write ``relative`` by ``write(file)`` to a temporary name, make it durable, rename. Returns bytes.

        Raises FileExistsError when ``relative`` exists and the write may not replace it: with ``exclusive``,
        and always off the local disk (the existing file is left as it was)."""
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
                if exclusive:
                    os.link(tmp, final)  # fails if the name is taken
                    os.remove(tmp)
                else:
                    os.replace(tmp, final)
            except BaseException:
                _remove_quietly(tmp)
                raise
            _fsync_dir(directory)
            return size
        try:
            if self.fs.get_file_info(final).type != pafs.FileType.NotFound:
                raise FileExistsError(final)
            with self.fs.open_output_stream(tmp) as out:
                write(out)
                size = out.tell()
            self.fs.move(tmp, final)
            if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                # HDFS (WebHDFS) does not rename over an existing file, and says so only with "false": another
                # writer took the name between the check and the rename
                raise FileExistsError(final)
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

    def write_bytes(self, relative: str, data: bytes, exclusive: bool = False) -> int:
        return self._write_atomic(relative, lambda f: f.write(data), exclusive)

    def read_parquet(self, relative: str) -> pa.Table:
        return pq.read_table(self.path(relative), filesystem=self.fs)

    def dataset(self, paths: list[str], base: pa.Schema | None = None):
        """``(dataset, rows)``: the Parquet files ``paths`` (on :attr:`fs`) as one pyarrow dataset whose schema
        has every column of every file (and of ``base``), by the schema evolution rule (docs/lake.md): a file
        written by a newer version may carry more columns, and they are kept; a file without one reads nulls
        there. Reads each file's footer (not its data); ``rows`` is the files' total."""
        import pyarrow.dataset as ds

        schemas, rows = [] if base is None else [base], 0
        for path in paths:
            with self.fs.open_input_file(path) as f:
                meta = pq.ParquetFile(f).metadata
                schemas.append(meta.schema.to_arrow_schema())
                rows += meta.num_rows
        schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else None
        return ds.dataset(paths, schema=schema, format="parquet", filesystem=self.fs), rows

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
        """The date's current manifest: the highest version present (see :mod:`layout`), else the unversioned
        file of an older lake, else an empty one."""
        for _ in range(5):
            names = [i.base_name for i in self.list_dir(layout.manifest_dir(day)) if i.type == pafs.FileType.File]
            current = layout.current_manifest(names)
            if current is None:
                break
            text = self.read_bytes(f"{layout.manifest_dir(day)}/{current}")
            if text is not None:  # None: collected since the listing, so a newer version exists; list again
                return layout.Manifest.from_json(text.decode())
        else:
            raise OSError(f"{day}: the manifest versions keep vanishing under {layout.manifest_dir(day)}")
        text = self.read_bytes(layout.manifest_name(day))
        return layout.Manifest(day) if text is None else layout.Manifest.from_json(text.decode())

    def write_manifest(self, manifest: layout.Manifest) -> None:
        """Create the manifest's version (the commit of a change to its date). Raises :class:`ManifestConflict`
        when that version exists already: another writer changed the date since ``manifest``'s predecessor was
        read (detected on a local disk and on HDFS; on S3 one compaction at a time, see docs/lake.md)."""
        relative = f"{layout.manifest_dir(manifest.settlement_date)}/{layout.manifest_version_name(manifest.version)}"
        try:
            self.write_bytes(relative, manifest.to_json().encode(), exclusive=True)
        except FileExistsError:
            raise ManifestConflict(f"{manifest.settlement_date}: manifest version {manifest.version} was written by "
                                   "another writer") from None

    def collect_manifests(self, day: date, current: int, older_than: float) -> list[str]:
        """Delete the date's manifest versions below ``current`` last modified before ``older_than`` (epoch
        seconds), and then the unversioned file of an older lake; returns their names."""
        gone = []
        for info in self.list_dir(layout.manifest_dir(day)):
            version = layout.parse_manifest_version(info.base_name)
            mtime = info.mtime.timestamp() if info.mtime is not None else older_than
            if version is not None and version < current and mtime < older_than:
                self.delete(f"{layout.manifest_dir(day)}/{info.base_name}")
                gone.append(info.base_name)
        if gone and self.exists(layout.manifest_name(day)):  # versions older than the grace period exist
            self.delete(layout.manifest_name(day))
            gone.append(layout.manifest_name(day).rsplit("/", 1)[1])
        return gone

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
