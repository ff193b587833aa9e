"""The benchmark harness: each stage measures one thing beside the obvious alternative, in the same run.

A stage is a module ``benchmarks/bench_*.py`` with ``run(report: Report, scale: str) -> None``. It calls
``report.figure(...)`` for each number and ``report.ratio(...)`` to compare two of them. The harness prints every
figure as it comes and writes them all to ``benchmarks/results/<UTC timestamp>.json`` (and ``latest.json``).
"""
from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("results")


def duckdb_floor(path: str = ":memory:"):
    """A DuckDB connection for a floor, bounded (memory_limit 6GB, spilling to a temporary directory): by
    default DuckDB may take 80 % of the machine's memory, which beside the benchmark's own process (and the
    stack) got the whole process killed on a day of 41M reads."""
    import tempfile

    import duckdb

    return duckdb.connect(path, config={"memory_limit": "6GB",
                                        "temp_directory": tempfile.gettempdir() + "/duckdb-floor"})


@dataclass
class Report:
    stage: str = ""
    figures: list[dict] = field(default_factory=list)

    def figure(self, name: str, value: float, unit: str, **context) -> float:
        row = {"stage": self.stage, "name": name, "value": value, "unit": unit, **context}
        self.figures.append(row)
        extra = " ".join(f"{k}={v}" for k, v in context.items())
        print(f"  {self.stage:<12} {name:<48} {value:>14,.2f} {unit:<10} {extra}", flush=True)
        return value

    def ratio(self, name: str, numerator: float, denominator: float, goal: str = "") -> float:
        value = numerator / denominator if denominator else float("nan")
        return self.figure(name, value, "x", **({"goal": goal} if goal else {}))


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall-clock seconds of ``repeat`` runs (the least disturbed by the other core's load)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write(report: Report) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "run_at": stamp,
        "machine": {"python": platform.python_version(), "processor": platform.machine(),
                    "cores": __import__("os").cpu_count()},
        "figures": report.figures,
    }
    path = RESULTS / f"{stamp}.json"
    path.write_text(json.dumps(payload, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2))
    return path
