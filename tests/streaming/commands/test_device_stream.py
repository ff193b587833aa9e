"""The simulated meters' side: the gateway's decisions and state, and the device stream a setting changes."""
from __future__ import annotations

import csv
import json
import uuid
from datetime import UTC, date, datetime

import pyarrow.compute as pc

from meterlake.generate import Options, generate
from streaming.commands import gateway
from streaming.ingest import validated_file

T = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_the_gateways_decisions_are_the_same_every_time_and_near_their_rates():
    ids = [uuid.UUID(int=n) for n in range(4000)]
    first = [gateway.decide(7, cid, 1, 0.05, 0.05) for cid in ids]
    assert first == [gateway.decide(7, cid, 1, 0.05, 0.05) for cid in ids]
    assert 0.035 < first.count("reject") / len(ids) < 0.065
    assert 0.035 < first.count("drop") / len(ids) < 0.065
    # a rejection is the command's fate on every attempt; a drop is one send's
    rejected = [cid for cid, d in zip(ids, first, strict=True) if d == "reject"]
    assert all(gateway.decide(7, cid, 2, 0.05, 0.0) == "reject" for cid in rejected)
    dropped = [cid for cid, d in zip(ids, first, strict=True) if d == "drop"]
    assert sum(gateway.decide(7, cid, 2, 0.05, 0.05) == "drop" for cid in dropped) < len(dropped) / 4


def test_a_command_delivered_again_is_applied_once(tmp_path):
    devices = gateway.Devices.load(tmp_path / "devices.json")
    credit = {"command_id": str(uuid.UUID(int=1)), "meter_point": "2000012345670", "kind": "add_credit",
              "params": {"amount_pence": "500"}, "attempt": 1}
    interval = {"command_id": str(uuid.UUID(int=2)), "meter_point": "2000012345670", "kind": "set_read_interval",
                "params": {"interval": "30min"}, "attempt": 1}
    assert devices.apply(credit, T) and devices.apply(interval, T)
    devices.save()
    again = gateway.Devices.load(tmp_path / "devices.json")  # a restarted gateway
    assert not again.apply({**credit, "attempt": 2}, T)
    assert again.meters["2000012345670"]["credit_pence"] == 500
    assert again.meters["2000012345670"]["settings"]["read_interval"] == {"interval": "30min",
                                                                          "since": "2026-03-01T09:00:00Z"}


def _electricity_meters(out) -> list[str]:
    with open(out / "registry.csv", newline="") as f:
        return [r["meter_point"] for r in csv.DictReader(f) if r["ssc"]]


def test_a_meter_set_to_half_hourly_sends_half_hourly_reads_in_the_device_stream(tmp_path):
    base = Options(meters=6, days=2, start=date(2024, 10, 26), seed=3, device_meters=0, lcl_meters=0, defects={},
                   gas_share=0.0)
    generate(base, tmp_path / "before")
    assert not (tmp_path / "before" / "device").exists()
    half_hourly, daily = _electricity_meters(tmp_path / "before")[:2]
    # set to 30 min from the start of 2024-10-27 (the autumn clock change: 50 half-hours), daily from the start
    options = Options(**{**base.__dict__, "read_intervals": {half_hourly: ("2024-10-26T23:00:00Z", "30min"),
                                                           daily: ("2024-10-25T00:00:00Z", "daily")}})
    manifest = generate(options, tmp_path / "after")
    now = datetime.fromisoformat(manifest["valid_as_of"])
    per_day = {}
    for day in ("20241026", "20241027"):
        with validated_file(tmp_path / "after" / "device" / f"DEV_{day}.jsonl", now=now) as validated:
            assert validated.result.quarantined == 0
            reads = validated.reads_table()
        per_day[day] = {mp: reads.filter(pc.equal(reads.column("meter_point"), mp)).to_pylist()
                        for mp in (half_hourly, daily)}
    assert [len(per_day[d][half_hourly]) for d in per_day] == [0, 50]
    assert [len(per_day[d][daily]) for d in per_day] == [1, 1]
    counter = [r["value"] for r in per_day["20241027"][half_hourly]]
    assert counter == sorted(counter) and counter[0] < counter[-1]
    assert {r["unit"] for r in per_day["20241027"][half_hourly]} == {"Wh"}
    # the rest of the portfolio is as it was
    for name in ("registry.csv", "hh/HH_20241027_0000_v1.csv"):
        assert (tmp_path / "after" / name).read_bytes() == (tmp_path / "before" / name).read_bytes()
    assert json.loads((tmp_path / "after" / "manifest.json").read_text())["options"]["read_intervals"]


def test_generate_takes_the_gateways_device_settings(tmp_path):
    from click.testing import CliRunner

    from meterlake.cli import cli

    generate(Options(meters=3, days=1, start=date(2024, 1, 1), seed=3, gas_share=0.0, defects={}), tmp_path / "p")
    mp = _electricity_meters(tmp_path / "p")[0]
    devices = gateway.Devices.load(tmp_path / "devices.json")
    devices.apply({"command_id": str(uuid.UUID(int=1)), "meter_point": mp, "kind": "set_read_interval",
                   "params": {"interval": "30min"}, "attempt": 1}, datetime(2024, 1, 1, 12, 0, tzinfo=UTC))
    devices.save()
    result = CliRunner().invoke(cli, ["generate", "--meters", "3", "--days", "1", "--start", "2024-01-01", "--seed",
                                      "3", "--gas-share", "0", "--no-defects", "--device-settings",
                                      str(tmp_path / "devices.json"), "--out", str(tmp_path / "q"), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "q" / "device" / "DEV_20240101.jsonl").read_text().splitlines()]
    esme = [e["ts"] for e in lines if e["meter_point"] == mp and e["device_id"].startswith("esme-")]
    assert esme[0] == "2024-01-01T12:00:00Z" and len(esme) == 24  # the half-hours from noon
