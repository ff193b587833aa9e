"""JSON text the way every command and job prints it: one object, instants in UTC with a ``Z``, dates as
``YYYY-MM-DD``, paths as strings, sets sorted (the CLI's ``--json`` contract, :mod:`meterlake.cli.output`)."""
from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from meterlake.instants import iso_utc


def plain_value(o: Any) -> Any:
    """``o`` as a JSON value (the ``default`` of :func:`json.dumps`)."""
    if isinstance(o, datetime):
        return iso_utc(o) if o.tzinfo is not None else o.isoformat()
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, set | frozenset):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: dict) -> str:
    return json.dumps(obj, default=plain_value, sort_keys=False)
