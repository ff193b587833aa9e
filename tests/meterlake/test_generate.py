"""The synthetic portfolio: deterministic bytes, calendar-true days, every injected defect caught."""
from __future__ import annotations

import collections
import csv
import json
from datetime import date, datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from meterlake import ids
from meterlake.cli import cli
from meterlake.generate import DEFECTS, Options, generate
from streaming.ingest import FileRejected, validated_file

# 14 meters in chunks of 8 (two hh-csv files a day), 4 days from 2024-10-25 (2024-10-27 has 50 periods)
OPTIONS = Options(meters=14, days=4, start=date(2024, 10, 25), seed=7, meters_per_file=8)


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    out = tmp_path_factory.mktemp("portfolio")
    return out, generate(OPTIONS, out)


@pytest.fixture(scope="module")
def ingested(portfolio):
    """Every generated file validated as of the manifest's valid_as_of: reads, quarantine, result, or the
    rejection."""
    out, manifest = portfolio
    now = datetime.fromisoformat(manifest["valid_as_of"])
    results = {}
    for entry in manifest["files"]:
        try:
            with validated_file(out / entry["path"], now=now) as validated:
                results[entry["path"]] = {"reads": validated.reads_table(), "result": validated.result,
                                          "quarantine": validated.quarantine_table().to_pylist()}
        except FileRejected as exc:
            results[entry["path"]] = {"rejected": exc.reason, "result": exc.result}
    return results


def test_same_seed_same_bytes_other_seed_other_bytes(portfolio, tmp_path):
    out, _ = portfolio
    again = generate(OPTIONS, tmp_path / "again")
    assert _bytes(tmp_path / "again") == _bytes(out)
    assert again == json.loads((out / "manifest.json").read_text())
    other = Options(meters=14, days=4, start=date(2024, 10, 25), seed=8, meters_per_file=8)
    generate(other, tmp_path / "other")
    theirs, ours = _bytes(tmp_path / "other"), _bytes(out)
    assert theirs["hh/HH_20241025_0000_v1.csv"] != ours["hh/HH_20241025_0000_v1.csv"]
    assert theirs["registry.csv"] != ours["registry.csv"]


def test_the_default_defects_are_all_injected(portfolio):
    _, manifest = portfolio
    assert {d["kind"] for d in manifest["defects"]} == set(DEFECTS)


def test_every_record_and_file_defect_is_caught_and_nothing_else_is(portfolio, ingested):
    _, manifest = portfolio
    expected_quarantine = {(d["file"], d["line"], d["reason"]) for d in manifest["defects"]
                           if d["expect"] == "quarantine"}
    expected_duplicates = collections.Counter(d["file"] for d in manifest["defects"]
                                              if d["expect"] == "duplicate")
    expected_rejected = {d["file"]: d["reason"] for d in manifest["defects"] if d["expect"] == "rejected"}
    quarantine = {(path, q["source_line"], q["reason"]) for path, r in ingested.items()
                  for q in r.get("quarantine", [])}
    duplicates = collections.Counter({path: r["result"].duplicates for path, r in ingested.items()
                                      if r["result"].duplicates})
    rejected = {path: r["rejected"] for path, r in ingested.items() if "rejected" in r}
    assert quarantine == expected_quarantine
    assert duplicates == expected_duplicates
    assert rejected == expected_rejected
    formats = {entry["path"]: entry["format"] for entry in manifest["files"]}
    assert all(r["result"].format == formats[path] for path, r in ingested.items() if "rejected" not in r)


def _defects(manifest: dict, kind: str) -> list[dict]:
    found = [d for d in manifest["defects"] if d["kind"] == kind]
    assert found, kind
    return found


def _arrival(manifest: dict, path: str) -> int:
    return next(f["arrival"] for f in manifest["files"] if f["path"] == path)


def test_corrections_are_later_versions_and_one_original_arrives_after_its_correction(portfolio, ingested):
    _, manifest = portfolio
    corrections = _defects(manifest, "correction")
    assert sorted(d["arrives"] for d in corrections) == ["after_original", "before_original"]
    for d in corrections:
        v1, v2 = ingested[d["supersedes"]]["reads"], ingested[d["file"]]["reads"]
        assert pc.min(v2["source_version"]).as_py() > pc.max(v1["source_version"]).as_py()
        key = ["meter_point", "interval_start_utc"]
        joined = v2.select([*key, "value"]).join(v1.select([*key, "value"]), key, right_suffix="_v1")
        assert joined.num_rows == v2.num_rows > 0  # the correction restates reads the original had
        assert pc.any(pc.not_equal(joined["value"], joined["value_v1"])).as_py()
        before = _arrival(manifest, d["file"]) < _arrival(manifest, d["supersedes"])
        assert before == (d["arrives"] == "before_original")


def test_a_duplicate_file_has_the_same_file_id_and_reads(portfolio, ingested):
    _, manifest = portfolio
    for d in _defects(manifest, "duplicate_file"):
        copy, original = ingested[d["file"]], ingested[d["duplicate_of"]]
        assert copy["result"].file_id == original["result"].file_id
        same = ["source_file"]
        assert copy["reads"].drop_columns(same).equals(original["reads"].drop_columns(same))


def test_a_late_file_arrives_after_later_days_files(portfolio):
    _, manifest = portfolio
    for d in _defects(manifest, "late_file"):
        late = next(f for f in manifest["files"] if f["path"] == d["file"])
        later = [f for f in manifest["files"] if f["format"] == "hh-csv" and f["day"] > late["day"]]
        assert later and all(f["arrival"] < late["arrival"] for f in later)


def test_missing_reads_are_absent(portfolio, ingested):
    _, manifest = portfolio
    for d in _defects(manifest, "missing_reads"):
        reads = ingested[d["file"]]["reads"].to_pylist()
        starts = {r["interval_start_utc"].strftime("%Y-%m-%dT%H:%M:%SZ") for r in reads
                  if r["meter_point"] == d["meter_point"]}
        assert len(starts) > 40 and not starts & set(d["interval_starts"])


def test_a_register_reset_is_a_valid_read_below_the_previous_one(portfolio, ingested):
    _, manifest = portfolio
    for d in _defects(manifest, "register_reset"):
        reads = ingested[d["file"]]["reads"].to_pylist()
        (read,) = [r for r in reads if r["source_line"] == d["line"]]
        assert (read["meter_point"], read["value"]) == (d["meter_point"], 0.0)
        assert d["previous_value"] > 0


def test_a_meter_exchange_reads_both_meters_and_the_new_serial_follows(portfolio, ingested):
    _, manifest = portfolio
    for d in _defects(manifest, "meter_exchange"):
        reads = [r for r in ingested[d["file"]]["reads"].to_pylist() if r["meter_point"] == d["meter_point"]]
        assert sorted(r["source_line"] for r in reads) == d["lines"]
        assert {r["meter_serial"] for r in reads} == {d["old_serial"], d["new_serial"]}
        new_meter = [r["value"] for r in reads if r["meter_serial"] == d["new_serial"]]
        assert new_meter == [0.0] * (len(reads) // 2)
        from_day = d["day"].replace("-", "")
        serials = {r["meter_serial"] for path, result in ingested.items()
                   if path.startswith("hh/") and "reads" in result and path.split("_")[1] >= from_day
                   for r in result["reads"].to_pylist() if r["meter_point"] == d["meter_point"]}
        assert serials == {d["new_serial"]}


def test_settlement_days_have_the_calendars_periods(ingested):
    # 2024-10-27 (clocks go back): 50 periods for every clean single-register meter in the file
    reads = ingested["hh/HH_20241027_0000_v1.csv"]["reads"]
    by_meter = collections.defaultdict(list)
    for r in reads.to_pylist():
        if r["read_kind"] == "interval" and r["register_id"] == "S":
            by_meter[r["meter_point"]].append(r["settlement_period"])
    assert by_meter and all(sorted(p) == list(range(1, 51)) for p in by_meter.values())


def test_a_spring_day_has_46_periods_and_economy7_splits_night_and_day(tmp_path):
    options = Options(meters=6, days=1, start=date(2024, 3, 31), seed=1, economy7_share=1.0, gas_share=0.0,
                      lcl_meters=0, device_meters=0, defects={})
    generate(options, tmp_path)
    with validated_file(tmp_path / "hh" / "HH_20240331_0000_v1.csv", now=datetime.fromisoformat(
            "2024-04-05T00:00:00+00:00")) as validated:
        reads = validated.reads_table().to_pylist()
    periods = collections.defaultdict(dict)
    for r in reads:
        periods[r["meter_point"]][r["settlement_period"]] = r["register_id"]
    assert len(periods) == 6
    for registers in periods.values():
        assert sorted(registers) == list(range(1, 47))
        # SSC 0151's night is 00:30-07:30 GMT: 00:30-01:00 GMT is period 2, then 02:00-08:30 BST (after the
        # skipped hour) periods 3-15
        assert [p for p, reg in sorted(registers.items()) if reg == "NT"] == list(range(2, 16))


def test_no_defects_means_nothing_quarantined_or_rejected(tmp_path):
    options = Options(meters=5, days=2, start=date(2024, 1, 1), seed=3, defects={})
    manifest = generate(options, tmp_path)
    assert manifest["defects"] == []
    now = datetime.fromisoformat(manifest["valid_as_of"])
    for entry in manifest["files"]:
        with validated_file(tmp_path / entry["path"], now=now) as validated:
            assert (validated.result.quarantined, validated.result.duplicates) == (0, 0), entry


def test_the_registry_lists_every_meter_with_settlement_attributes(portfolio):
    out, manifest = portfolio
    with open(out / "registry.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["meter_point", "gsp_group", "supplier", "profile_class", "ssc", "llfc",
                             "effective_from"]
    assert len(rows) == 14 == manifest["counts"]["meters"]
    for row in rows:
        if ids.fuel_of(row["meter_point"]) == "electricity":
            assert ids.is_valid_mpan_core(row["meter_point"])
            assert (row["profile_class"], row["ssc"]) in {("1", "0393"), ("2", "0151")}
            assert ids.DISTRIBUTOR_GSP_GROUP[row["meter_point"][:2]] == row["gsp_group"]
        else:
            assert ids.is_valid_mprn(row["meter_point"]) and row["profile_class"] == ""
        assert row["effective_from"] == "2024-10-25"


def test_cli_generate_then_dry_run_ingest(tmp_path):
    runner = CliRunner()
    out = tmp_path / "p"
    result = runner.invoke(cli, ["generate", "--meters", "6", "--days", "2", "--start", "2024-06-01",
                                 "--seed", "5", "--out", str(out), "--no-defects",
                                 "--defect", "trailer_count=1", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["defects"] == {"trailer_count": 1}
    manifest = json.loads((out / "manifest.json").read_text())
    paths = [str(out / f["path"]) for f in manifest["files"]]
    result = runner.invoke(cli, ["ingest", *paths, "--dry-run", "--now", answer["valid_as_of"], "--json"])
    files = json.loads(result.stdout)["files"]
    assert [f["status"] for f in files].count("rejected") == 1
    assert all(f["quarantined"] == 0 for f in files)
    bad = runner.invoke(cli, ["generate", "--out", str(out), "--defect", "nonsense=1"])
    assert bad.exit_code == 2


def test_a_days_interval_reads_pack_into_sets_of_the_days_length(ingested):
    from meterlake import schema

    reads = ingested["hh/HH_20241028_0000_v1.csv"]["reads"]
    sets = schema.pack(reads.filter(pc.equal(reads["read_kind"], "interval")))
    assert sets and {s["periods"] for s in sets} == {48}
    single = [s for s in sets if s["register_id"] == "S"]
    assert single and all(None not in s["values"] for s in single)
    economy7 = [s for s in sets if s["register_id"] in ("DY", "NT")]
    assert economy7 and all(s["values"].count(None) in (34, 14) for s in economy7)  # NT: 14, DY: 34 periods
