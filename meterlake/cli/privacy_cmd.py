"""`meterlake privacy`: data protection operations: erase a meter (the right to erasure) and apply retention.

Run: ``meterlake privacy erase --meter-point M --reason R [--json]`` and ``meterlake privacy retention [--dry-run]
[--json]``. The steps live below the CLI: the erasure list and the archive in :mod:`meterlake.privacy`, Cassandra in
:func:`meterlake.keyspace.erase_meter`, the reads' partitions in :mod:`streaming.mirror.compact`, the jobs' outputs
in :mod:`jobs.privacy`; docs/privacy.md tells the whole story.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from meterlake.cli.output import json_command, progress
from meterlake.errors import UsageError
from meterlake.instants import parse_instant


@click.group()
def privacy() -> None:
    """Data protection: erase a meter's reads everywhere (UK GDPR right to erasure); apply the retention
    settings (lake.retention_days, archive.retention_days). See docs/privacy.md."""


def _check_meter_point(meter_point: str) -> None:
    from meterlake import ids

    if ids.meter_point_problem(meter_point)[1] is not None and ids.lcl_problem(meter_point) is not None:
        raise UsageError(f"--meter-point {meter_point!r} is not an MPAN core, an MPRN or an LCL household id",
                         meter_point=meter_point)


def _erase_store(settings, meter_point: str, now: datetime) -> dict[str, int]:
    from meterlake import clients, keyspace, schema

    session = clients.cassandra_session(settings, consistency=settings.cassandra.write_consistency)
    try:
        ks = settings.cassandra.keyspace
        keyspace.ensure(session, ks, settings.cassandra.replication_factor)
        return keyspace.erase_meter(session, ks, meter_point, now_us=schema.epoch_us(now), last_year=now.year + 1)
    finally:
        session.cluster.shutdown()


@privacy.command("erase")
@click.option("--meter-point", required=True, metavar="M", help="The meter point (MPAN core, MPRN, LCL id) in clear.")
@click.option("--reason", required=True, metavar="R", help="Why (kept in the audit record), e.g. a request's id.")
@click.option("--keep-archive", is_flag=True, help="Leave the archive's files naming the meter (default: delete "
                                                    "them; they are the sources' bytes and cannot be rewritten).")
@json_command
@click.pass_obj
def privacy_erase(ctx, meter_point: str, reason: str, keep_archive: bool):
    """Erase a meter: put it on the erasure list (ingest then drops its reads, so replaying an archived file
    cannot bring them back), delete its reads from Cassandra (the event store and the serving tables), rewrite
    every lake partition and job output holding it without it (atomically, as compaction does), delete the
    archived files naming it, and keep an audit record by pseudonym. The dbt marts lose it on the next
    `meterlake models build`.

    \b
    Example: meterlake privacy erase --meter-point 1200000000014 --reason "SAR-2291" --json
    """
    from jobs import privacy as outputs
    from meterlake import privacy as priv
    from meterlake import pseudonym
    from meterlake.cli.mirror_cmd import _compaction_lease
    from meterlake.lake.files import open_lake
    from streaming.mirror import compact

    _check_meter_point(meter_point)
    if not reason.strip():
        raise UsageError("--reason must say why")
    settings = ctx.settings
    pseudonym_ = pseudonym.for_settings(settings).one(meter_point)
    lake = open_lake(settings)
    now = datetime.now(UTC)
    # on the list first: no ingest worker publishes the meter's reads while they are removed
    listed = priv.write_record(lake, pseudonym_, reason, now, {"status": "listed"})
    progress(f"{pseudonym_} is on the erasure list ({listed}); removing its reads ...")
    store = _erase_store(settings, meter_point, now)
    opts = settings.mirror
    dates = compact.erase(lake, pseudonym_, target_bytes=opts.compact_target_bytes,
                          horizon=compact.horizon_from(settings), lease=_compaction_lease(settings, lake))
    lake_dates = [{"settlement_date": r.settlement_date, "rows": r.dropped} for r in dates]
    changed = outputs.erase_meter(lake, pseudonym_)
    fs, root = priv.archive(settings)
    scanned, naming = priv.archived_files_naming(fs, root, meter_point)
    if not keep_archive:
        priv.delete_archived(fs, naming)
    removed = {"store": store, "lake_rows": sum(d["rows"] for d in lake_dates), "lake_dates": len(lake_dates),
               "outputs": {c["output"]: c["rows"] for c in changed},
               "archive_files": 0 if keep_archive else len(naming)}
    record = priv.write_record(lake, pseudonym_, reason, datetime.now(UTC), {"status": "erased", **removed})
    result = {"meter_point": pseudonym_, "reason": reason, "erased_at": now, "record": record, "store": store,
              "lake": {"dates": lake_dates, "rows": removed["lake_rows"]}, "outputs": changed,
              "archive": {"scanned": scanned, "naming": naming, "deleted": not keep_archive}}
    summary = (f"{pseudonym_} erased ({reason}): {sum(store.values()):,} Cassandra rows "
               f"({', '.join(f'{t} {n}' for t, n in store.items())}), {removed['lake_rows']:,} lake rows on "
               f"{len(lake_dates)} date(s), {len(changed)} job output(s) rewritten, {len(naming)} archived file(s) "
               f"{'kept' if keep_archive else 'deleted'} of {scanned}; audit record {record}; the marts lose it on "
               "the next `meterlake models build`")
    return result, summary


@privacy.command("retention")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--now", "now_text", metavar="INSTANT", help="The instant the retention periods end at "
                                                           "(default: the clock).")
@json_command
@click.pass_obj
def privacy_retention(ctx, dry_run: bool, now_text: str | None):
    """Remove what is older than the retention settings: settlement dates (their reads and every job output
    partitioned by them) older than lake.retention_days, and archived files processed longer ago than
    archive.retention_days. Each date goes atomically (a manifest with nothing live first, then its files; an
    output's pointers, then its versions). A setting left empty keeps everything.

    \b
    Example: meterlake privacy retention --dry-run --json
    """
    from jobs import privacy as outputs
    from meterlake import privacy as priv
    from meterlake.cli.mirror_cmd import _compaction_lease
    from meterlake.lake.files import open_lake
    from streaming.mirror import compact

    settings = ctx.settings
    now = parse_instant(now_text, name="--now") if now_text else datetime.now(UTC)
    lake_days, archive_days = settings.lake.retention_days, settings.archive.retention_days
    lake_part = {"retention_days": lake_days, "before": None, "dates": [], "outputs": []}
    if lake_days is not None:
        lake = open_lake(settings)
        before = priv.cutoff(now.date(), lake_days)
        lake_part["before"] = before
        days = [d for d in lake.dates() if d < before]
        slots = outputs.expired_slots(lake, before)
        if dry_run:
            for d in days:
                listing = lake.date_listing(d)
                lake_part["dates"].append({"settlement_date": d, "files": len(listing),
                                           "bytes": sum(i.size or 0 for i in listing)})
            lake_part["outputs"] = [{"output": s, "files": None} for s in slots]
        else:
            lake_part["dates"] = compact.drop_dates(lake, days, lease=_compaction_lease(settings, lake))
            lake_part["outputs"] = [{"output": s, "files": outputs.drop_slot(lake, s)} for s in slots]
    archive_part = {"retention_days": archive_days, "before": None, "files": []}
    if archive_days is not None:
        fs, root = priv.archive(settings)
        before_at = now - timedelta(days=archive_days)
        archive_part["before"] = before_at
        expired = priv.expired_archive_files(fs, root, before_at)
        if not dry_run:
            priv.delete_archived(fs, [i.path for i in expired])
        archive_part["files"] = [{"path": i.path, "bytes": i.size} for i in expired]
    verb = "would remove" if dry_run else "removed"
    summary = (f"{verb}: {len(lake_part['dates'])} settlement date(s) of reads and {len(lake_part['outputs'])} "
               f"job output partition(s) before {lake_part['before'] or '(lake.retention_days unset)'}; "
               f"{len(archive_part['files'])} archived file(s) before "
               f"{archive_part['before'] or '(archive.retention_days unset)'}")
    return {"dry_run": dry_run, "lake": lake_part, "archive": archive_part}, summary
