"""The archive never loses a file: same name and size but other bytes is another file; the same bytes again is
the file already archived; on HDFS nothing is deleted to put a file in place."""
from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from meterlake import config
from streaming.ingest.storage import Landed, Storage

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def _storage(archive: str, landing: Path, base=None) -> Storage:
    base = base or config.load(None)
    settings = base.model_copy(update={"ingest": base.ingest.model_copy(update={"archive_dir": archive})})
    return Storage(settings, str(landing))


def _archive(storage: Storage, tmp_path: Path, name: str, content: bytes) -> str:
    source = tmp_path / uuid.uuid4().hex / name
    source.parent.mkdir()
    source.write_bytes(content)
    landed = Landed(str(source), str(source), name, len(content), 0)
    return storage.archive(landed, hashlib.sha256(content).hexdigest(), source, DAY)


def _read(storage: Storage, url: str) -> bytes:
    from meterlake import lakefs

    fs, path = lakefs.resolve(storage.settings, url)
    with fs.open_input_stream(path, compression=None) as f:
        return f.read()


def _names(storage: Storage) -> list[str]:
    directory = f"{storage.archive_dir.root}/raw/2026/03/01"
    return sorted(i.base_name for i in storage.archive_dir.fs.get_file_info(pafs.FileSelector(directory)))


def _check_nothing_is_lost(storage: Storage, tmp_path: Path) -> None:
    # GIVEN two different files of the same name and size, and the first one again
    first = _archive(storage, tmp_path, "HH_0301.csv", b"MAC000001,0.5\n")
    second = _archive(storage, tmp_path, "HH_0301.csv", b"MAC000001,0.7\n")
    again = _archive(storage, tmp_path, "HH_0301.csv", b"MAC000001,0.5\n")
    # THEN both are archived, each with its own bytes, and the repeat is the first one
    assert first != second and again == first
    assert _read(storage, first) == b"MAC000001,0.5\n"
    assert _read(storage, second) == b"MAC000001,0.7\n"
    digest = hashlib.sha256(b"MAC000001,0.7\n").hexdigest()
    assert _names(storage) == sorted(["HH_0301.csv", f"HH_0301.{digest[:12]}.csv"])


def test_a_same_sized_different_file_is_archived_beside_and_a_repeat_is_recognised(tmp_path):
    _check_nothing_is_lost(_storage(str(tmp_path / "archive"), tmp_path), tmp_path)


@pytest.mark.stack
def test_the_same_on_hdfs(hdfs_stack, tmp_path):
    from infra.local import stack as stack_mod

    settings = stack_mod.remembered(hdfs_stack)
    _check_nothing_is_lost(_storage(f"hdfs:///safety-archive/{uuid.uuid4().hex[:8]}", tmp_path, settings), tmp_path)


def test_a_file_quarantined_twice_keeps_both_reasons(tmp_path):
    storage = _storage(str(tmp_path / "archive"), tmp_path)
    source = tmp_path / "bad.csv"
    source.write_bytes(b"nonsense\n")
    landed = Landed(str(source), str(source), "bad.csv", 9, 0)
    digest = hashlib.sha256(b"nonsense\n").hexdigest()
    storage.quarantine(landed, digest, {"reason": "malformed_line"}, source)
    storage.quarantine(landed, digest, {"reason": "duplicate_file"}, source)
    quarantine = tmp_path / "archive" / "quarantine"
    assert sorted(p.name for p in quarantine.iterdir()) == ["bad.csv", "bad.csv.reason.1.json", "bad.csv.reason.json"]
    assert '"malformed_line"' in (quarantine / "bad.csv.reason.json").read_text()
