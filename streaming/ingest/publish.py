"""The publishing hook: where an accepted file's batches go to Kafka (``meter-reads``, ``meter-quarantine``).

Not built yet: publishing needs the stack. :func:`publish` is the one place the Kafka producer will go; it
gets a :class:`~streaming.ingest.pipeline.ValidatedFile` (whose batches are only handed out once the whole
file was accepted) and the settings.
"""
from __future__ import annotations

from meterlake.errors import ServiceError


def publish(validated, settings) -> None:
    """Publish a validated file's reads (as event stream sets / rows) and quarantine records to Kafka."""
    raise ServiceError("not yet: publishing needs the stack (Kafka); run `meterlake ingest --dry-run` to "
                       "parse and validate without services", path=validated.result.path)
