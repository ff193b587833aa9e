"""The header lines of the landing file shapes that the generator (:mod:`meterlake.generate`) writes and the
ingest parsers (``streaming.ingest``) read, defined once so the two cannot drift (the shapes: docs/ingest.md)."""
from __future__ import annotations

#: ``hh-csv``: the meterlake half-hourly read CSV's columns, in the order the generator writes them (the parser
#: takes them in any order and ignores others).
HH_CSV_COLUMNS = ("meter_point", "meter_serial", "register_id", "read_kind", "interval_start_utc", "value", "unit",
                  "quality", "created_utc")
HH_CSV_HEADER = ",".join(HH_CSV_COLUMNS)
#: ``lcl``: the London Datastore's "Smart meters in London" header (the parser also takes its other spellings).
LCL_HEADER = "LCLid,tstp,energy(kWh/hh)"
