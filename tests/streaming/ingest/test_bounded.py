"""A long-running ingest worker's memory is bounded: its checksum memo and the lists of its answer."""
from __future__ import annotations

import pytest

from streaming.ingest import storage as storage_mod
from streaming.ingest import watch
from streaming.ingest.storage import Landed, Storage


def test_the_checksum_memo_keeps_only_the_most_recent(tmp_path, monkeypatch):
    from meterlake import config

    monkeypatch.setattr(storage_mod, "CHECKSUM_MEMO", 50)
    settings = config.load(None)
    store = Storage(settings.model_copy(update={"ingest": settings.ingest.model_copy(
        update={"archive_dir": str(tmp_path / "archive")})}), str(tmp_path))
    for i in range(200):
        path = tmp_path / f"f{i}.csv"
        path.write_text(f"{i}\n")
        store.checksum(Landed(str(path), str(path), path.name, path.stat().st_size, path.stat().st_mtime_ns))
    assert len(store._checksums) == 50
    assert next(reversed(store._checksums))[0].endswith("f199.csv")


@pytest.mark.parametrize("name", ["files", "duplicates", "announced"])
def test_the_answer_of_a_long_watch_lists_the_last_entries(name):
    result = watch.WatchResult("w1")
    for i in range(watch.LISTED + 500):
        getattr(result, name).append({"path": f"f{i}"})
    listed = result.to_json()[name]
    assert len(listed) == watch.LISTED
    assert (listed[0]["path"], listed[-1]["path"]) == ("f500", f"f{watch.LISTED + 499}")
    assert watch.WatchResult("w2").files == []
