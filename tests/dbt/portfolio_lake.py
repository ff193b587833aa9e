"""A small generated portfolio written into a lake as the mirror writes it, with the jobs' outputs beside it:
the input of the dbt tests, the notebook tests and the dbt benchmark.

Two stretches of days, so the lake has both clock changes: 25-28 October 2024 (the 27th has 50 periods) and
29-31 March 2025 (the 30th has 46). The registry is loaded, the clock-change days cleaned and measured (the
autumn day twice), the autumn day billed and settled twice (SF, then R1 after a late correction) with the diff
between them.

Run on its own (a lake to try the dbt project on): ``python -m tests.dbt.portfolio_lake build/dev-lake``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

AUTUMN = date(2024, 10, 27)
SPRING = date(2025, 3, 30)
STRETCHES = ((date(2024, 10, 25), 4), (date(2025, 3, 29), 3))
METERS = 16


@dataclass(frozen=True)
class PortfolioLake:
    settings: object  # meterlake.config.Settings pointing at the lake
    lake: str
    portfolio: Path


@dataclass(frozen=True)
class Built:
    settings: object
    answer: dict  # the `meterlake models build --json` object


def lake_settings(base: Path):
    from meterlake import config

    base.mkdir(parents=True, exist_ok=True)
    key = base / "lake.key"
    if not key.exists():
        key.write_text("a key of the lake's pseudonyms, for these tests only\n")
    s = config.load(None)
    return s.model_copy(update={
        "paths": s.paths.model_copy(update={"state_dir": base / "state", "lake": str(base / "lake"),
                                            "warehouse": str(base / "warehouse" / "meterlake.duckdb")}),
        "lake": s.lake.model_copy(update={"pseudonym_key_file": str(key)}),
        "spark": s.spark.model_copy(update={"master": "local[2]", "shuffle_partitions": 2}),
    })


def write_reads(settings, portfolio: Path) -> None:
    """Generate the two stretches and publish their files into the lake; load the registry."""
    from jobs.registry import job as registry
    from meterlake import pseudonym
    from meterlake.generate import Options, generate
    from meterlake.lake.files import open_lake
    from tests.jobs.helpers import publish_to_lake

    lake = open_lake(settings)
    offset = 0
    for start, days in STRETCHES:
        out = portfolio / start.isoformat()
        manifest = generate(Options(meters=METERS, days=days, start=start, seed=5, meters_per_file=8,
                                    lcl_meters=0, device_meters=0), out)
        now = datetime.fromisoformat(manifest["valid_as_of"])
        offset = publish_to_lake(lake, out, [f["path"] for f in manifest["files"]], now,
                                 pseudonym.for_settings(settings), first_offset=offset)
        registry.run(settings, out / "registry.csv")


MDD = Path(__file__).resolve().parents[1] / "meterlake" / "data" / "mdd_tiny"


def run_jobs(settings, spark, portfolio: Path) -> None:
    """clean and quality for the two clock-change days (the jobs are the slow part of the fixture), quality of
    the autumn day run again (two versions of its output in the lake: the superseded one stays for the grace
    period); SF of the autumn day, a late correction, R1 and the SF→R1 diff; the autumn day billed (the
    generator's flat, Economy 7 and dynamic accounts)."""
    from jobs.bill import inputs
    from jobs.bill import job as bill
    from jobs.clean import job as clean
    from jobs.quality import job as quality
    from jobs.settle import job as settle
    from jobs.settle_diff import job as settle_diff

    clean.run(settings, [AUTUMN, SPRING], spark=spark)
    quality.run(settings, [AUTUMN, SPRING], spark=spark)
    quality.run(settings, [AUTUMN], spark=spark, force=True)
    generated = portfolio / STRETCHES[0][0].isoformat()
    inputs.load_mdd(settings, MDD)
    inputs.load_tariffs(settings, [generated / "tariffs.toml"])
    inputs.load_accounts(settings, generated / "accounts.csv")
    bill.run(settings, AUTUMN, AUTUMN + timedelta(days=1), spark=spark)
    settle.run(settings, AUTUMN, "SF", spark=spark)
    add_late_correction(settings)
    settle.run(settings, AUTUMN, "R1", spark=spark)
    settle_diff.run(settings, AUTUMN, "SF", "R1", spark=spark)


def add_late_correction(settings, day: date = AUTUMN, kwh: float = 1.0, offset: int = 90_000) -> dict:
    """A later version (created 10 days after ``day``) of one interval read of ``day``, ``kwh`` more: one new
    part file in the date's directory. Returns the corrected read's row."""
    import duckdb

    from meterlake.lake.files import open_lake
    from tests.jobs.helpers import after, reads, write_lake_reads

    lake = open_lake(settings)
    listed = ", ".join(f"'{f.path}'" for f in lake.live_files(day))
    row = duckdb.connect().execute(f"""
        SELECT * FROM read_parquet([{listed}]) WHERE read_kind = 'interval' AND settlement_period = 20
        ORDER BY meter_point, source_version DESC LIMIT 1""").fetchdf().to_dict("records")[0]
    fix = reads(row["meter_point"], [row["interval_start_utc"]], row["value"] + kwh, serial=row["meter_serial"],
                register=row["register_id"], version=after(day, 24 * 10))
    write_lake_reads(lake, fix, offset=offset)
    return row


def build(base: Path, spark) -> PortfolioLake:
    settings = lake_settings(base)
    write_reads(settings, base / "portfolio")
    run_jobs(settings, spark, base / "portfolio")
    return PortfolioLake(settings, settings.paths.lake, base / "portfolio")


def main(argv: list[str]) -> int:
    from meterlake.spark import build_spark

    base = Path(argv[0] if argv else "build/dev-lake").resolve()
    settings = lake_settings(base)
    spark = build_spark("portfolio-lake", settings.model_copy(update={
        "spark": settings.spark.model_copy(update={"with_cassandra_connector": False})}), master="local[2]",
        conf={"spark.ui.enabled": "false", "spark.sql.session.timeZone": "UTC"})
    try:
        build(base, spark)
    finally:
        spark.stop()
    print(base / "lake")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
