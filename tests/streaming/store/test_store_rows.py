"""The store's row builders (pure): a set becomes one row whose present periods are map cells."""
from __future__ import annotations

import uuid
from datetime import date

import pyarrow as pa

from meterlake import schema
from streaming.store.writer import quarantine_rows, set_rows

FILE_ID = "0a0b6c00-1f2e-11ef-8000-0123456789ab"


def test_a_set_is_one_update_with_only_its_present_periods_keyed_by_meter_and_month():
    values = [0.25] * 48
    values[3] = None  # a missing read
    sets = pa.Table.from_pylist([{
        "meter_point": "1200023305967", "meter_serial": None, "fuel": "electricity", "register_id": "S",
        "unit": "kWh", "settlement_date": date(2024, 6, 1), "source_version": 1_717_293_600_000_000,
        "periods": 48, "values": values, "qualities": ["actual"] * 3 + [None] + ["estimated"] * 44,
        "source_file": "HH.csv", "file_id": FILE_ID, "batch_id": None}], schema=schema.SET_SCHEMA)
    (row,) = set_rows(sets)
    timestamp, fuel, periods, cells, qualities, version, source_file, file_id, batch_id, *key = row
    assert timestamp == version == 1_717_293_600_000_000  # USING TIMESTAMP source_version
    assert (fuel, periods, source_file, file_id, batch_id) == ("electricity", 48, "HH.csv", uuid.UUID(FILE_ID), None)
    assert sorted(cells) == [1, 2, 3] + list(range(5, 49))
    assert cells[1] == 0.25 and 4 not in cells and 4 not in qualities
    assert (qualities[3], qualities[5]) == ("actual", "estimated")
    assert key == ["1200023305967", "2024-06", date(2024, 6, 1), "S", "", "kWh"]  # no serial: '' (clustering)


def test_a_file_level_quarantine_record_has_line_minus_one():
    batch = schema.quarantine_batch([{"source_file": "cut.uff", "source_line": None, "field": None,
                                      "reason": "truncated_file", "detail": "no ZPT", "raw": None}])
    assert quarantine_rows(pa.Table.from_batches([batch])) == [("cut.uff", -1, "", "truncated_file", "no ZPT", None)]


def test_each_set_of_a_message_gets_its_own_periods():
    def one(meter: str, day: date, values: list) -> dict:
        return {"meter_point": meter, "meter_serial": "E1", "fuel": "electricity", "register_id": "S", "unit": "kWh",
                "settlement_date": day, "source_version": 1, "periods": len(values), "values": values,
                "qualities": ["actual"] * len(values), "source_file": "f", "file_id": None, "batch_id": None}

    gappy = [0.5] * 48
    gappy[0] = gappy[47] = None
    sets = pa.Table.from_pylist([one("1200023305967", date(2024, 6, 1), gappy),
                                 one("1200023305967", date(2024, 3, 31), [0.25] * 46)], schema=schema.SET_SCHEMA)
    first, second = set_rows(sets)
    assert first[3] == {p: 0.5 for p in range(2, 48)}
    assert second[3] == {p: 0.25 for p in range(1, 47)}  # the spring clock-change day: 46 periods
    assert (first[10], second[10]) == ("2024-06", "2024-03")
