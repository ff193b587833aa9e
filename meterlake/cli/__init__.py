"""The ``meterlake`` command: the product's public face.

Every command has ``--help``; every command prints a readable summary, or with ``--json`` exactly one JSON object on
stdout. Subcommands import their heavy dependencies (Spark, drivers) only when they run, so ``--help`` stays fast.
"""
from __future__ import annotations

import logging

import click

from meterlake import __version__
from meterlake import config as config_mod
from meterlake.cli.output import json_command


class Context:
    """What every subcommand gets: the effective settings, loaded once and pointed at the local stack once."""

    def __init__(self, config_path: str | None):
        self._config_path = config_path
        self._configured = None
        self._settings = None

    @property
    def configured(self) -> config_mod.Settings:
        """The settings as the file and the environment give them."""
        if self._configured is None:
            self._configured = config_mod.load(self._config_path)
        return self._configured

    @property
    def settings(self) -> config_mod.Settings:
        """:attr:`configured`, with what it leaves empty filled from the local stack (the one discovery step)."""
        if self._settings is None:
            from infra.local.discover import discover

            self._settings = discover(self.configured)
        return self._settings


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="meterlake")
@click.option("--config", "config_path", envvar=config_mod.CONFIG_ENV, type=click.Path(dir_okay=False),
              help="Config file (default: ./meterlake.toml when present). Env: METERLAKE_CONFIG.")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """meterlake: smart-meter analytics and reporting.

    Reads flow from files and devices through Kafka into Cassandra and a Parquet lake; Spark jobs, dbt, dashboards
    and notebooks work off the lake. Add --json to any command for one JSON object on stdout.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        # kafka-python warns on every SASL/PLAIN connection over loopback, and logs retries as errors.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
        # cassandra-driver logs every refused probe while a node starts (readiness checks expect them).
        logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    ctx.obj = Context(config_path)


@cli.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("show")
@json_command
@pass_ctx
def config_show(ctx: Context):
    """Print the effective configuration (file + environment overrides; secrets masked)."""
    settings = ctx.configured
    data = {"source": str(settings.source) if settings.source else None, **settings.public_dict()}
    return data


def _register() -> None:
    from meterlake.cli import (
        bill_cmd,
        calendar_cmd,
        dashboards_cmd,
        demo_cmd,
        generate_cmd,
        ingest_cmd,
        job_cmd,
        meters_cmd,
        mirror_cmd,
        models_cmd,
        privacy_cmd,
        report_cmd,
        runs_cmd,
        schedule_cmd,
        stack_cmd,
        store_cmd,
    )

    cli.add_command(calendar_cmd.calendar)
    cli.add_command(stack_cmd.stack)
    cli.add_command(ingest_cmd.ingest)
    cli.add_command(generate_cmd.generate)
    cli.add_command(mirror_cmd.mirror)
    cli.add_command(mirror_cmd.lake)
    cli.add_command(demo_cmd.demo)
    cli.add_command(store_cmd.store)
    cli.add_command(job_cmd.job)
    cli.add_command(job_cmd.registry)
    cli.add_command(models_cmd.models)
    cli.add_command(meters_cmd.meters)
    cli.add_command(bill_cmd.mdd)
    cli.add_command(bill_cmd.tariffs)
    cli.add_command(bill_cmd.accounts)
    cli.add_command(dashboards_cmd.dashboards)
    cli.add_command(report_cmd.report)
    cli.add_command(schedule_cmd.schedule)
    cli.add_command(runs_cmd.runs)
    cli.add_command(privacy_cmd.privacy)


_register()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="meterlake")
