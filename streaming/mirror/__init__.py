"""The Kafka mirror into the Parquet lake, the lake's compaction and SQL over it.

* :mod:`~streaming.mirror.convert`: messages to lake rows (pure).
* :mod:`~meterlake.lake.layout` (in the core, shared with the jobs): file names, the manifest and the live-file
  rule (pure).
* :mod:`~meterlake.lake.files` (in the core): the lake on a filesystem (local, HDFS, S3): atomic writes, live files.
* :mod:`~streaming.mirror.consumer`: ``meterlake mirror run``, exactly-once files.
* :mod:`~streaming.mirror.compact`: ``meterlake lake compact``.
* :mod:`~streaming.mirror.query`: ``meterlake lake sql`` and ``meterlake lake stats``.

The layout is documented for every reader in docs/lake.md.
"""
