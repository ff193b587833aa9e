"""The event store: every read kept in Cassandra as an idempotent event history.

See :mod:`meterlake.keyspace`.
"""
