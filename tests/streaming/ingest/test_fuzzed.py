"""The fault sweep's fuzzed files at a small size (benchmarks/bench_faults.py runs 1,000): every malformed file is
rejected with a reason or has its bad lines quarantined with one; none crashes ingest's checking."""
from __future__ import annotations

from benchmarks.bench_faults import fuzz


def test_sixty_fuzzed_files_each_get_a_reason_and_none_crashes_the_checking():
    result = fuzz(60)
    assert result["crashes"] == []
    assert sum(result["outcomes"].values()) == 60
    assert set(result["outcomes"]) <= {"rejected", "accepted, lines quarantined"}  # no bad file passes as good
    assert {"truncated_file", "bad_header", "malformed_line"} <= set(result["reasons"])
