"""Instants as the product writes and reads them: ISO 8601 in UTC with a ``Z`` out (answers, checkpoints,
reports), ISO 8601 with a zone in (options such as ``--now``). Settlement dates and periods are derived from
instants in :mod:`meterlake.calendar` only."""
from __future__ import annotations

from datetime import UTC, datetime

from meterlake.errors import UsageError


def iso_utc(instant: datetime) -> str:
    """An aware instant as ISO 8601 UTC with a ``Z`` (how every answer writes times)."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_instant(text: str, *, name: str | None = None) -> datetime:
    """An ISO 8601 instant with ``Z`` or an offset (a naive one could be UTC or UK time, so it is refused);
    ``name`` (an option such as ``--now``) prefixes the message of the usage error."""
    subject = f"{name} {text!r}" if name else repr(text)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"not an ISO 8601 instant: {subject} (e.g. 2026-10-25T01:30:00Z)", value=text) from None
    if instant.tzinfo is None:
        raise UsageError(f"{subject} has no time zone: add Z for UTC or an offset such as +01:00", value=text)
    return instant
