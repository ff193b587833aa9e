"""Helpers for the ingest tests: literal files written to tmp_path, a fixed validation instant."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

# The validation instant of every test ("now"): reads ending after it are in the future.
NOW = datetime(2025, 1, 1, tzinfo=UTC)

HH_HEADER = "meter_point,meter_serial,register_id,read_kind,interval_start_utc,value,unit,quality,created_utc"


@pytest.fixture
def write(tmp_path):
    """write(name, text_or_bytes) -> Path of a new file under tmp_path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return path

    return _write
