"""Claim-check: a large file travels on ``kafka.files_topic`` as a reference, never as its content.

A watch worker that finds a file larger than ``ingest.claim_check_bytes`` announces it (its claim goes to
``announced``, :mod:`streaming.ingest.claims`) with one small JSON message keyed by the file's checksum::

    {"path": "hdfs://127.0.0.1:9000/landing/HH_20241026_0001_v1.csv",
     "checksum": "<SHA-256 hex>", "size": 123456789, "format": "hh-csv"}

Any worker of the consumer group ``meterlake-ingest`` takes the reference, claims the file
(``announced -> working``), streams it from storage (a local path, or the lake's filesystem for ``hdfs://`` and
``s3://``), checks size and checksum, and processes it like any other file. ``format`` is the format detected from
the file's first line (None when not recognised: the worker then rejects the file with its reason).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

FIELDS = ("path", "checksum", "size", "format")


class BadReference(ValueError):
    """A message on the files topic that is not a file reference."""


@dataclass(frozen=True)
class FileRef:
    path: str
    checksum: str
    size: int
    format: str | None

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> FileRef:
        """Parse a reference. Raises :class:`BadReference`. Pure."""
        try:
            data = json.loads(value)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadReference(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or set(data) != set(FIELDS):
            raise BadReference(f"a reference has exactly the fields {', '.join(FIELDS)}")
        path, checksum, size, fmt = (data[k] for k in FIELDS)
        if not isinstance(path, str) or not path:
            raise BadReference("path must be a non-empty string")
        if not isinstance(checksum, str) or len(checksum) != 64 or set(checksum) - set("0123456789abcdef"):
            raise BadReference("checksum must be a SHA-256 in lower-case hex")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadReference("size must be a non-negative integer")
        if fmt is not None and not isinstance(fmt, str):
            raise BadReference("format must be a string or null")
        return cls(path, checksum, size, fmt)


def announce(producer, topic: str, ref: FileRef) -> None:
    """Send ``ref`` (keyed by its checksum) and wait for the broker's acknowledgement."""
    producer.send(topic, key=ref.checksum.encode(), value=ref.to_bytes()).get(timeout=60)
