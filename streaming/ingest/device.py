"""Device events as JSON lines (format ``device``): what in-home devices and smart-meter gateways send.

One JSON object per line::

    {"device_id": "ihd-000001", "meter_point": "1200023305967", "ts": "2024-10-27T01:15:00Z",
     "power_w": 412.0}
    {"device_id": "ihd-000001", "meter_point": "1200023305967", "ts": "2024-10-27T02:00:00Z",
     "energy_wh": 1834211}

(shown wrapped; each object is on one line).

``device_id`` (required), ``meter_point`` (an MPAN core or MPRN), ``ts`` (ISO 8601 with an offset), and at
least one of ``power_w`` (instantaneous power, W) or ``energy_wh`` (the device's cumulative energy counter,
Wh), as JSON numbers; ``meter_serial`` is optional. Each measurement becomes one ``device`` read (unit
``W`` or ``Wh``, no register, quality ``actual``); a line with any bad field is quarantined whole. Events are
their own versions: ``source_version`` is the event's ``ts``, so a replay changes nothing. A device event may
be up to 5 minutes ahead of the validation time (device clocks drift) before it counts as in the future.
Read from a file, a device read keeps the file and line (``source_file``, ``source_line``) as lineage.

Grain: one line per (device_id, ts).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator

from meterlake import ids
from streaming.ingest.common import (
    DEVICE_CLOCK_TOLERANCE_US,
    Collector,
    FileInfo,
    FileRejected,
    RecordProblem,
    TimestampParser,
    check_not_future,
)

FORMAT = "device"
MEASURES = (("power_w", "W"), ("energy_wh", "Wh"))


def sniff(first: str) -> bool:
    return first.lstrip().startswith(("{", "["))


def _text(event: dict, name: str, required: bool = True) -> str | None:
    value = event.get(name)
    if value is None or value == "":
        if required:
            raise RecordProblem(name, "missing_value", f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise RecordProblem(name, "malformed_line", f"{name} is not a string")
    return value


def parse(lines: Iterator[tuple[int, str, bool]], out: Collector, info: FileInfo, now_us: int) -> None:
    timestamp = TimestampParser()
    for line_no, text, terminated in lines:
        if not text.strip():
            continue
        meter = ts = None  # as far as the line is valid: its quarantine record counts against the meter-day
        try:
            try:
                event = json.loads(text)
            except ValueError as exc:
                raise RecordProblem(None, "malformed_line", f"not JSON: {exc}") from None
            if not isinstance(event, dict):
                raise RecordProblem(None, "malformed_line", "not a JSON object")
            device_id = _text(event, "device_id")
            meter_point = _text(event, "meter_point")
            fuel, problem = ids.meter_point_problem(meter_point)
            if problem:
                raise RecordProblem("meter_point", problem.reason, problem.detail)
            meter = meter_point
            ts = timestamp(_text(event, "ts"), "ts")
            check_not_future(ts, now_us, "ts", DEVICE_CLOCK_TOLERANCE_US)
            measures = []
            for name, unit in MEASURES:
                value = event.get(name)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise RecordProblem(name, "non_numeric_value", f"{name} {value!r} is not a finite number")
                measures.append((float(value), unit))
            if not measures:
                raise RecordProblem("power_w", "missing_value", "neither power_w nor energy_wh is given")
            serial = _text(event, "meter_serial", required=False)
        except RecordProblem as problem:
            if not terminated and problem.reason == "malformed_line":
                raise FileRejected("truncated_file", f"the last line ({line_no}) is unterminated and is not "
                                                     f"a whole JSON object") from None
            out.problem(line_no, problem, text, meter, ts)
            continue
        info.saw_instant(ts)
        for value, unit in measures:
            out.read(line_no, text, meter_point=meter_point, meter_serial=serial, fuel=fuel, register_id=None,
                     read_kind="device", start_us=ts, value=value, unit=unit, quality="actual",
                     device_id=device_id, version=ts)
