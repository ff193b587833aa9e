"""`meterlake store`: the event store in Cassandra, fed from Kafka.

Run: ``meterlake store run [--until-caught-up] [--json]``, ``meterlake store stats [--json]``. The work is in
:mod:`streaming.store` (the keyspace's design is :mod:`meterlake.keyspace`).
"""
from __future__ import annotations

import click

from meterlake.cli.output import catch_up_options, json_command, progress, stop_event


@click.group()
def store() -> None:
    """The event store: reads from Kafka into Cassandra, idempotently (USING TIMESTAMP source_version)."""


@store.command("run")
@catch_up_options
@json_command
@click.pass_obj
def store_run(ctx, until_caught_up: bool, deadline_s: float | None):
    """Consume meter-reads, device-reads and meter-quarantine (read_committed) into the keyspace; offsets are
    committed only after the writes are acknowledged."""
    from streaming.store import consumer

    settings = ctx.settings
    stop = stop_event(on_signals=not until_caught_up)
    if not until_caught_up:
        progress(f"storing {', '.join(consumer.topics(settings))} into keyspace {settings.cassandra.keyspace}; "
                 "Ctrl-C to stop")
    data = consumer.run(settings, until_caught_up=until_caught_up, stop=stop, deadline_s=deadline_s).as_dict()
    rows = ", ".join(f"{n:,} {table}" for table, n in data["rows"].items()) or "no rows"
    summary = (f"{data['messages']:,} messages in {data['seconds']:.1f}s: {rows}; "
               f"{data['incompatible_messages']} incompatible, {data['retried_writes']} writes retried")
    return {"keyspace": settings.cassandra.keyspace, **data}, summary


@store.command("stats")
@json_command
@click.pass_obj
def store_stats(ctx):
    """Rows per table, interval reads held, file claims by outcome and quarantine reasons (a full scan)."""
    from streaming.store import consumer

    return consumer.stats(ctx.settings)
