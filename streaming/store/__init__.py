"""The event store: every read kept in Cassandra as an idempotent event history (see :mod:`streaming.store.keyspace`)."""
