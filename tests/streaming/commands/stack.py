"""Helpers for the meter-command tests on the real stack: settings of their own, a service and a gateway."""
from __future__ import annotations

import threading
from pathlib import Path

from meterlake import config, ids
from streaming.commands import gateway, service
from tests.streaming import stackhelp


def meter_points(n: int, start: int = 1) -> list[str]:
    return [ids.make_mpan_core(20, 10_000_000 + start + i) for i in range(n)]


def write_registrations(path: Path, meter_points: list[str], prepay_capable: str = "") -> Path:
    lines = ["meter_point,gsp_group,supplier,profile_class,ssc,llfc,effective_from,prepay_capable"]
    lines += [f"{mp},_A,SUPA,1,0393,101,2020-01-01,{prepay_capable}" for mp in meter_points]
    path.write_text("\n".join(lines) + "\n")
    return path


#: the tariffs the tests' set_tariff commands name, loaded into each test lake (a command must name a loaded one)
TARIFFS = ("GO", "GO-2", "FIX-24", "OTHER", "T0", "T1", "T2")


def write_tariffs(path: Path, names=TARIFFS, unit_p: float = 20.0) -> Path:
    """A TOML of flat tariffs ``names`` at ``unit_p`` p/kWh, 50 p/day, from 2020."""
    path.write_text("".join(f'[tariffs.{n}]\nkind = "flat"\nstanding_p_per_day = 50\n[[tariffs.{n}.rates]]\n'
                            f'effective_from = "2020-01-01"\nunit_p = {unit_p}\n' for n in names))
    return path


def settings_for(base: config.Settings, registrations: Path, **meters) -> config.Settings:
    """``base`` with topics, groups, a keyspace and a lake of its own (with :data:`TARIFFS` loaded), and the
    registrations CSV."""
    from jobs.bill import inputs

    s = stackhelp.isolated(base, "meters")
    tag = s.cassandra.keyspace
    update = {"commands_topic": f"cmd-{tag}", "responses_topic": f"resp-{tag}", "partitions": 3,
              "registrations": str(registrations), "group_id": f"svc-{tag}", "gateway_group_id": f"gw-{tag}",
              "ack_timeout_s": 30.0, "gateway_delay_s": 0.2, **meters}
    s = s.model_copy(update={"meters": s.meters.model_copy(update=update)})
    inputs.load_tariffs(s, [write_tariffs(registrations.with_name("tariffs.toml"))])
    return s


class Running:
    """A function run in a thread until ``stop()``; ``result`` is what it returned."""

    def __init__(self, target, settings: config.Settings, **kwargs):
        self.event = threading.Event()
        self.result = None
        self.error: BaseException | None = None

        def body():
            try:
                self.result = target(settings, stop=self.event, **kwargs)
            except BaseException as exc:  # surfaced by stop()
                self.error = exc

        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 60):
        self.event.set()
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result


def run_service(settings: config.Settings, **kwargs) -> Running:
    return Running(service.run, settings, tick_s=0.2, **kwargs)


def run_gateway(settings: config.Settings, devices: Path, **kwargs) -> Running:
    return Running(gateway.run, settings, devices=devices, **kwargs)


def env(settings: config.Settings) -> dict[str, str]:
    """Environment variables that make a ``meterlake`` process use ``settings``, its [meters] section included."""
    m = settings.meters
    return {**stackhelp.env(settings), **{f"METERLAKE_METERS__{k.upper()}": str(v) for k, v in m.model_dump().items()
                                          if v is not None}}


def cli(settings: config.Settings, *args: str) -> tuple[int, dict]:
    """``meterlake ARGS... --json`` in-process: its exit code and the one JSON object it printed."""
    import json

    from click.testing import CliRunner

    from meterlake.cli import cli as command

    result = CliRunner().invoke(command, [*args, "--json"], env=env(settings), prog_name="meterlake")
    return result.exit_code, json.loads(result.stdout)
