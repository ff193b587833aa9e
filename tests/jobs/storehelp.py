"""A small portfolio through the real stack (ingest -> Kafka -> store and mirror), for the jobs that touch
Cassandra (backfill, reconcile, serve), and digests of the lake's content per settlement date."""
from __future__ import annotations

import hashlib
from datetime import date, datetime

import pytest

from infra.local import stack as stack_mod
from meterlake.generate import Options, generate
from meterlake.lake.files import open_lake
from meterlake.lake.schema import READ_KEY
from tests.streaming import stackhelp

START = date(2024, 10, 26)  # three days: the 27th is the autumn clock change (50 periods)
DAYS = 3
#: a live read's answer: its key, where it sits, and its live version's value
ANSWER = (*READ_KEY, "settlement_date", "settlement_period", "value", "quality", "source_version")
ROW = ANSWER + ("fuel", "source_file", "source_line", "file_id", "batch_id")


def through_stack(settings, tmp_path) -> dict:
    """Generate 6 meters x 3 days, ingest them, store them in Cassandra and mirror them into the lake.
    Returns the generator's manifest."""
    from streaming.ingest.publish import ingest_paths
    from streaming.mirror import consumer as mirror

    manifest = generate(Options(meters=6, days=DAYS, start=START, seed=11, meters_per_file=3, lcl_meters=0,
                                device_meters=1), tmp_path / "landing")
    files = sorted(p for p in (tmp_path / "landing").rglob("*") if p.is_file()
                   and p.suffix in {".csv", ".uff", ".jsonl"})
    ingest_paths(files, settings, now=datetime.fromisoformat(manifest["valid_as_of"]))
    stackhelp.store(settings)
    mirror.run(settings, until_caught_up=True)
    return manifest


def lake_rows(settings, day: date, columns=ROW, view: str = "reads") -> list[tuple]:
    """The ``columns`` of the lake's ``reads`` (live versions) or ``reads_all`` view on ``day``, sorted."""
    from streaming.mirror.query import connect

    con = connect(open_lake(settings), [day])
    try:
        return con.execute(f"SELECT {', '.join(columns)} FROM {view} WHERE read_kind <> 'device' "
                           f"ORDER BY ALL").fetchall()
    finally:
        con.close()


def digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture(scope="session")
def stored(kafka_stack, cassandra_stack, tmp_path_factory):
    """Settings (topics, keyspace and lake of their own) after the portfolio went through ingest, store and mirror
    (:func:`through_stack`), once per session: import it into a test module to use it."""
    settings = stackhelp.isolated(stack_mod.remembered(cassandra_stack), "storelake")
    through_stack(settings, tmp_path_factory.mktemp("storelake"))
    return settings
