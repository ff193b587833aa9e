"""A generated portfolio taken through the jobs, for the tests of what reads their outputs (dashboards, reports).

60 meters over 24–28 October 2024 (the 27th is the autumn clock change: 50 periods), registered in two GSP groups
(so that segments of a few meters reach the dashboards' minimum cohort), cleaned, settled SF on the 26th and 27th,
then a late correction and a late meter's day arrive (created 10 days after the 27th: after SF's cut-off, before
R1's), R1 of the 27th settles them, the SF→R1 diff lists them, and quality measures every day.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from jobs.clean import job as clean
from jobs.quality import job as quality
from jobs.registry import job as registry
from jobs.settle import job as settle
from jobs.settle_diff import job as settle_diff
from meterlake import config, pseudonym
from meterlake.generate import Options, generate
from meterlake.lake.files import open_lake
from tests.jobs.helpers import after, arrive_late, publish_to_lake

AUTUMN = date(2024, 10, 27)
LATE_METER = "1900000000016"


@dataclass(frozen=True)
class Settled:
    settings: config.Settings
    root: Path                  # the generated files
    runs: dict                  # (date, run) -> the settle job's answer
    diff: dict                  # the SF→R1 diff of AUTUMN


def _two_gsp_groups(registry_csv: Path) -> None:
    rows = list(csv.DictReader(registry_csv.open()))
    for i, row in enumerate(rows):
        row["gsp_group"] = "_A" if i % 2 == 0 else "_C"
    with registry_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def settle_portfolio(spark, base: Path) -> Settled:
    root = base / "portfolio"
    manifest = generate(Options(meters=60, days=5, start=date(2024, 10, 24), seed=11, meters_per_file=30,
                                lcl_meters=0, device_meters=0, economy7_share=0.3), root)
    _two_gsp_groups(root / "registry.csv")
    (base / "lake.key").write_text("a key of the lake's pseudonyms, for this test only\n")
    s = config.load(None)
    s = s.model_copy(update={
        "paths": s.paths.model_copy(update={"state_dir": base / "state", "lake": str(base / "lake"),
                                            "warehouse": str(base / "warehouse" / "meterlake.duckdb")}),
        "lake": s.lake.model_copy(update={"pseudonym_key_file": str(base / "lake.key")}),
        "spark": s.spark.model_copy(update={"shuffle_partitions": 2}),
    })
    lake = open_lake(s)
    pseudonyms = pseudonym.for_settings(s)
    publish_to_lake(lake, root, [f["path"] for f in manifest["files"]],
                    datetime.fromisoformat(manifest["valid_as_of"]), pseudonyms)
    registry.run(s, root / "registry.csv")
    clean.run(s, spark=spark)
    answers = {(day, "SF"): settle.run(s, day, "SF", spark=spark) for day in (date(2024, 10, 26), AUTUMN)}
    # after SF: a correction of one half-hour and a late meter's whole day
    version = after(AUTUMN, 24 * 10)
    arrive_late(lake, AUTUMN, pseudonyms.one(LATE_METER), version)
    answers[(AUTUMN, "R1")] = settle.run(s, AUTUMN, "R1", spark=spark)
    diff = settle_diff.run(s, AUTUMN, "SF", "R1", limit=1000, spark=spark)
    quality.run(s, spark=spark)
    return Settled(settings=s, root=root, runs=answers, diff=diff)
