"""N commands to N meters through the gateway simulator on the real stack, with rejections, lost sends, and the
gateway then the service killed (SIGKILL) and restarted mid-run: every command ends acknowledged, rejected or
expired, none is lost or duplicated, and the kills change no outcome.

N is 100 here (about a minute on top of the stack); ``METERLAKE_TEST_METER_COMMANDS=1000`` runs the issue's full
1,000-command run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import pytest

from streaming.commands import gateway, service
from tests.streaming import stackhelp
from tests.streaming.commands import stack

pytestmark = [pytest.mark.stack, pytest.mark.slow]

N = int(os.environ.get("METERLAKE_TEST_METER_COMMANDS", "100"))
SEED, REJECT, DROP, ATTEMPTS = 11, 0.05, 0.05, 3


def start(settings, log, *args):
    """``meterlake meters ARGS --json`` as a process of its own (so it can be SIGKILLed)."""
    return subprocess.Popen([sys.executable, "-c", "from meterlake.cli import main; main()", "meters", *args,
                             "--json"], env=stack.env(settings), stdout=log, stderr=subprocess.STDOUT)


def open_count(settings) -> int:
    return stackhelp.query(settings, "SELECT count(*) FROM {ks}.meter_commands_open")[0][0]


def test_every_command_ends_once_whatever_happens_to_the_gateway_and_the_service(kafka_stack, cassandra_stack,
                                                                                 tmp_path):
    mps = stack.meter_points(N, start=5000)
    settings = stack.settings_for(cassandra_stack, stack.write_registrations(tmp_path / "reg.csv", mps),
                                  ack_timeout_s=10.0, max_attempts=ATTEMPTS, expire_after_s=120.0,
                                  gateway_delay_s=0.3, gateway_reject_rate=REJECT, gateway_drop_rate=DROP,
                                  gateway_seed=SEED, instance_id="service-1")
    devices = tmp_path / "devices.json"
    submitted: dict = {}
    tables = service.open_tables(settings)

    def submit_in_waves():  # 20 commands every half second, as a busy operator team might
        for k, mp in enumerate(mps):
            kind, params = [("set_read_interval", {"interval": "30min"}), ("set_tariff", {"tariff": f"T{k % 3}"}),
                            ("set_prepay_mode", {"mode": "prepayment"})][k % 3]
            tracked, _ = service.submit(settings, mp, kind, params, idempotency_key=f"fleet-{k}", tables=tables)
            submitted[tracked.command.command_id] = mp
            if k % 20 == 19:
                time.sleep(0.5)

    def finished() -> int:
        return len(submitted) - open_count(settings)

    def kill_and_restart(process, at_least: int, *args):
        while finished() < at_least:
            assert time.monotonic() - began < 300, f"no progress: {finished()} finished"
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)  # as a crash would: nothing flushed, nothing committed
        process.wait(30)
        time.sleep(1.0)
        return start(settings, log, *args)

    log = open(tmp_path / "processes.log", "wb")
    gw = start(settings, log, "gateway", "--devices", str(devices))
    svc = start(settings, log, "run")
    submitter = threading.Thread(target=submit_in_waves)
    began = time.monotonic()
    try:
        submitter.start()
        gw = kill_and_restart(gw, N // 3, "gateway", "--devices", str(devices))
        svc = kill_and_restart(svc, 2 * N // 3, "run")
        submitter.join(300)
        while open_count(settings) > 0:
            assert time.monotonic() - began < 600, f"{open_count(settings)} commands still open"
            time.sleep(0.5)
    finally:
        for process in (svc, gw):
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        log.close()
        tables.session.cluster.shutdown()
    print(f"{N} commands in {time.monotonic() - began:.1f}s")
    print((tmp_path / "processes.log").read_text()[-3000:])
    assert len(submitted) == N

    # every command: one submitted row, sends 1..k, exactly one terminal row; nothing else in the tables
    rows = stackhelp.query(settings, "SELECT command_id, state, attempt FROM {ks}.meter_commands")
    by_command: dict = {}
    for r in rows:
        by_command.setdefault(r.command_id, []).append((r.state, r.attempt))
    assert set(by_command) == set(submitted)
    final = {}
    for cid, history in by_command.items():
        states = Counter(s for s, _ in history)
        terminal = [s for s in states if s in ("acknowledged", "rejected", "expired")]
        assert len(terminal) == 1 and states[terminal[0]] == 1, (cid, history)
        assert states["submitted"] == 1
        assert sorted(a for s, a in history if s == "sent") == list(range(1, states["sent"] + 1))
        assert states["sent"] <= ATTEMPTS
        final[cid] = terminal[0]

    # each outcome is the one the meters' side gave, as if the gateway had never been killed
    def expected(cid):
        if all(gateway.decide(SEED, cid, a, REJECT, DROP) == "drop" for a in range(1, ATTEMPTS + 1)):
            return "expired"
        return "rejected" if gateway.decide(SEED, cid, 1, REJECT, 0.0) == "reject" else "acknowledged"

    assert final == {cid: expected(cid) for cid in submitted}
    counts = Counter(final.values())
    assert counts["rejected"] > 0 and counts["acknowledged"] > N * 0.85

    # the answers on the responses topic agree; each acknowledged command was applied once, the others never
    answers = [json.loads(r.value) for r in stackhelp.consume(settings, settings.meters.responses_topic)]
    outcome_of = {"ack": "acknowledged", "reject": "rejected"}
    for a in answers:
        assert final[uuid.UUID(a["command_id"])] == outcome_of[a["outcome"]]
    applied = Counter(cid for m in json.loads(devices.read_text()).values() for cid in m["applied"])
    assert set(applied.values()) == {1}
    assert set(applied) == {str(cid) for cid, s in final.items() if s == "acknowledged"}
