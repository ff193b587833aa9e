"""The demo's code path (meterlake/cli/demo.py) at a tiny scale on the session's Kafka, Cassandra and Spark: 5
meters x 2 days (the autumn clock change and the day after), every stage but Superset (its fixture is per module in
tests/superset and costs a minute to start; the demo's call to it is one line), run twice.

The expected figures come from the generator's manifest (what it injected), not from the pipeline.
"""
from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest

from meterlake.cli import demo

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.timeout(3600)]  # two runs of the demo

PLAN = demo.Plan(meters=5, days=2, start=date(2026, 10, 25), seed=7, dashboards=False)


@pytest.fixture(scope="module")
def demo_settings(kafka_stack, cassandra_stack, tmp_path_factory):
    """The running test stack's settings, with a keyspace, topics, lake, warehouse and landing of this test's own."""
    base = tmp_path_factory.mktemp("demo")
    tag = uuid.uuid4().hex[:8]
    s = cassandra_stack
    k = s.kafka
    return s.model_copy(update={
        "paths": s.paths.model_copy(update={"state_dir": base / "state", "lake": str(base / "lake"),
                                            "warehouse": str(base / "warehouse" / "meterlake.duckdb")}),
        "ingest": s.ingest.model_copy(update={"landing_dir": str(base / "landing"),
                                              "archive_dir": str(base / "archive")}),
        "cassandra": s.cassandra.model_copy(update={"keyspace": f"demo_{tag}"}),
        "kafka": k.model_copy(update={"reads_topic": f"demo-{tag}-reads", "files_topic": f"demo-{tag}-files",
                                      "devices_topic": f"demo-{tag}-devices",
                                      "quarantine_topic": f"demo-{tag}-quarantine"}),
    })


@pytest.fixture(scope="module")
def two_runs(demo_settings, spark):
    first = demo.run(demo_settings, PLAN, start_stack=False, spark=spark, quiet=True)
    second = demo.run(demo_settings, PLAN, start_stack=False, spark=spark, quiet=True)
    return first, second


def _manifest(settings):
    import json

    return json.loads((settings.state_dir / "demo" / "portfolio" / "manifest.json").read_text())


def test_files_and_reads_are_counted_as_the_generator_injected_them(two_runs, demo_settings):
    first, _ = two_runs
    manifest = _manifest(demo_settings)
    defects = manifest["defects"]
    duplicates = {d["file"] for d in defects if d["kind"] == "duplicate_file"}
    rejected = {d["file"] for d in defects if d["expect"] == "rejected"}
    files = first["files"]
    assert files["delivered"] == len(manifest["files"])
    assert (files["rejected"], files["duplicate_files"]) == (len(rejected), len(duplicates))
    assert files["accepted"] == len(manifest["files"]) - len(rejected) - len(duplicates)
    # the late files and corrections, and the copies of them the generator made bad (rejected) or duplicated
    late = [Path(d["file"]).with_suffix("").as_posix() for d in defects if d["kind"] in ("late_file", "correction")]
    assert files["late"] == sum(any(f["path"].startswith(stem) for stem in late) for f in manifest["files"])
    expected_quarantine = [d for d in defects if d["expect"] == "quarantine" and d["file"] not in duplicates]
    assert first["reads"]["quarantined"] == len(expected_quarantine)
    assert first["reads"]["stored_interval_reads"] > 0 and first["reads"]["lake_rows"] > 0


def test_each_day_is_settled_sf_then_r1_and_only_late_data_changes_r1(two_runs, demo_settings):
    first, _ = two_runs
    assert [(str(d["settlement_date"]), d["periods"]) for d in first["days"]] == [("2026-10-25", 50),
                                                                                 ("2026-10-26", 48)]
    late_days = {d["file"].split("_")[1] for d in _manifest(demo_settings)["defects"]
                 if d["kind"] in ("late_file", "correction")}
    for d in first["days"]:
        changed = d["settlement_date"].strftime("%Y%m%d") in late_days
        assert (d["changes"] > 0) == changed, d
        if changed:
            assert {"late_read", "estimate_replaced", "correction"} & set(d["reasons"]), d
            assert "withdrawn" not in d["reasons"], d
            assert d["r1_kwh"] == pytest.approx(d["sf_kwh"] + d["delta_kwh"], abs=0.01)
        else:
            assert d["r1_kwh"] == d["sf_kwh"]


def test_bills_cover_the_three_tariff_kinds_and_the_report_is_written(two_runs):
    first, _ = two_runs
    assert {b["kind"] for b in first["bills"]} == {"flat", "tou", "dynamic"}
    assert sum(b["accounts"] for b in first["bills"]) == first["reference"]["accounts"]
    assert all(b["total_gbp"] > 0 for b in first["bills"])
    assert first["models"]["counts"].get("error", 0) == 0 and first["models"]["counts"].get("fail", 0) == 0
    report = first["report"]
    assert (report["settlement_date"], report["run"]) == ("2026-10-25", "R1")
    assert Path(report["url"].removeprefix("file://")).read_text().startswith("<!")


def test_a_second_run_prints_the_same_numbers_and_finds_nothing_new(two_runs):
    first, second = two_runs
    for key in ("files", "reads"):
        a, b = dict(first[key]), dict(second[key])
        assert b.pop("this_run") != a.pop("this_run")
        assert a == b
    assert second["files"]["this_run"] == {"new": 0, "already_ingested": first["files"]["delivered"]
                                           - first["files"]["duplicate_files"]}
    assert second["reads"]["this_run"]["lake_reads"] == 0
    assert (first["days"], first["bills"]) == (second["days"], second["bills"])
    assert second["cleaned"] == {"first": "unchanged", "after_late_files": "unchanged"}
    assert (second["billing"]["status"], second["report"]["status"]) == ("unchanged", "unchanged")
