"""Run every benchmark stage (or those named): ``python -m benchmarks [STAGE …] [--scale small|full]``;
``python -m benchmarks day --meters N``: one supplier day end to end at N meters (benchmarks/bench_day.py)."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import benchmarks
from benchmarks.harness import Report, write


def stages() -> list[str]:
    return sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules(benchmarks.__path__)
                  if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("stage", nargs="*", help=f"stages to run (default all): {', '.join(stages())}")
    parser.add_argument("--scale", choices=["small", "full"], default="full",
                        help="small: a quick look; full: the sizes the issues set goals at")
    parser.add_argument("--meters", type=int, help="the day stage's meters (default: by --scale)")
    parser.add_argument("--resume", action="store_true",
                        help="the day stage: go on with the day a stopped run left (its finished stages kept)")
    args = parser.parse_args(argv)
    if (args.meters is not None or args.resume) and args.stage != ["day"]:
        parser.error("--meters and --resume are the day stage's: python -m benchmarks day --meters N")
    report = Report()
    for name in args.stage or stages():
        if name not in stages():
            parser.error(f"unknown stage {name!r}")
        print(f"== {name}", flush=True)
        report.stage = name
        options = {"meters": args.meters, "resume": args.resume} if name == "day" else {}
        importlib.import_module(f"benchmarks.bench_{name}").run(report, args.scale, **options)
    path = write(report)
    print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
