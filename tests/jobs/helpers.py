"""Literal reads for the job tests: lake rows (the read model plus Kafka columns) of one meter at a time."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from jobs.lakeio import lake_spark_schema
from meterlake import calendar as cal
from meterlake import schema
from meterlake.lake.schema import LAKE_SCHEMA
from streaming.mirror.convert import with_kafka

V1 = 1_893_456_000_000_000  # a source version: 2030-01-01T00:00:00Z, after every test day
HOUR_US = 3_600_000_000
MP = "1200000000014"
MP2 = "1200000000025"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def starts(day: date, periods: list[int] | None = None) -> list[datetime]:
    """UTC starts of ``periods`` (default all) of settlement date ``day``."""
    every = dict(cal.periods(day))
    return [every[p] for p in (periods if periods is not None else sorted(every))]


def version_at(instant: datetime) -> int:
    return schema.epoch_us(instant)


def reads(meter: str, at: list[datetime], values: list[float] | float, *, version: int = V1, kind: str = "interval",
          register: str | None = "S", serial: str | None = "E1", unit: str = "kWh", quality: str = "actual",
          source_file: str = "file-1", offset: int = 0, fuel: str = "electricity") -> pa.Table:
    values = values if isinstance(values, list) else [values] * len(at)
    batch = schema.build_reads(meter_point=meter, meter_serial=serial, fuel=fuel, register_id=register,
                               read_kind=kind, interval_start_utc=at, value=values, unit=unit, quality=quality,
                               source_file=source_file, source_line=list(range(1, len(at) + 1)),
                               source_version=version)
    return with_kafka(pa.Table.from_batches([batch]), "meter-reads", 0, offset)


def day_of(meter: str, day: date, value: float = 0.5, *, skip: tuple[int, ...] = (), **kw) -> pa.Table:
    """One interval read in every period of ``day`` except ``skip``."""
    periods = [p for p, _ in cal.periods(day) if p not in skip]
    return reads(meter, starts(day, periods), value, **kw)


def frame(spark, *tables: pa.Table):
    """A Spark DataFrame of lake rows with the lake's Spark schema."""
    table = pa.concat_tables(tables) if tables else LAKE_SCHEMA.empty_table()
    rows = [tuple(r.values()) for r in table.to_pylist()]
    return spark.createDataFrame(rows, lake_spark_schema())


def after(day: date, hours: float) -> int:
    """The source version of a file created ``hours`` after the end of settlement date ``day``."""
    return version_at(cal.day_bounds(day)[1] + timedelta(hours=hours))


def publish_to_lake(lake, root, paths, now: datetime, pseudonyms, *, topic: str = "meter-reads",
                    first_offset: int = 0) -> int:
    """Ingest files and write their reads into ``lake`` as the mirror does (identifiers pseudonymised, one part
    file per file and date, named by a made-up Kafka offset); rejected files are skipped. Returns the next free
    offset."""
    from meterlake.lake import layout
    from streaming.ingest.common import FileRejected
    from streaming.ingest.pipeline import validated_file
    from streaming.mirror.convert import split_by_date, stamp

    offset = first_offset
    for rel in paths:
        try:
            with validated_file(root / rel, now=now) as v:
                table = v.reads_table()
        except FileRejected:
            continue
        rows = with_kafka(stamp(pseudonyms.table(table)), topic, 0, offset)
        for day, part in split_by_date(rows):
            lake.write_parquet(f"{layout.date_dir(day)}/{layout.part_name(topic, 0, offset, offset)}", part)
        offset += 1
    return offset


def write_lake_reads(lake, table: pa.Table, offset: int, topic: str = "meter-reads") -> None:
    """Literal lake rows (from :func:`reads`) into ``lake`` as one mirror part file per date at ``offset``."""
    from meterlake.lake import layout
    from streaming.mirror.convert import split_by_date

    table = table.set_column(table.schema.get_field_index("kafka_offset"), LAKE_SCHEMA.field("kafka_offset"),
                             pa.array([offset] * table.num_rows, pa.int64()))
    for day, part in split_by_date(table):
        lake.write_parquet(f"{layout.date_dir(day)}/{layout.part_name(topic, 0, offset, offset)}", part)


def hdfs_lake_settings(hdfs_stack, folder: str):
    """Settings of a new, empty lake on the running test HDFS, under ``/<folder>/<random>``."""
    import uuid

    from infra.local import hdfs
    from infra.local import stack as stack_mod

    settings = stack_mod.remembered(hdfs_stack)
    url = f"{hdfs.namenode_uri(stack_mod.context(settings))}/{folder}/{uuid.uuid4().hex[:8]}"
    return settings.model_copy(update={"paths": settings.paths.model_copy(update={"lake": url})})


def write_two_meters_with_a_correction(lake, pseudonyms, day: date, a: str, b: str) -> tuple[str, str]:
    """Meter ``a``: every half-hour of ``day`` 0.5 kWh, and period 20 corrected to 0.75 kWh after SF; meter
    ``b``: 0.25 kWh without periods 10 and 11. Written under their pseudonyms, as the mirror writes them; returns
    the pseudonyms."""
    pa_, pb = pseudonyms.one(a), pseudonyms.one(b)
    write_lake_reads(lake, day_of(pa_, day, 0.5, version=after(day, 2)), offset=0)
    write_lake_reads(lake, day_of(pb, day, 0.25, skip=(10, 11), version=after(day, 2)), offset=1)
    write_lake_reads(lake, day_of(pa_, day, 0.75, version=after(day, 24 * 10)).slice(19, 1), offset=2)
    return pa_, pb
#: clean, settle SF (twice), the SF->R1 diff and quality of one day in one Spark application of its own process
#: (``python -c JOBS_APP <master> <day>``, the settings from the environment); prints their answers as JSON
JOBS_APP = """
import json, sys
from datetime import date
from meterlake import config
from meterlake.spark import build_spark
from jobs.clean import job as clean
from jobs.quality import job as quality
from jobs.settle import job as settle
from jobs.settle_diff import job as settle_diff

settings = config.discovered(config.load(None))
lean = settings.model_copy(update={"spark": settings.spark.model_copy(update={"with_cassandra_connector": False})})
spark = build_spark("meterlake-jobs-on-cluster", lean, master=sys.argv[1], conf={"spark.cores.max": "2"})
day = date.fromisoformat(sys.argv[2])
out = {"master": spark.sparkContext.master,
       "clean": clean.run(settings, [day], spark=spark),
       "settle": settle.run(settings, day, "SF", spark=spark),
       "again": settle.run(settings, day, "SF", spark=spark),
       "diff": settle_diff.run(settings, day, "SF", "R1", spark=spark),
       "quality": quality.run(settings, [day], spark=spark)}
executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
out["executors"] = executors
spark.stop()
print(json.dumps(out, default=str))
"""


def check_two_meters_jobs(answers: dict) -> None:
    """:data:`JOBS_APP`'s answers for a day of :func:`write_two_meters_with_a_correction` (a 50-period day)."""
    import pytest

    assert answers["clean"]["status"] == "cleaned"
    sf = answers["settle"]
    assert (sf["status"], sf["totals"]["periods"]) == ("settled", 50)
    assert sf["totals"]["consumption_kwh"] == pytest.approx(50 * 0.5 + 50 * 0.25)
    assert sf["totals"]["estimated_kwh"] == pytest.approx(2 * 0.25)  # B's periods 10 and 11 interpolated
    assert (answers["again"]["status"], answers["again"]["digest"]) == ("unchanged", sf["digest"])
    assert answers["diff"]["reasons"]["correction"] == 1 and answers["diff"]["changes"] == 1
    assert answers["quality"]["status"] == "measured"


def arrive_late(lake, day: date, new_meter: str, version: int) -> dict:
    """Late data for ``day``, both sources created at ``version``: a correction (+1 kWh) of one read of period 20,
    and ``new_meter``'s (a lake pseudonym) whole day at 0.1 kWh a half-hour. Returns the corrected read's row."""
    import duckdb

    listed = ", ".join(f"'{f.path}'" for f in lake.live_files(day))
    corrected = duckdb.connect().execute(f"""
        SELECT * FROM read_parquet([{listed}]) WHERE read_kind = 'interval' AND settlement_period = 20
        ORDER BY meter_point, source_version DESC LIMIT 1""").fetchdf().to_dict("records")[0]
    fix = reads(corrected["meter_point"], [corrected["interval_start_utc"]], corrected["value"] + 1.0,
                serial=corrected["meter_serial"], register=corrected["register_id"], version=version)
    write_lake_reads(lake, fix, offset=9000)
    write_lake_reads(lake, day_of(new_meter, day, 0.1, version=version), offset=9001)
    return corrected
