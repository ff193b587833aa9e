"""Device events: one read per measurement, events are their own versions, clock-drift tolerance."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streaming.ingest import ingest_file, validated_file
from tests.streaming.ingest.conftest import NOW

EVENTS = """\
{"device_id": "ihd-1", "meter_point": "1200023305967", "ts": "2024-10-27T01:15:00Z", "power_w": 412.5}
{"device_id": "ihd-1", "meter_point": "1200023305967", "ts": "2024-10-27T01:20:00+00:00", "power_w": 398, \
"energy_wh": 1834211}

{"device_id": "ihd-2", "meter_point": "7434918404", "meter_serial": "G1", "ts": "2024-10-27T01:15:00Z", \
"energy_wh": 99}
"""


def test_each_measurement_is_a_device_read_versioned_by_its_timestamp(write):
    with validated_file(write("events.jsonl", EVENTS), now=NOW) as validated:
        rows = validated.reads_table().select(
            ["device_id", "meter_point", "meter_serial", "fuel", "register_id", "read_kind",
             "interval_start_utc", "value", "unit", "source_line", "source_version"]).to_pylist()
    t0115, t0120 = datetime(2024, 10, 27, 1, 15, tzinfo=UTC), datetime(2024, 10, 27, 1, 20, tzinfo=UTC)
    v0115, v0120 = 1_729_991_700_000_000, 1_729_992_000_000_000  # the timestamps in microseconds
    assert [tuple(r.values()) for r in rows] == [
        ("ihd-1", "1200023305967", None, "electricity", None, "device", t0115, 412.5, "W", 1, v0115),
        ("ihd-1", "1200023305967", None, "electricity", None, "device", t0120, 398.0, "W", 2, v0120),
        ("ihd-1", "1200023305967", None, "electricity", None, "device", t0120, 1834211.0, "Wh", 2, v0120),
        ("ihd-2", "7434918404", "G1", "gas", None, "device", t0115, 99.0, "Wh", 4, v0115),
    ]


@pytest.mark.parametrize("line, field, reason", [
    ('{"device_id": "d", "meter_point": "1200023305967", "ts": "2024-10-27T01:15:00Z", "power_w": "412"}',
     "power_w", "non_numeric_value"),
    ('{"device_id": "d", "meter_point": "1200023305967", "ts": "2024-10-27T01:15:00Z", "power_w": true}',
     "power_w", "non_numeric_value"),
    ('{"device_id": "d", "meter_point": "1200023305967", "ts": "2024-10-27T01:15:00Z"}', "power_w",
     "missing_value"),
    ('{"meter_point": "1200023305967", "ts": "2024-10-27T01:15:00Z", "power_w": 1}', "device_id",
     "missing_value"),
    ('{"device_id": "d", "meter_point": "1200023305960", "ts": "2024-10-27T01:15:00Z", "power_w": 1}',
     "meter_point", "bad_mpan_check_digit"),
    ('{"device_id": "d", "meter_point": "1200023305967", "ts": "2024-10-27T01:15:00", "power_w": 1}', "ts",
     "bad_timestamp"),
    ('["d", "1200023305967"]', None, "malformed_line"),
    ('{"device_id": "d", "meter_point": "1200023305967", "ts": "2024-10-27T01:15:00Z", "power_w": 1',
     None, "malformed_line"),
])
def test_a_bad_event_is_quarantined_whole(write, line, field, reason):
    with validated_file(write("e.jsonl", line + "\n"), now=NOW) as validated:
        quarantine = validated.quarantine_table().to_pylist()
        assert validated.reads_table().num_rows == 0
    assert [(q["source_line"], q["field"], q["reason"]) for q in quarantine] == [(1, field, reason)]


@pytest.mark.parametrize("ts, reason", [
    pytest.param("2025-01-01T00:04:59Z", None, id="4m59s ahead: device clock drift"),
    pytest.param("2025-01-01T00:05:01Z", "future_timestamp", id="5m01s ahead: in the future"),
])
def test_device_clocks_may_run_up_to_five_minutes_ahead(write, ts, reason):
    line = f'{{"device_id": "d", "meter_point": "1200023305967", "ts": "{ts}", "power_w": 1}}\n'
    result = ingest_file(write("e.jsonl", line), now=NOW)
    assert result.reasons == ({reason: 1} if reason else {})


def test_a_cut_last_event_rejects_the_file_but_a_whole_unterminated_one_is_fine(write):
    whole = '{"device_id": "d", "meter_point": "1200023305967", "ts": "2024-10-27T01:15:00Z", "power_w": 1}'
    assert ingest_file(write("a.jsonl", whole), now=NOW).reads == 1
    cut = ingest_file(write("b.jsonl", f"{whole}\n{whole[:40]}"), now=NOW)
    assert (cut.status, cut.reasons) == ("rejected", {"truncated_file": 1})
