"""The Cassandra keyspace of the event store, designed for its queries; in the core because the store, ingest's
file claims and the jobs that touch Cassandra all use it.

Tables and why
--------------
``hh_sets``: half-hourly reads, one row per *event stream set* (one meter point, register, serial and unit for one
settlement day: 46/48/50 values). Partition ``(meter_point, month)``: the serving queries are "a meter's reads for
a day / a bill period", which read one or two partitions; a month bounds a partition at about 31 rows per register
(~15 KB), however long the meter lives. Clustering ``settlement_date DESC`` first, so the newest days come first.
48M reads a day are 1M rows a day, not 48M. ``meter_serial`` is in the clustering key: a meter exchanged mid-day
gives two rows for the meter-day, one per meter.

The values of a row are maps ``period -> value`` (and ``period -> quality``), written with ``values = values +
?``: each period is its own cell with its own write timestamp, the source version of the read. So the row holds,
per period, the latest version of that read, the same rule as the lake's compaction (``streaming.mirror.compact``):

* a file that lists a meter-day's reads apart (interleaved with other meters, so the meter-day is cut into two
  sets in two batches of one version) merges into one row;
* a correction replaces the periods it restates; the others keep their latest value (a correction that means to
  remove a read restates it with quality ``withdrawn``);
* an older version arriving late changes no period a newer version wrote.

The row's other columns (``source_version``, ``source_file``, ``file_id``, ``batch_id``) name the latest version
that wrote to the day.

``register_reads``: cumulative register reads (D0010), partition ``(meter_point, year)`` clustered by register and
read time: a bill needs the register reads bracketing its period.

``device_reads``: consumer access device events every few minutes, partition ``(device_id, day)`` clustered by
time, with a TTL (they are high-volume and only the recent ones are served; the lake keeps them all).

``daily_consumption`` (a serving table, written by ``meterlake job serve`` off the lake): a meter's consumption
per settlement date, register and unit, partition ``(meter_point, month)`` clustered by date, newest first: a
customer's month or bill period is one or two partitions (docs/jobs.md).

``quarantine``: record-level problems by source file and line, for the data-quality views and support.

``file_claims``: one row per landed file content (its SHA-256), claimed with a lightweight transaction (``INSERT …
IF NOT EXISTS``) and a TTL lease, so exactly one ingest worker processes a file (:mod:`streaming.ingest.claims`).

Idempotence
-----------
Every write of a read carries ``USING TIMESTAMP source_version``: the version comes from the data (the flow's
creation instant plus a sequence), so a replay writes the same cells with the same timestamp (nothing changes) and
an older version arriving late loses to the newer one already stored, whatever the order of arrival. Clustering
columns cannot be null: an absent register or serial is stored as ``''``.

Replication and consistency
---------------------------
``cassandra.replication_factor`` (1 on one node; 3 for the HA profile) and the writers' and readers' levels
``cassandra.write_consistency`` / ``read_consistency`` (QUORUM with RF 3: one node may be down). Claims use
lightweight transactions at serial consistency ``LOCAL_SERIAL``.
"""
from __future__ import annotations

DEVICE_TTL_S = 90 * 86400
#: Columns added to a table after its first layout, (table, column, type): :func:`ensure` adds them to an older
#: keyspace. ``register_reads.batch_id``: the lake's rows carry it, so a lake rebuilt from the store has it too.
ADDED_COLUMNS = (("register_reads", "batch_id", "timeuuid"),)


def create_keyspace(keyspace: str, replication_factor: int, datacenter: str = "datacenter1") -> str:
    """The statement creating ``keyspace`` if absent, replicated ``replication_factor`` times in ``datacenter``:
    the first of every set of tables (the store's, :func:`ddl`; the meter commands'). Pure."""
    return (f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', '{datacenter}': {replication_factor}}}")


def apply(session, statements: list[str]) -> None:
    """Run schema statements (each within 60 s) and wait until the nodes agree on the schema."""
    for statement in statements:
        session.execute(statement, timeout=60)
    session.cluster.control_connection.wait_for_schema_agreement(wait_time=60)


def ddl(keyspace: str, replication_factor: int, datacenter: str = "datacenter1") -> list[str]:
    """The statements that create the keyspace and its tables (idempotent). Pure."""
    ks = keyspace
    return [
        create_keyspace(ks, replication_factor, datacenter),
        f"""CREATE TABLE IF NOT EXISTS {ks}.hh_sets (
            meter_point text, month text, settlement_date date, register_id text, meter_serial text, unit text,
            fuel text, periods tinyint, values map<tinyint, double>, qualities map<tinyint, text>,
            source_version bigint, source_file text, file_id timeuuid, batch_id timeuuid,
            PRIMARY KEY ((meter_point, month), settlement_date, register_id, meter_serial, unit)
        ) WITH CLUSTERING ORDER BY (settlement_date DESC, register_id ASC, meter_serial ASC, unit ASC)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.register_reads (
            meter_point text, year smallint, register_id text, read_at timestamp, meter_serial text,
            fuel text, value double, unit text, quality text, source_version bigint, source_file text,
            source_line bigint, file_id timeuuid, batch_id timeuuid,
            PRIMARY KEY ((meter_point, year), register_id, read_at, meter_serial)
        ) WITH CLUSTERING ORDER BY (register_id ASC, read_at DESC, meter_serial ASC)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.device_reads (
            device_id text, day date, ts timestamp, unit text, meter_point text, value double,
            source_version bigint,
            PRIMARY KEY ((device_id, day), ts, unit)
        ) WITH CLUSTERING ORDER BY (ts DESC, unit ASC) AND default_time_to_live = {DEVICE_TTL_S}""",
        # serving tables, written by `meterlake job serve` off the lake (jobs/serve/job.py, docs/jobs.md)
        f"""CREATE TABLE IF NOT EXISTS {ks}.daily_consumption (
            meter_point text, month text, settlement_date date, register_id text, unit text, fuel text,
            consumption double, periods smallint, estimated_periods smallint, estimated_share double,
            expected_periods smallint, source_version bigint,
            PRIMARY KEY ((meter_point, month), settlement_date, register_id, unit)
        ) WITH CLUSTERING ORDER BY (settlement_date DESC, register_id ASC, unit ASC)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.quarantine (
            source_file text, source_line bigint, field text, reason text, detail text, raw text,
            PRIMARY KEY ((source_file), source_line, field)
        )""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.file_claims (
            file_key text PRIMARY KEY, owner text, state text, path text, size bigint, mtime_ns bigint,
            claimed_at timestamp, renewed_at timestamp, finished_at timestamp, outcome text, format text,
            file_id timeuuid, reads bigint, quarantined bigint, archived_to text
        )""",
    ]


def ensure(session, keyspace: str, replication_factor: int) -> None:
    """Create the keyspace and tables if absent, waiting for schema agreement.

    Raises :class:`~meterlake.errors.MeterlakeError` if ``hh_sets`` exists with the first layout (a frozen list
    per set, replaced whole), which the per-period writes cannot update.
    """
    from meterlake.errors import MeterlakeError

    apply(session, ddl(keyspace, replication_factor))
    missing = [(table, column, kind) for table, column, kind in ADDED_COLUMNS  # added after a table's first layout
               if session.execute("SELECT type FROM system_schema.columns WHERE keyspace_name = %s AND "
                                  "table_name = %s AND column_name = %s", (keyspace, table, column)).one() is None]
    apply(session, [f"ALTER TABLE {keyspace}.{table} ADD {column} {kind}" for table, column, kind in missing])
    row = session.execute("SELECT type FROM system_schema.columns WHERE keyspace_name = %s AND table_name = "
                          "'hh_sets' AND column_name = 'values'", (keyspace,)).one()
    if row is not None and not row.type.startswith("map<"):
        raise MeterlakeError(
            f"{keyspace}.hh_sets has the old layout (values {row.type}); the store now keeps one cell per period "
            f"(map<tinyint, double>). Drop the table (a local stack: `DROP TABLE {keyspace}.hh_sets`) and replay "
            "meter-reads from the beginning (`meterlake store run` with a new consumer group, or reset its offsets)",
            keyspace=keyspace, column_type=row.type)


#: The tables holding a meter's reads, partitioned by (meter_point, a period): the event store's and the serving
#: tables (``device_reads`` is by device: :func:`erase_meter` finds the meter's devices).
METER_TABLES = (("hh_sets", "month"), ("register_reads", "year"), ("daily_consumption", "month"))
#: The periods :func:`erase_meter` looks in: from the start of the UK's competitive domestic market (no meter
#: history is older) to a year after today.
FIRST_YEAR = 1998


def meter_partitions(first_year: int, last_year: int) -> dict[str, list]:
    """Per partition period kind, every value from ``first_year`` to ``last_year``: ``month`` ('YYYY-MM') and
    ``year``. Pure."""
    years = list(range(first_year, last_year + 1))
    return {"year": years, "month": [f"{y:04d}-{m:02d}" for y in years for m in range(1, 13)]}


def erase_meter(session, keyspace: str, meter_point: str, *, now_us: int, last_year: int) -> dict[str, int]:
    """Delete every read of ``meter_point`` (in clear, as the store keys it) from the event store and the serving
    tables: each of its partitions that holds a row is deleted whole, with a write timestamp above every row's
    (the reads are written ``USING TIMESTAMP source_version``, which a file may date after today), so no older
    write can reappear. Returns the rows deleted per table.

    The partitions are found by key (one query per month or year since :data:`FIRST_YEAR`, concurrently), not by
    scanning the table; the device reads, keyed by device, are found by a filtered scan of ``device_reads``
    (kept 90 days by its TTL), and the quarantine records naming the meter by a scan of ``quarantine``."""
    from cassandra.concurrent import execute_concurrent_with_args

    periods = meter_partitions(FIRST_YEAR, last_year)
    removed: dict[str, int] = {}
    for table, kind in METER_TABLES + (("device_reads", None),):
        if kind is None:
            found = session.execute(f"SELECT device_id, day, source_version FROM {keyspace}.device_reads "
                                    "WHERE meter_point = %s ALLOW FILTERING", (meter_point,), timeout=300)
            partitions: dict[tuple, list[int]] = {}
            for row in found:
                partitions.setdefault((row.device_id, row.day), []).append(row.source_version or 0)
            where = "device_id = ? AND day = ?"
        else:
            select = session.prepare(f"SELECT source_version FROM {keyspace}.{table} WHERE meter_point = ? "
                                     f"AND {kind} = ?")
            args = [(meter_point, p) for p in periods[kind]]
            results = execute_concurrent_with_args(session, select, args, concurrency=32)
            partitions = {}
            for (_, period), (ok, rows) in zip(args, results, strict=True):
                if not ok:
                    raise rows
                versions = [r.source_version or 0 for r in rows]
                if versions:
                    partitions[(meter_point, period)] = versions
            where = f"meter_point = ? AND {kind} = ?"
        delete = session.prepare(f"DELETE FROM {keyspace}.{table} USING TIMESTAMP ? WHERE {where}")
        for key, versions in partitions.items():
            session.execute(delete, (max(now_us, max(versions) + 1), *key))
        removed[table] = sum(len(v) for v in partitions.values())
    removed["quarantine"] = _erase_quarantine(session, keyspace, meter_point)
    return removed


def _erase_quarantine(session, keyspace: str, meter_point: str) -> int:
    """Delete the quarantine records whose line or detail names ``meter_point`` (a whole token): a scan of the
    table, which holds only the lines that failed their checks."""
    import re

    token = re.compile(r"(?<![0-9A-Za-z])" + re.escape(meter_point) + r"(?![0-9A-Za-z])")
    delete = session.prepare(f"DELETE FROM {keyspace}.quarantine WHERE source_file = ? AND source_line = ? "
                             "AND field = ?")
    found = 0
    for row in session.execute(f"SELECT source_file, source_line, field, raw, detail FROM {keyspace}.quarantine",
                               timeout=300):
        if token.search(row.raw or "") or token.search(row.detail or ""):
            session.execute(delete, (row.source_file, row.source_line, row.field))
            found += 1
    return found
