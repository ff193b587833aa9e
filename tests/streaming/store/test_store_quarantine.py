"""Every defect the generator injects ends where it should: record-level ones and rejected files in quarantine
(the topic and, after `store run`, the Cassandra table) with their reason; exact duplicates counted, not stored."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from meterlake import generate, schema
from tests.streaming.stackhelp import consume, isolated, meterlake, query, store

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def test_every_defect_of_the_manifest_ends_in_quarantine_with_its_reason(kafka_stack, cassandra_stack, tmp_path):
    settings = isolated(cassandra_stack, "defects")
    manifest = generate.generate(generate.Options(meters=20, days=3, start=generate.date(2024, 10, 25), seed=5),
                                 tmp_path / "gen")
    files = [str(tmp_path / "gen" / f["path"]) for f in manifest["files"]]
    out = meterlake(settings, "ingest", *files, "--now", manifest["valid_as_of"])
    store(settings)

    def name(defect: dict) -> str:
        return Path(defect["file"]).name

    expected = {(name(d), d["line"] if d["expect"] == "quarantine" else None, d["reason"])
                for d in manifest["defects"] if d["expect"] in ("quarantine", "rejected")}
    assert {d["kind"] for d in manifest["defects"] if d["expect"] in ("quarantine", "rejected")} == {
        k for k, (expect, _) in generate.DEFECTS.items() if expect in ("quarantine", "rejected")}  # all placed
    on_topic = {(p["source_file"], p["source_line"], p["reason"])
                for r in consume(settings, settings.kafka.quarantine_topic)
                for p in schema.from_ipc_bytes(r.value).to_pylist()}
    in_table = {(r.source_file, None if r.source_line == -1 else r.source_line, r.reason)
                for r in query(settings, "SELECT source_file, source_line, reason, detail FROM {ks}.quarantine")}
    assert on_topic == expected
    assert in_table == expected
    details = query(settings, "SELECT detail FROM {ks}.quarantine")
    assert all(r.detail for r in details)  # a clear reason: every record says what was wrong
    # exact duplicate lines: counted per file, dropped, never quarantined
    duplicates = Counter(name(d) for d in manifest["defects"] if d["expect"] == "duplicate")
    counted = {Path(f["path"]).name: f["duplicates"] for f in out["files"]}
    assert duplicates and all(counted[file] >= n for file, n in duplicates.items())
    rejected = {Path(f["path"]).name: f["status"] for f in out["files"]}
    assert {n for n, s in rejected.items() if s == "rejected"} == {
        name(d) for d in manifest["defects"] if d["expect"] == "rejected"}
