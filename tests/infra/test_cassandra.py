"""The local Cassandra: its rendered configuration, a real node's security, failures that name their cause."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable

from infra.local import cassandra, process, stack
from infra.local.topology import StackContext
from meterlake import clients
from meterlake.errors import ServiceError
from tests.conftest import _test_settings


def test_node_2_of_3_listens_on_its_own_address_and_joins_through_node_1():
    # GIVEN the second node of a three-node ring
    # WHEN its cassandra.yaml is rendered
    text = cassandra.render_cassandra_yaml(node=2, native_port=9042, storage_port=7000,
                                           data_dir="/state/cassandra-2/data")
    conf = yaml.safe_load(text)
    # THEN it listens on 127.0.0.2, seeds from node 1, starts without bootstrap and refuses anonymous clients
    assert conf["listen_address"] == "127.0.0.2"
    assert conf["rpc_address"] == "127.0.0.2"
    assert conf["seed_provider"][0]["parameters"][0]["seeds"] == "127.0.0.1:7000"
    assert conf["auto_bootstrap"] is False
    assert conf["authenticator"] == "PasswordAuthenticator"
    assert conf["authorizer"] == "CassandraAuthorizer"
    assert conf["hinted_handoff_enabled"] is True
    assert conf["native_transport_port"] == 9042
    assert conf["storage_port"] == 7000
    assert conf["data_file_directories"] == ["/state/cassandra-2/data/data"]
    assert conf["commitlog_directory"] == "/state/cassandra-2/data/commitlog"
    assert conf["hints_directory"] == "/state/cassandra-2/data/hints"
    assert conf["saved_caches_directory"] == "/state/cassandra-2/data/saved_caches"


def test_each_node_has_its_own_address_home_and_jmx_port(tmp_path: Path):
    # GIVEN a three-node ring at port offset 3000
    settings = _test_settings(tmp_path, 3000, cassandra_nodes=3)
    ctx = StackContext(settings=settings,
                       secrets={"cassandra_username": "meterlake", "cassandra_password": "pw"})
    # WHEN its processes are described (nothing starts)
    procs = cassandra.processes(ctx)
    # THEN every node shares the CQL and storage ports on its own address, with one JMX port each
    assert [p.name for p in procs] == ["cassandra-1", "cassandra-2", "cassandra-3"]
    assert [p.address for p in procs] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert [p.ports for p in procs] == [
        {"native": 12042, "storage": 10000, "jmx": 10199},
        {"native": 12042, "storage": 10000, "jmx": 10299},
        {"native": 12042, "storage": 10000, "jmx": 10399},
    ]
    assert procs[1].home == tmp_path / "cassandra-2"
    assert "-Dcassandra.jmx.local.port=10299" in procs[1].jvm_options
    assert "-Xmx768m" in procs[1].jvm_options
    assert cassandra.contact_points(ctx) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert cassandra.native_port(ctx) == 12042


@pytest.mark.stack
def test_the_stacks_user_writes_and_reads_a_row(cassandra_stack):
    session = clients.cassandra_session(cassandra_stack, consistency="ONE")
    try:
        session.execute("CREATE KEYSPACE IF NOT EXISTS smoke WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute("CREATE TABLE IF NOT EXISTS smoke.reads "
                        "(meter_id text PRIMARY KEY, energy_kwh double)")
        session.execute("INSERT INTO smoke.reads (meter_id, energy_kwh) VALUES (%s, %s)", ("M-001", 0.5))
        row = session.execute("SELECT energy_kwh FROM smoke.reads WHERE meter_id = %s", ("M-001",)).one()
    finally:
        session.cluster.shutdown()
    assert row.energy_kwh == 0.5


def _connect_error(settings, auth_provider) -> Exception:
    ctx = stack.context(settings)
    cluster = Cluster(["127.0.0.1"], port=cassandra.native_port(ctx), auth_provider=auth_provider,
                      protocol_version=5, connect_timeout=10)
    try:
        cluster.connect()
    except NoHostAvailable as exc:
        return next(iter(exc.errors.values()))
    finally:
        cluster.shutdown()
    raise AssertionError("the connection was accepted")


@pytest.mark.stack
def test_an_anonymous_client_is_refused(cassandra_stack):
    error = _connect_error(cassandra_stack, auth_provider=None)
    assert isinstance(error, AuthenticationFailed)


@pytest.mark.stack
def test_the_default_superuser_can_no_longer_log_in(cassandra_stack):
    error = _connect_error(cassandra_stack, PlainTextAuthProvider("cassandra", "cassandra"))
    assert isinstance(error, AuthenticationFailed)


@pytest.mark.stack
def test_securing_the_node_again_changes_nothing(cassandra_stack):
    ctx = stack.context(cassandra_stack)
    cassandra.after_up(ctx)
    assert cassandra.can_login(ctx, 1, *cassandra.credentials(ctx))
    assert not cassandra.can_login(ctx, 1, "cassandra", "cassandra")


@pytest.mark.stack
def test_nodetool_reports_the_node_up_and_normal(cassandra_stack):
    out = cassandra.nodetool(stack.context(cassandra_stack), 1, "status")
    assert "UN  127.0.0.1" in out


@pytest.fixture
def failing_settings(stack_settings):
    """A stack of its own (state dir and ports) for start-up failures; stopped afterwards."""
    settings = _test_settings(Path(f"{stack_settings.state_dir}-fail"),
                              stack_settings.stack.port_offset + 600,
                              services=["cassandra"], cassandra_nodes=1, start_timeout_s=120)
    yield settings
    stack.down(settings)


@pytest.fixture
def occupied_native_port(failing_settings):
    port = 9042 + failing_settings.stack.port_offset
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield port


def test_up_refuses_a_native_port_in_use(failing_settings, occupied_native_port):
    with pytest.raises(ServiceError) as info:
        stack.up(failing_settings)
    assert "cassandra-1" in info.value.message
    assert str(occupied_native_port) in info.value.message
    assert info.value.details["service"] == "cassandra"


@pytest.mark.stack
@pytest.mark.slow
def test_a_node_that_cannot_start_fails_with_its_log(failing_settings, occupied_native_port):
    # GIVEN the CQL port taken after the up-front port check (as by a program starting at the same moment)
    from infra.local import jars, secrets

    jars.resolve("cassandra", failing_settings.jar_cache)
    ctx = StackContext(failing_settings, secrets.load(failing_settings.state_dir, create=True))
    (node,) = cassandra.processes(ctx)
    # WHEN the node is started and waited for
    process.launch(node)
    with pytest.raises(ServiceError) as info:
        process.wait_ready([node], 120)
    # THEN the error names the service and carries its log's tail and error lines, which name the port
    assert info.value.details["service"] == "cassandra"
    assert "cassandra-1" in info.value.message
    assert info.value.details["log_tail"]
    errors = info.value.details["log_errors"]
    assert any(f"Failed to bind port {occupied_native_port}" in line for line in errors)
