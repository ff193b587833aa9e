"""The scripting contract: a readable summary by default, exactly one JSON object on stdout with ``--json``.

Logs and progress go to stderr. Errors: exit code non-zero; with ``--json`` the one object is
``{"error": {"type": ..., "message": ..., ...details}}``, also for an unexpected error (``type`` ``unexpected``;
its traceback goes to stderr).
"""
from __future__ import annotations

import functools
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import click

from meterlake.errors import MeterlakeError, UsageError
from meterlake.jsontext import dumps
from meterlake.jsontext import plain_value as _default

log = logging.getLogger("meterlake")


def parse_date(text: str) -> date:
    """A YYYY-MM-DD argument or option as a date; anything else is a usage error."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"not a date: {text!r} (expected YYYY-MM-DD)", value=text) from None


def stop_event(on_signals: bool) -> threading.Event:
    """An event for a long-running command's loop; with ``on_signals``, SIGINT and SIGTERM set it (a clean stop)."""
    stop = threading.Event()
    if on_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    return stop


def catch_up_options(command: Callable) -> Callable:
    """``--until-caught-up`` and ``--deadline``, as the stages consuming Kafka take them (``mirror run``,
    ``store run``)."""
    command = click.option(
        "--deadline", "deadline_s", type=click.FloatRange(min=0, min_open=True), default=None,
        help="With --until-caught-up: fail (naming the partitions and their lag) if not caught up in this many "
             "seconds.")(command)
    return click.option("--until-caught-up", is_flag=True,
                        help="Exit once the topics are drained (else run until Ctrl-C).")(command)


def progress(message: str) -> None:
    """Progress for people; stderr, so it never mixes with --json output."""
    click.echo(message, err=True)


def json_command(func: Callable[..., dict | tuple[dict, str]]) -> Callable:
    """Decorate a click command body that returns ``result`` or ``(result, summary)``.

    Adds ``--json``; prints the summary (or the result as ``key: value`` lines) or the JSON object; maps
    :class:`MeterlakeError` to a clean message and exit code.
    """

    @click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
    @functools.wraps(func)
    def wrapper(*args, as_json: bool = False, **kwargs):
        try:
            out = func(*args, **kwargs)
        except MeterlakeError as exc:
            if as_json:
                click.echo(dumps({"error": {"type": exc.type, "message": exc.message, **exc.details}}))
            else:
                click.echo(f"error: {exc.message}", err=True)
                for key, value in exc.details.items():
                    click.echo(f"  {key}: {value}", err=True)
            sys.exit(exc.code)
        except Exception as exc:  # a bug or an unforeseen failure: scripts still get their one object
            if not as_json:
                raise
            log.error("unexpected error", exc_info=True)  # the traceback goes to stderr
            click.echo(dumps({"error": {"type": "unexpected", "message": f"{type(exc).__name__}: {exc}"}}))
            sys.exit(1)
        result, summary = out if isinstance(out, tuple) else (out, None)
        if as_json:
            click.echo(dumps(result))
        else:
            click.echo(summary if summary is not None else _plain(result))

    return wrapper


def _plain(result: dict, indent: str = "") -> str:
    lines = []
    for key, value in result.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.append(_plain(value, indent + "  "))
        else:
            text = _default(value) if isinstance(value, date | datetime | Path) else value
            lines.append(f"{indent}{key}: {text}")
    return "\n".join(lines)
