"""`meterlake mirror` and `meterlake lake`: the Kafka mirror into the Parquet lake, compaction, and SQL over it.

Run: ``meterlake mirror run --until-caught-up``, ``meterlake lake compact``, ``meterlake lake sql "SELECT …"``,
``meterlake lake stats``; add ``--json`` for JSON. The work is in :mod:`streaming.mirror`; the lake's layout is
docs/lake.md.
"""
from __future__ import annotations

import click

from meterlake import clients
from meterlake.cli.output import catch_up_options, json_command, parse_date, progress, stop_event
from meterlake.errors import UsageError


@click.group()
def mirror() -> None:
    """The Kafka mirror: every read of meter-reads and device-reads into the Parquet lake, exactly once."""


@mirror.command("run")
@catch_up_options
@json_command
@click.pass_obj
def mirror_run(ctx, until_caught_up: bool, deadline_s: float | None):
    """Consume the reads topics into Parquet files partitioned by settlement date (paths.lake)."""
    from streaming.mirror.consumer import Mirror

    settings = ctx.settings
    stop = stop_event(on_signals=not until_caught_up)
    if not until_caught_up:
        progress(f"mirroring {', '.join(clients.topics(settings, clients.MIRRORED))} into "
                 f"{settings.lake_url}; Ctrl-C to stop")
    stats = Mirror(settings).run(until_caught_up=until_caught_up, stop=stop, deadline_s=deadline_s).to_json()
    summary = (f"{stats['reads']:,} reads from {stats['messages']:,} messages in {stats['seconds']:.1f}s: "
               f"{stats['files']} files written, {stats['files_skipped']} already there, "
               f"{stats['quarantined']} messages quarantined")
    return {"lake": settings.lake_url, **stats}, summary


@click.group()
def lake() -> None:
    """The Parquet lake: compaction, SQL (DuckDB) and statistics. Layout: docs/lake.md."""


def _compaction_lease(settings, lake):
    """On S3 (no exclusive create), the lake's compaction lease in Cassandra (docs/lake.md); elsewhere none."""
    import pyarrow.fs as pafs

    if not isinstance(lake.fs, pafs.S3FileSystem):
        return None
    from streaming.ingest.claims import held_lease

    return held_lease(settings, f"compaction:{lake.fs.type_name}:{lake.root}", lake.root,
                      "another compaction is running on this lake")


def _lake(ctx):
    from meterlake.lake.files import open_lake

    return open_lake(ctx.settings)


@lake.command("compact")
@click.option("--date", "day", help="Only this settlement date (YYYY-MM-DD); default every date.")
@json_command
@click.pass_obj
def lake_compact(ctx, day: str | None):
    """Merge each settlement date's small files and collapse duplicate reads, keeping superseded versions until no
    settlement run can need them (mirror.superseded_after_df_days); swap atomically."""
    from streaming.mirror import compact

    opts = ctx.settings.mirror
    lake = _lake(ctx)
    results = compact.compact(lake, [parse_date(day)] if day else None,
                              target_bytes=opts.compact_target_bytes, grace_s=opts.retire_grace_s,
                              horizon=compact.horizon_from(ctx.settings), lease=_compaction_lease(ctx.settings, lake))
    dates = [r.to_json() for r in results]
    done = [d for d in dates if d["compacted"]]
    summary = (f"{len(done)} of {len(dates)} settlement dates compacted: "
               f"{sum(d['inputs'] for d in done)} files into {sum(d['outputs'] for d in done)}, "
               f"{sum(d['collapsed'] for d in done):,} duplicate or expired superseded reads collapsed, "
               f"{sum(d['superseded_kept'] for d in dates):,} superseded versions kept for settlement runs")
    return {"dates": dates}, summary


#: ``lake sql``'s default row limit: a result is printed (and, with --json, held) whole.
SQL_ROW_LIMIT = 10_000


@lake.command("sql")
@click.argument("query")
@click.option("--limit", type=click.IntRange(min=0), default=SQL_ROW_LIMIT, show_default=True,
              help="Refuse a result of more rows than this (0: no limit); add LIMIT to the query to see the first.")
@json_command
@click.pass_obj
def lake_sql(ctx, query: str, limit: int):
    """Run SQL over the views `reads` (latest version of each read), `reads_all` (every live row) and the jobs'
    outputs `clean_reads`, `settlement`, `settlement_diff`, `quality`, `registry` (docs/jobs.md).

    Meter points, serials and device ids are pseudonyms in the lake; with the lake's key at hand (the local stack's,
    or lake.pseudonym_key_file) `pseudonym('<identifier>')` gives a known meter's: WHERE meter_point =
    pseudonym('2000012345670')."""
    import duckdb

    from meterlake import pseudonym
    from streaming.mirror import query as q

    try:
        pseudonyms = pseudonym.for_settings(ctx.settings)
    except UsageError:
        pseudonyms = None  # the views still work; only pseudonym() is missing
    try:
        result = q.sql(_lake(ctx), query, pseudonyms, limit=limit or None)
    except duckdb.Error as exc:
        raise UsageError(f"SQL failed: {exc}", query=query) from None
    except q.TooManyRows as exc:
        raise UsageError(f"{exc}: add LIMIT to the query, or raise --limit (0: no limit)", query=query,
                         limit=limit) from None
    lines = ["\t".join(result["columns"])] + ["\t".join("" if v is None else str(v) for v in row)
                                             for row in result["rows"]]
    return result, "\n".join(lines)


@lake.command("stats")
@json_command
@click.pass_obj
def lake_stats(ctx):
    """Live files, rows, bytes and settlement dates of the lake."""
    from streaming.mirror import query as q

    result = q.stats(_lake(ctx))
    dates = result["settlement_dates"]
    span = f"{dates[0]} .. {dates[-1]}" if dates else "none"
    summary = (f"{result['files']} live files, {result['rows']:,} rows, {result['bytes'] / 2**20:,.1f} MiB; "
               f"{len(dates)} settlement dates ({span})")
    return result, summary
