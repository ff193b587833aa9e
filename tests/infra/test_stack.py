"""The stack's process management on a real (cheap) service: Kafka. Its own state dir and ports."""
from __future__ import annotations

import os
import socket
import time

import psutil
import pytest

from infra.local import stack, versions
from meterlake.errors import ServiceError, UsageError
from tests.conftest import _test_settings

pytestmark = pytest.mark.stack


def _ours(state_dir) -> list[psutil.Process]:
    mark = f"-Dmeterlake.home={state_dir}"
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(arg.startswith(mark) for arg in (p.info["cmdline"] or [])):
            found.append(p)
    return found


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    offset = int(os.environ.get("METERLAKE_TEST_PORT_OFFSET", "1000")) + 200
    settings = _test_settings(tmp_path_factory.mktemp("own-stack"), offset, services=["kafka"])
    yield settings
    stack.down(settings)


def test_up_twice_leaves_the_running_process_alone(own):
    first = stack.up(own)
    second = stack.up(own)
    assert [r["pid"] for r in first] == [r["pid"] for r in second]
    assert first[0]["state"] == "ready"


def test_a_killed_process_is_reported_dead_and_comes_back_with_its_data(own):
    from kafka.admin import KafkaAdminClient, NewTopic

    from infra.local import kafka

    stack.up(own)
    opts = kafka.client_options(stack.context(own))
    admin = KafkaAdminClient(**opts)
    admin.create_topics([NewTopic("survives-a-crash", num_partitions=1, replication_factor=1)])
    admin.close()

    killed = stack.kill(own, "kafka-1")
    assert killed["state"] == "killed"
    assert [r["state"] for r in stack.status(own)] == ["dead"]

    back = stack.start(own, "kafka-1")
    assert back["state"] == "ready"
    admin = KafkaAdminClient(**opts)
    assert "survives-a-crash" in admin.list_topics()
    admin.close()


def test_growing_a_one_broker_stack_is_refused_at_once_saying_what_to_do(own):
    # GIVEN a state dir whose Kafka was made with one broker (it runs)
    stack.up(own)
    grown = own.model_copy(update={"stack": own.stack.model_copy(update={"kafka_brokers": 3})})
    # WHEN it is brought up with three
    started = time.monotonic()
    with pytest.raises(UsageError) as err:
        stack.up(grown)
    # THEN it is refused at once, saying what to do, and no new broker was started
    assert time.monotonic() - started < 10
    assert "made with 1 node" in err.value.message and "--kafka-brokers 1" in err.value.message
    assert (err.value.details["made_with"], err.value.details["asked"]) == (1, 3)
    names = {arg for p in _ours(own.state_dir) for arg in p.cmdline() if arg.startswith("-Dmeterlake.home=")}
    assert names == {f"-Dmeterlake.home={own.state_dir / 'kafka-1'}"}


def test_down_leaves_no_process_behind(own):
    stack.up(own)
    assert len(_ours(own.state_dir)) == 1
    stopped = stack.down(own)
    assert [s["name"] for s in stopped] == ["kafka-1"]
    assert _ours(own.state_dir) == []


def test_a_taken_port_is_a_clear_error_naming_the_service(tmp_path):
    offset = int(os.environ.get("METERLAKE_TEST_PORT_OFFSET", "1000")) + 300
    settings = _test_settings(tmp_path, offset, services=["kafka"])
    port = versions.service("kafka")["client_port"] + offset
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(ServiceError) as err:
            stack.up(settings)
    assert "kafka-1" in err.value.message and str(port) in err.value.message
    assert err.value.details["service"] == "kafka"
    assert _ours(tmp_path) == []


def test_a_service_that_cannot_start_reports_its_log_tail(tmp_path, monkeypatch):
    offset = int(os.environ.get("METERLAKE_TEST_PORT_OFFSET", "1000")) + 400
    settings = _test_settings(tmp_path, offset, services=["kafka"])
    monkeypatch.setitem(versions.service("kafka"), "heap", "lots")  # the JVM refuses "-Xmxlots"
    try:
        with pytest.raises(ServiceError) as err:
            stack.up(settings)
    finally:
        stack.down(settings)
    assert err.value.details["service"] == "kafka"
    assert "Invalid" in err.value.details["log_tail"] or "heap" in err.value.details["log_tail"].lower()
    assert _ours(tmp_path) == []


def test_a_failed_up_stops_the_processes_it_started(tmp_path, monkeypatch):
    # GIVEN Kafka that starts, and then a Cassandra that cannot
    offset = int(os.environ.get("METERLAKE_TEST_PORT_OFFSET", "1000")) + 450
    settings = _test_settings(tmp_path, offset, services=["kafka", "cassandra"])
    monkeypatch.setitem(versions.service("cassandra"), "heap", "lots")  # the JVM refuses "-Xmxlots"
    try:
        with pytest.raises(ServiceError) as err:
            stack.up(settings)
        # THEN the Kafka it started is stopped too: nothing is left running
        assert err.value.details["service"] == "cassandra"
        assert _ours(tmp_path) == []
    finally:
        stack.down(settings)
