"""Benchmarks: `make bench` (python -m benchmarks). Figures, not pass/fail; never part of `make test`."""
