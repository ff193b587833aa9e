"""`meterlake privacy erase` on the real stack: a portfolio through ingest, Kafka, the store and the mirror, a job
output, a serving table, archived files and the dbt marts; one meter erased. It is gone from Cassandra, from every
file of the lake, from the marts on the next build and from the archive; the audit record names it by pseudonym;
replaying every landed file does not bring it back; the other meters are untouched (digests before and after)."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from infra.local import stack as stack_mod
from jobs.registry import job as registry
from meterlake import clients, pseudonym
from meterlake.lake.files import open_lake
from tests.jobs.storehelp import ANSWER, digest, lake_rows, through_stack
from tests.streaming import stackhelp

pytestmark = [pytest.mark.stack, pytest.mark.slow]

VICTIM = "1908870119989"  # half-hourly reads, a consumer device, quarantined lines (the generator's seed 11)
OTHER = "2308870119993"
DAYS = (date(2024, 10, 26), date(2024, 10, 27), date(2024, 10, 28))
MARTS = ("+fct_daily_consumption", "+dim_meters")
STORE = ("hh_sets", "register_reads", "device_reads", "daily_consumption", "quarantine")


@dataclass
class Erased:
    settings: object
    landing: Path
    archive: Path
    pseudonym: str
    answer: dict
    before: dict  # the other meters' state before the erasure
    after: dict
    marts_before: dict
    marts_after: dict
    archived: list[str]


def _build_marts(settings) -> dict:
    from tests.dbt.test_dbt_project import cli_build

    answer = cli_build(settings, "--select", MARTS[0], "--select", MARTS[1], "--exclude", "resource_type:test",
                       "--exclude", "resource_type:unit_test")
    assert answer["success"], answer["error"]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return {"daily": con.execute("SELECT meter_point, settlement_date, round(consumption_kwh, 6), periods_read "
                                     "FROM fct_daily_consumption ORDER BY ALL").fetchall(),
                "meters": con.execute("SELECT meter_point FROM dim_meters ORDER BY ALL").fetchall()}
    finally:
        con.close()


def _store_rows(settings) -> dict[str, list[tuple]]:
    return stackhelp.dump(settings, STORE)


def _without(rows: dict[str, list[tuple]], *names: str) -> dict[str, list[tuple]]:
    """Rows that do not mention any of ``names``."""
    return {t: [r for r in rs if not any(n in repr(r) for n in names)] for t, rs in rows.items()}


def _state(settings, names: tuple[str, ...]) -> dict:
    """What the erasure must leave as it was: the other meters' live reads per date, their Cassandra rows, and
    the registry output's other rows."""
    from jobs import lakeio

    registry_rows = lakeio.read_output(open_lake(settings), registry.PATH).to_pylist()
    return {"lake": {d: digest([r for r in lake_rows(settings, d, ANSWER) if r[0] not in names]) for d in DAYS},
            "store": digest(sorted(_without(_store_rows(settings), *names).items())),
            "registry": sorted(repr(r) for r in registry_rows if r["meter_point"] not in names)}


def _seed_serving(settings) -> None:
    """daily_consumption rows of two meters, as `job serve` writes them (its own test covers the job)."""
    session = clients.cassandra_session(settings)
    try:
        for meter in (VICTIM, OTHER):
            session.execute(f"INSERT INTO {settings.cassandra.keyspace}.daily_consumption (meter_point, month, "
                            "settlement_date, register_id, unit, consumption, periods) VALUES (%s, '2024-10', "
                            "'2024-10-26', '', 'kWh', 12.5, 48)", (meter,))
    finally:
        session.cluster.shutdown()


@pytest.fixture(scope="module")
def erased(kafka_stack, cassandra_stack, tmp_path_factory) -> Erased:
    base = tmp_path_factory.mktemp("privacy")
    settings = stackhelp.isolated(stack_mod.remembered(cassandra_stack), "privacy")
    settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={
        "warehouse": str(base / "warehouse" / "meterlake.duckdb")})})
    through_stack(settings, base)
    registry.run(settings, base / "landing" / "registry.csv")
    _seed_serving(settings)
    # the landed files, archived as `ingest watch` keeps them (by processing day)
    archive = Path(settings.ingest.archive_dir) / "raw" / "2024" / "10" / "31"
    shutil.copytree(base / "landing", archive)
    names = pseudonym.for_settings(settings)
    victim = names.one(VICTIM)
    others = (VICTIM, victim)
    marts_before = _build_marts(settings)
    before = _state(settings, others)
    answer = stackhelp.meterlake(settings, "privacy", "erase", "--meter-point", VICTIM, "--reason", "test SAR-1")
    after = _state(settings, others)
    marts_after = _build_marts(settings)
    archived = sorted(str(p.relative_to(archive)) for p in archive.rglob("*") if p.is_file())
    return Erased(settings, base / "landing", archive, victim, answer, before, after, marts_before, marts_after,
                  archived)


def test_the_answer_says_what_went_where(erased):
    a = erased.answer
    assert set(a) == {"meter_point", "reason", "erased_at", "record", "store", "lake", "outputs", "archive"}
    assert a["meter_point"] == erased.pseudonym and a["reason"] == "test SAR-1"
    assert a["store"]["hh_sets"] > 0 and a["store"]["device_reads"] > 0 and a["store"]["daily_consumption"] == 1
    assert a["store"]["quarantine"] > 0  # its quarantined lines hold its meter point in clear
    assert {d["settlement_date"] for d in a["lake"]["dates"]} >= {d.isoformat() for d in DAYS}
    assert {o["output"] for o in a["outputs"]} == {"registry"}
    assert a["archive"]["deleted"] and len(a["archive"]["naming"]) > 0


def test_it_is_gone_from_cassandra(erased):
    rows = _store_rows(erased.settings)
    assert {t: [r for r in rs if VICTIM in repr(r)] for t, rs in rows.items()} == {t: [] for t in STORE}
    assert rows["hh_sets"] and rows["daily_consumption"]  # the others' rows are still there


def _lake_file_meters(settings) -> set[str]:
    """The meter points of every Parquet file of the lake: live, retired or superseded."""
    seen = set()
    for path in Path(settings.lake_url).rglob("*.parquet"):
        table = pq.read_table(path)
        if "meter_point" in table.column_names:
            seen |= set(pc.unique(table["meter_point"]).to_pylist())
    return seen


def test_no_file_of_the_lake_holds_it(erased):
    lake = Path(erased.settings.lake_url)
    seen = _lake_file_meters(erased.settings)
    assert erased.pseudonym not in seen and len(seen) > 1
    assert VICTIM.encode() not in b"".join(p.read_bytes() for p in lake.rglob("*") if p.is_file())


def test_the_marts_lose_it_on_the_next_build(erased):
    def mentions(marts):
        return [r for rows in marts.values() for r in rows if r[0] == erased.pseudonym]

    assert mentions(erased.marts_before) and not mentions(erased.marts_after)
    others = {k: [r for r in rows if r[0] != erased.pseudonym] for k, rows in erased.marts_before.items()}
    assert erased.marts_after == others


def test_the_other_meters_are_untouched(erased):
    assert erased.after == erased.before


def test_the_archived_files_naming_it_are_deleted_and_the_others_kept(erased):
    naming = {p for p in (str(q.relative_to(erased.landing)) for q in erased.landing.rglob("*") if q.is_file())
              if VICTIM in (erased.landing / p).read_bytes().decode("latin-1")}
    assert naming and not naming & set(erased.archived)
    assert "d0010/D0010_20241028_000003.uff" in erased.archived


def test_the_audit_record_names_it_by_pseudonym_only(erased):
    from meterlake import privacy

    lake = open_lake(erased.settings)
    records = privacy.records(lake)
    assert [r["removed"]["status"] for r in records] == ["listed", "erased"]
    assert {r["meter_point"] for r in records} == {erased.pseudonym}
    assert records[1]["removed"]["store"] == erased.answer["store"]
    text = json.dumps(records) + "".join(i.base_name for i in lake.list_dir(privacy.ERASURES_DIR))
    assert VICTIM not in text
    assert privacy.erased_pseudonyms(lake) == {erased.pseudonym}


def test_replaying_the_landed_files_or_the_topics_does_not_bring_it_back(erased):
    from streaming.ingest.publish import ingest_paths
    from streaming.mirror import consumer as mirror
    from streaming.store import consumer as store

    settings = erased.settings
    # the landed files ingested again: its reads (and its quarantined lines) are dropped
    files = sorted(p for p in erased.landing.rglob("*") if p.is_file() and p.suffix in {".csv", ".uff", ".jsonl"})
    results = ingest_paths(files, settings, now=datetime.fromisoformat("2024-10-31T01:00:00+00:00"))
    assert sum(r.reasons.get("erased_meter", 0) for r in results) > 0
    stackhelp.store(settings)
    mirror.run(settings, until_caught_up=True)
    # and the topics, which still hold its reads from before the erasure, consumed again from the beginning
    replayed = store.run(settings, until_caught_up=True, group=f"store-replay-{settings.cassandra.keyspace}",
                         max_seconds=300)
    remirrored = mirror.run(settings.model_copy(update={"mirror": settings.mirror.model_copy(update={
        "group_id": f"mirror-replay-{settings.cassandra.keyspace}"})}), until_caught_up=True)
    assert replayed.messages > 0 and remirrored.messages > 0  # the topics, consumed again from the start
    rows = _store_rows(settings)
    assert {t: [r for r in rs if VICTIM in repr(r)] for t, rs in rows.items()} == {t: [] for t in STORE}
    assert erased.pseudonym not in _lake_file_meters(settings)
    assert _state(settings, (VICTIM, erased.pseudonym)) == erased.before
