"""Pseudonyms for the personal identifiers the lake holds: the one place they are made.

A meter point (MPAN, MPRN, an LCL household id), a meter's serial number and a consumer access device's id each
point at a household. The operational store (Cassandra, behind authentication) keeps them as they are; the lake,
which analysts, dbt, dashboards and notebooks read, holds pseudonyms instead: ``P`` and 24 hex digits of the
HMAC-SHA256 of the identifier under a secret key. A plain hash would not do: the 13-digit MPAN space (with its
check digit) is small enough to hash exhaustively, so without the key a pseudonym must tell nothing.

The same key gives the same pseudonym everywhere, so the lake's tables still join (reads with the meter registry)
and a meter's history stays one series. Whoever holds the key can find a known meter's rows (``meterlake lake sql
"… WHERE meter_point = pseudonym('2000012345670')"``), but nobody can turn a pseudonym back into the identifier.

The key: the file named by ``lake.pseudonym_key_file`` (at least 32 bytes; a deployment keeps it in its secret
store), else ``lake.pseudonym_key`` (which the local stack's discovery fills with its generated
``lake_pseudonym_key``, kept in ``<state_dir>/secrets.json``, 0600). There is no default key: with neither, nothing
is written to the lake. Changing the key splits every meter's history in two.
"""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from meterlake.errors import UsageError

#: The lake columns holding personal identifiers (each pseudonymised where present). A supplier's account id
#: names a customer as a meter point names a household: billing's tables hold its pseudonym (jobs/bill/inputs.py
#: keeps the clear ids the operator loaded outside the lake, to print them back).
IDENTIFIERS = ("meter_point", "meter_serial", "device_id", "account")
PREFIX = "P"
DIGITS = 24  # hex digits kept: 96 bits, no collision to expect among billions of identifiers
MIN_KEY_BYTES = 32
_CACHE_LIMIT = 1 << 21


class Pseudonymiser:
    """Keyed pseudonyms of identifiers, one at a time or a column at a time (each distinct value hashed once)."""

    def __init__(self, key: bytes):
        if len(key) < MIN_KEY_BYTES:
            raise UsageError(f"the pseudonymisation key has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
        self._key = key
        self._cache: dict[str, str] = {}

    def one(self, identifier: str | None) -> str | None:
        """The pseudonym of ``identifier`` (None stays None)."""
        if identifier is None:
            return None
        found = self._cache.get(identifier)
        if found is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            digest = hmac.new(self._key, identifier.encode(), hashlib.sha256).hexdigest()
            found = self._cache[identifier] = PREFIX + digest[:DIGITS]
        return found

    def array(self, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The pseudonyms of a string column, nulls kept."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if len(values) == 0 or values.null_count == len(values):
            return values
        encoded = pc.dictionary_encode(values)
        names = pa.array([self.one(v) for v in encoded.dictionary.to_pylist()], type=pa.string())
        return names.take(encoded.indices)

    def table(self, table: pa.Table) -> pa.Table:
        """``table`` with every :data:`IDENTIFIERS` column it has pseudonymised."""
        for name in IDENTIFIERS:
            at = table.schema.get_field_index(name)
            if at >= 0:
                table = table.set_column(at, table.schema.field(at), self.array(table.column(at)))
        return table


def key_of(settings) -> bytes:
    """The pseudonymisation key of ``settings`` (see the module docstring). Raises UsageError when there is none."""
    if settings.lake.pseudonym_key_file:
        path = Path(settings.lake.pseudonym_key_file)
        try:
            return path.read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"cannot read the pseudonymisation key {path}: {exc.strerror}") from None
    if not settings.lake.pseudonym_key:
        raise UsageError("no pseudonymisation key for the lake: set lake.pseudonym_key_file, or start the local "
                         "stack (`meterlake stack up`), which generates one")
    return settings.lake.pseudonym_key.encode()


def for_settings(settings) -> Pseudonymiser:
    """The lake's pseudonymiser under ``settings``' key."""
    return Pseudonymiser(key_of(settings))
