"""The jobs' outputs and data protection: erase a meter from every output that carries it, and drop the outputs of
settlement dates past retention. Both go through the outputs' own commit protocol (:mod:`jobs.lakeio`: a new
version of a slot, committed by its pointer), so a reader sees an output before or after, whole.

Run by ``meterlake privacy erase`` and ``meterlake privacy retention`` (meterlake/cli/privacy_cmd.py).
Grain of the answers: one entry per output slot changed (``<output>/<partition dirs>``).
"""
from __future__ import annotations

import contextlib
from datetime import date

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jobs.lakeio import _delete_tree, _pointers, current, new_version, publish
from meterlake.lake.files import Lake
from meterlake.lake.layout import DATE_DIR_PREFIX, parse_date_dir
from meterlake.lake.outputs import POINTERS

#: The column that names a meter in the outputs (a pseudonym in the lake).
METER_COLUMN = "meter_point"


def output_slots(lake: Lake) -> list[str]:
    """Every versioned output slot of the lake (a directory with commit pointers), relative, sorted. The reads'
    own date directories and the ``_`` directories (manifests, checkpoints, audit) are not outputs."""
    slots = set()
    for top in lake.list_dir(""):
        name = top.base_name
        if top.type != pafs.FileType.Directory or name.startswith(("_", ".", DATE_DIR_PREFIX)):
            continue
        selector = pafs.FileSelector(top.path, recursive=True, allow_not_found=True)
        for info in lake.fs.get_file_info(selector):
            relative = info.path[len(lake.root):].lstrip("/")
            if info.type == pafs.FileType.Directory and relative.rsplit("/", 1)[-1] == POINTERS:
                slots.add(relative.rpartition("/")[0])
    return sorted(slots)


def _version_files(lake: Lake, version: str) -> list[str]:
    base = lake.path(version)
    infos = lake.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    return sorted(i.path[len(base):].lstrip("/") for i in infos if i.type == pafs.FileType.File)


def _meter_rows(lake: Lake, path: str, meter_point: str) -> int:
    with lake.fs.open_input_file(path) as f:
        if METER_COLUMN not in pq.ParquetFile(f).schema_arrow.names:
            return 0
    dataset = ds.dataset(path, format="parquet", filesystem=lake.fs)
    return dataset.count_rows(filter=pc.field(METER_COLUMN) == meter_point)


def erase_meter(lake: Lake, meter_point: str) -> list[dict]:
    """Rewrite every output slot whose current version has rows of ``meter_point`` (its pseudonym) as a new
    version without them (same file names; other files copied), committed, and the version superseded deleted
    at once (no grace: it holds the rows). Returns ``{"output", "rows"}`` per slot rewritten."""
    changed = []
    for slot in output_slots(lake):
        version = current(lake, slot)
        if version == slot:
            continue
        files = _version_files(lake, version)
        rows = {f: _meter_rows(lake, lake.path(f"{version}/{f}"), meter_point) for f in files
                if f.endswith(".parquet")}
        if not any(rows.values()):
            continue
        fresh = new_version(slot)
        for name in files:
            source = f"{version}/{name}"
            if rows.get(name):
                table = lake.read_parquet(source)
                table = table.filter(pc.invert(pc.fill_null(pc.equal(table[METER_COLUMN], meter_point), False)))
                lake.write_parquet(f"{fresh}/{name}", table)  # a fresh version: no name to replace
            else:
                lake.write_bytes(f"{fresh}/{name}", lake.read_bytes(source), exclusive=True)
        publish(lake, fresh, 0.0)
        changed.append({"output": slot, "rows": sum(rows.values())})
    return changed


def slot_date(slot: str) -> date | None:
    """The settlement date a slot's path names (``…/settlement_date=D/…``), or None. Pure."""
    for part in slot.split("/"):
        day = parse_date_dir(part)
        if day is not None:
            return day
    return None


def expired_slots(lake: Lake, before: date) -> list[str]:
    """The output slots of settlement dates before ``before``."""
    return [s for s in output_slots(lake) if (d := slot_date(s)) is not None and d < before]


def drop_slot(lake: Lake, slot: str) -> int:
    """Remove an output slot: its commit pointers first, oldest first (so the current version stays current until
    its own pointer goes, and then there is none), then its files. Returns the files removed."""
    base = lake.path(slot)
    files = [i for i in lake.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
             if i.type == pafs.FileType.File]
    for _, _, info in _pointers(lake, slot):
        lake.delete(f"{slot}/{POINTERS}/{info.base_name}")
    _delete_tree(lake, slot)
    parent = slot.rpartition("/")[0]
    while parent and not lake.list_dir(parent):  # the date (and run) directories left empty
        with contextlib.suppress(OSError):
            lake.fs.delete_dir(lake.path(parent))
        parent = parent.rpartition("/")[0]
    return len(files)
