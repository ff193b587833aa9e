"""File names, the manifest and the live-file rule, on literal listings."""
from __future__ import annotations

from datetime import date

import pytest

from meterlake.lake import layout
from meterlake.lake.layout import Manifest, PartName

DAY = date(2016, 10, 30)


def test_a_part_name_carries_topic_partition_and_offsets_and_reads_back():
    name = layout.part_name("meter-reads", 3, 100, 250)
    assert name == "part-meter-reads-3-100-250.parquet"
    assert layout.parse_part(name) == PartName("meter-reads", 3, 100, 250)


@pytest.mark.parametrize("name", [
    "compacted-1-0.parquet", ".part-meter-reads-3-100-250.parquet.ab12.tmp", "part-meter-reads-3-100.parquet",
    "part-meter-reads-3-250-100.parquet", "part-meter-reads-x-1-2.parquet", "notes.txt",
])
def test_other_names_are_not_part_files(name):
    assert layout.parse_part(name) is None


def test_date_directories_are_hive_style():
    assert layout.date_dir(DAY) == "settlement_date=2016-10-30"
    assert layout.parse_date_dir("settlement_date=2016-10-30") == DAY
    assert layout.parse_date_dir("settlement_date=2016-13-30") is None
    assert layout.manifest_name(DAY) == "_manifest/settlement_date=2016-10-30.json"


LISTING = [
    "part-meter-reads-0-0-9.parquet", "part-meter-reads-0-10-19.parquet", "part-meter-reads-1-0-4.parquet",
    "part-device-reads-0-0-2.parquet", "compacted-1-0.parquet", "compacted-2-0.parquet",
    ".part-meter-reads-0-20-29.parquet.0a1b.tmp",
]


def test_with_no_manifest_every_part_file_is_live_and_nothing_else():
    assert layout.live_files(LISTING, Manifest(DAY)) == [
        "part-device-reads-0-0-2.parquet", "part-meter-reads-0-0-9.parquet", "part-meter-reads-0-10-19.parquet",
        "part-meter-reads-1-0-4.parquet"]


def test_live_files_are_the_manifests_compacted_files_and_parts_above_its_watermarks():
    manifest = Manifest(DAY, 2, [{"name": "compacted-2-0.parquet", "rows": 10, "bytes": 100}],
                        {"meter-reads/0": 9, "device-reads/0": 2})
    assert layout.live_files(LISTING, manifest) == [
        "compacted-2-0.parquet", "part-meter-reads-0-10-19.parquet", "part-meter-reads-1-0-4.parquet"]


def test_a_compacted_file_the_manifest_lists_but_the_directory_lacks_is_an_error():
    manifest = Manifest(DAY, 3, [{"name": "compacted-3-0.parquet", "rows": 1, "bytes": 1}])
    with pytest.raises(ValueError, match="missing files"):
        layout.live_files(LISTING, manifest)


def test_retiring_raises_each_partitions_watermark_and_queues_the_inputs_for_deletion():
    before = Manifest(DAY, 1, [{"name": "compacted-1-0.parquet", "rows": 5, "bytes": 50}], {"meter-reads/0": 3})
    inputs = ["compacted-1-0.parquet", "part-meter-reads-0-4-9.parquet", "part-meter-reads-0-10-19.parquet",
              "part-meter-reads-1-0-4.parquet"]
    after = layout.retire(before, inputs, [{"name": "compacted-2-0.parquet", "rows": 9, "bytes": 80}], now=1000.0)
    assert after.generation == 2
    assert after.compacted_names == ["compacted-2-0.parquet"]
    assert after.retired_through == {"meter-reads/0": 19, "meter-reads/1": 4}
    assert [e["name"] for e in after.pending_delete] == inputs
    # AND the manifest survives its JSON form
    assert Manifest.from_json(after.to_json()) == after


def test_a_rewritten_part_at_or_below_the_watermark_stays_retired():
    manifest = Manifest(DAY, 1, [], {"meter-reads/0": 19})
    assert manifest.is_retired(PartName("meter-reads", 0, 10, 19))
    assert not manifest.is_retired(PartName("meter-reads", 0, 20, 29))
    assert not manifest.is_retired(PartName("meter-reads", 1, 0, 4))
