"""The event store on the real Kafka and Cassandra: replays change nothing, the latest version of a read wins
whatever the order of arrival, and a meter-day cut across batches is stored whole."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from meterlake import generate
from tests.streaming.stackhelp import dump, isolated, meterlake, query, store

pytestmark = [pytest.mark.stack, pytest.mark.slow]

NOW = "2025-01-01T00:00:00Z"
HEADER = "meter_point,meter_serial,register_id,read_kind,interval_start_utc,value,unit,quality,created_utc"
METER_A, METER_B = "1200023305967", "1012345678903"


@pytest.fixture
def settings(kafka_stack, cassandra_stack):
    return isolated(cassandra_stack, "store")


def _day(meter: str, value: str, created: str, periods=range(1, 49)) -> list[str]:
    """hh-csv lines of ``meter`` on 2024-06-01 (BST: period 1 starts 2024-05-31T23:00Z)."""
    lines = []
    for p in periods:
        minutes = 23 * 60 + 30 * (p - 1)
        day = "2024-05-31" if minutes < 24 * 60 else "2024-06-01"
        hour, minute = divmod(minutes % (24 * 60), 60)
        lines.append(f"{meter},E1,S,interval,{day}T{hour:02d}:{minute:02d}:00Z,{value},kWh,actual,{created}")
    return lines


def _file(tmp_path: Path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return str(path)


def _values(settings, meter: str) -> dict[int, float]:
    rows = query(settings, "SELECT values FROM {ks}.hh_sets WHERE meter_point = %s AND month = '2024-06'", meter)
    assert len(rows) == 1
    return dict(rows[0].values)


def test_a_generated_portfolio_ingested_twice_gives_identical_tables(settings, tmp_path):
    manifest = generate.generate(generate.Options(meters=20, days=3, start=generate.date(2024, 10, 25), seed=3),
                                 tmp_path / "gen")
    paths = [str(tmp_path / "gen" / f["path"]) for f in manifest["files"]]
    first = meterlake(settings, "ingest", *paths, "--now", manifest["valid_as_of"])
    store(settings)
    once = dump(settings)
    second = meterlake(settings, "ingest", *paths, "--now", manifest["valid_as_of"])
    replayed = store(settings)
    assert replayed["messages"] > 0  # the replay really went through Kafka and the writer
    assert second == first
    assert dump(settings) == once
    # one row per meter-day-register-serial of the hh-csv files' reads of known meters (counted here with csv)
    with open(tmp_path / "gen" / "registry.csv", newline="") as f:
        meters = {row["meter_point"] for row in csv.DictReader(f)}
    keys = set()
    for path in paths:
        if "/hh/" in path and "latin1" not in path:
            day = Path(path).name.split("_")[1]  # HH_<yyyymmdd>_...: one settlement day per file
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    if row["read_kind"] == "interval" and row["meter_point"] in meters and row["register_id"] != "S?":
                        keys.add((row["meter_point"], row["meter_serial"], row["register_id"], day))
        if "/lcl/" in path:  # an LCL household's file: every period of the 3 days
            with open(path, newline="") as f:
                households = {row["LCLid"] for row in csv.DictReader(f)}
            keys |= {(h, "", "S", day) for h in households for day in ("20241025", "20241026", "20241027")}
    assert len(keys) > 40
    assert len(once["hh_sets"]) == len(keys)


def test_batched_writes_store_the_same_rows_as_a_request_per_row(settings, tmp_path):
    # GIVEN a portfolio on the topics, stored once in batches (the default) and once a row per request
    manifest = generate.generate(generate.Options(meters=12, days=2, start=generate.date(2024, 3, 30), seed=5),
                                 tmp_path / "gen")
    meterlake(settings, "ingest", *[str(tmp_path / "gen" / f["path"]) for f in manifest["files"]],
              "--now", manifest["valid_as_of"])
    assert settings.store.batch_rows > 1
    batched = store(settings)
    single = settings.model_copy(update={
        "cassandra": settings.cassandra.model_copy(update={"keyspace": settings.cassandra.keyspace + "_rows"}),
        "store": settings.store.model_copy(update={"batch_rows": 1})})
    rows = store(single)
    # THEN both read every message and hold identical tables
    assert batched["messages"] == rows["messages"] > 0
    tables = dump(settings)
    assert len(tables["hh_sets"]) > 12
    assert dump(single) == tables


def test_a_correction_supersedes_in_either_order_of_arrival(settings, tmp_path):
    v1_a = _file(tmp_path, "A_v1.csv", _day(METER_A, "0.250", "2024-06-02T02:00:00Z"))
    v2_a = _file(tmp_path, "A_v2.csv", _day(METER_A, "0.300", "2024-06-03T02:00:00Z"))
    v1_b = _file(tmp_path, "B_v1.csv", _day(METER_B, "0.250", "2024-06-02T02:00:00Z"))
    v2_b = _file(tmp_path, "B_v2.csv", _day(METER_B, "0.300", "2024-06-03T02:00:00Z"))
    meterlake(settings, "ingest", v1_a, v2_a, v2_b, "--now", NOW)  # A in order; B's correction first ...
    store(settings)
    meterlake(settings, "ingest", v1_b, "--now", NOW)  # ... and B's original arrives late
    store(settings)
    assert _values(settings, METER_A) == {p: 0.3 for p in range(1, 49)}
    assert _values(settings, METER_B) == {p: 0.3 for p in range(1, 49)}
    (row,) = query(settings, "SELECT source_file FROM {ks}.hh_sets WHERE meter_point = %s AND month = '2024-06'",
                   METER_B)
    assert row.source_file == "B_v2.csv"


def test_a_correction_of_some_periods_replaces_only_those(settings, tmp_path):
    original = _file(tmp_path, "v1.csv", _day(METER_A, "0.250", "2024-06-02T02:00:00Z"))
    fix = _file(tmp_path, "v2.csv", _day(METER_A, "9.000", "2024-06-03T02:00:00Z", periods=[10, 11]))
    meterlake(settings, "ingest", original, fix, "--now", NOW)
    store(settings)
    expected = {p: 0.25 for p in range(1, 49)} | {10: 9.0, 11: 9.0}
    assert _values(settings, METER_A) == expected


def test_a_meter_day_cut_across_batches_of_an_interleaved_file_is_stored_whole(settings, tmp_path):
    a, b = _day(METER_A, "0.250", "2024-06-02T02:00:00Z"), _day(METER_B, "0.500", "2024-06-02T02:00:00Z")
    interleaved = [line for pair in zip(a, b, strict=True) for line in pair]  # period by period, both meters
    path = _file(tmp_path, "by_period.csv", interleaved)
    out = meterlake(settings, "ingest", path, "--batch-rows", "30", "--now", NOW)  # 96 reads: 4 batches
    assert out["files"][0]["reads"] == 96
    store(settings)
    assert _values(settings, METER_A) == {p: 0.25 for p in range(1, 49)}
    assert _values(settings, METER_B) == {p: 0.5 for p in range(1, 49)}


def test_a_table_of_the_old_layout_is_refused_with_what_to_do(settings):
    from meterlake import clients, keyspace
    from meterlake.errors import MeterlakeError

    ks = settings.cassandra.keyspace
    session = clients.cassandra_session(settings)
    try:
        session.execute(f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', "
                        "'replication_factor': 1}", timeout=60)
        session.execute(f"CREATE TABLE {ks}.hh_sets (meter_point text, month text, settlement_date date, "
                        "register_id text, meter_serial text, unit text, values frozen<list<double>>, "
                        "PRIMARY KEY ((meter_point, month), settlement_date, register_id, meter_serial, unit))",
                        timeout=60)
        with pytest.raises(MeterlakeError, match=f"DROP TABLE {ks}.hh_sets"):
            keyspace.ensure(session, ks, 1)
    finally:
        session.cluster.shutdown()
