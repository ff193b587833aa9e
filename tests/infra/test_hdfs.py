"""Local HDFS: rendered configuration (pure, no processes), then the real NameNode/DataNodes.

Expected ports are the versions.toml values written out literally (NameNode 9000/9870, DataNode
9866/9864/9867, step 10 per DataNode) plus the offset of the settings under test.
"""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import psutil
import pytest
import requests

from infra.local import hdfs, process, stack
from infra.local.topology import StackContext
from meterlake import config

SECRETS = {"hdfs_user": "meterlake"}


def parse_site(text: str) -> dict[str, str]:
    root = ET.fromstring(text)
    return {p.findtext("name"): p.findtext("value") for p in root.iter("property")}


def unit_context(tmp_path, datanodes: int, offset: int = 0) -> StackContext:
    settings = config.Settings()
    settings = settings.model_copy(update={
        "paths": settings.paths.model_copy(update={"state_dir": tmp_path / "state"}),
        "stack": settings.stack.model_copy(update={"hdfs_datanodes": datanodes, "port_offset": offset}),
    })
    return StackContext(settings=settings, secrets=SECRETS)


def render_datanode_site(ctx: StackContext, node: int) -> dict[str, str]:
    return parse_site(hdfs.render_hdfs_site(
        datanodes=ctx.settings.stack.hdfs_datanodes, namenode_rpc_port=9000, namenode_http_port=9870,
        name_dir="/n", data_dir="/d", datanode_ports=hdfs.datanode_ports(ctx, node), user="meterlake",
    ))


# ------------------------------------------------------------------------------------------ rendered config

def test_two_datanodes_replicate_twice_on_distinct_ports(tmp_path):
    ctx = unit_context(tmp_path, datanodes=2)
    first, second = render_datanode_site(ctx, 1), render_datanode_site(ctx, 2)

    assert first["dfs.replication"] == "2" and second["dfs.replication"] == "2"
    keys = ("dfs.datanode.address", "dfs.datanode.http.address", "dfs.datanode.ipc.address")
    assert [first[k] for k in keys] == ["127.0.0.1:9866", "127.0.0.1:9864", "127.0.0.1:9867"]
    assert [second[k] for k in keys] == ["127.0.0.1:9876", "127.0.0.1:9874", "127.0.0.1:9877"]


@pytest.mark.parametrize("datanodes, replication", [(1, "1"), (3, "3"), (5, "3")])
def test_replication_is_capped_at_three(tmp_path, datanodes, replication):
    site = render_datanode_site(unit_context(tmp_path, datanodes), 1)
    assert site["dfs.replication"] == replication


def test_datanodes_register_and_redirect_on_loopback(tmp_path):
    site = render_datanode_site(unit_context(tmp_path, 1), 1)
    assert site["dfs.datanode.hostname"] == "127.0.0.1"
    assert site["dfs.namenode.http-address"] == "127.0.0.1:9870"
    assert site["dfs.permissions.enabled"] == "true"


def test_core_site_refuses_anonymous_http():
    core = parse_site(hdfs.render_core_site(namenode_rpc_port=9000, tmp_dir="/t", user="meterlake"))
    assert core["hadoop.http.authentication.type"] == "simple"
    assert core["hadoop.http.authentication.simple.anonymous.allowed"] == "false"
    assert core["fs.defaultFS"] == "hdfs://127.0.0.1:9000"
    assert core["hadoop.tmp.dir"] == "/t"


def test_processes_have_own_homes_and_conf_first_on_classpath(tmp_path):
    ctx = unit_context(tmp_path, datanodes=2, offset=100)
    procs = hdfs.processes(ctx)

    assert [p.name for p in procs] == ["namenode", "datanode-1", "datanode-2"]
    assert [p.main_class for p in procs] == [
        "org.apache.hadoop.hdfs.server.namenode.NameNode",
        "org.apache.hadoop.hdfs.server.datanode.DataNode",
        "org.apache.hadoop.hdfs.server.datanode.DataNode",
    ]
    assert [p.home for p in procs] == [
        tmp_path / "state" / "namenode", tmp_path / "state" / "datanode-1", tmp_path / "state" / "datanode-2"]
    assert all(str(p.classpath[0]) == str(p.conf_dir) for p in procs)
    assert procs[0].ports == {"rpc": 9100, "http": 9970}
    assert hdfs.namenode_uri(ctx) == "hdfs://127.0.0.1:9100"
    assert hdfs.webhdfs_url(ctx) == "http://127.0.0.1:9970"


# ----------------------------------------------------------------------------------------- running service

@pytest.mark.stack
def test_webhdfs_refuses_requests_without_a_user(hdfs_stack):
    ctx = stack.context(hdfs_stack)
    url = f"{hdfs.webhdfs_url(ctx)}/webhdfs/v1/lake"

    anonymous = requests.get(url, params={"op": "LISTSTATUS"}, timeout=10)
    named = requests.get(url, params={"op": "LISTSTATUS", "user.name": "meterlake"}, timeout=10)
    jmx = requests.get(f"{hdfs.webhdfs_url(ctx)}/jmx", timeout=10)

    assert anonymous.status_code == 401
    assert jmx.status_code == 401
    assert named.status_code == 200


@pytest.mark.stack
def test_lake_belongs_to_the_stack_user_and_is_closed_to_others(hdfs_stack):
    ctx = stack.context(hdfs_stack)
    resp = requests.get(f"{hdfs.webhdfs_url(ctx)}/webhdfs/v1/lake",
                        params={"op": "GETFILESTATUS", "user.name": "meterlake"}, timeout=10)
    status = resp.json()["FileStatus"]
    assert (status["owner"], status["permission"], status["type"]) == ("meterlake", "750", "DIRECTORY")


@pytest.mark.stack
def test_datanode_data_port_refuses_anonymous_reads_of_the_lake(hdfs_stack):
    # GIVEN a file under /lake written by the stack user
    ctx = stack.context(hdfs_stack)
    base = f"{hdfs.webhdfs_url(ctx)}/webhdfs/v1/lake/anon-probe.txt"
    created = requests.put(base, params={"op": "CREATE", "overwrite": "true", "user.name": "meterlake"},
                           allow_redirects=False, timeout=10)
    requests.put(created.headers["Location"], data=b"secret", timeout=10).raise_for_status()
    # WHEN someone reads it straight from the DataNode without naming a user
    dn = hdfs.datanode_ports(ctx, 1)
    resp = requests.get(f"http://127.0.0.1:{dn['http']}/webhdfs/v1/lake/anon-probe.txt",
                        params={"op": "OPEN", "namenoderpcaddress": hdfs.namenode_uri(ctx)[len("hdfs://"):]},
                        timeout=10)
    # THEN HDFS permissions refuse it
    assert resp.status_code == 403
    assert b"secret" not in resp.content


@pytest.mark.stack
@pytest.mark.slow
def test_two_datanode_stack_restarts_a_killed_datanode_and_down_leaves_no_process(stack_settings):
    # Own state dir and ports (the session's offset + 50), so the session's HDFS is untouched.
    state_dir = stack_settings.state_dir / "two-datanodes"
    shutil.rmtree(state_dir, ignore_errors=True)
    settings = stack_settings.model_copy(update={
        "paths": stack_settings.paths.model_copy(update={"state_dir": state_dir}),
        "stack": stack_settings.stack.model_copy(update={
            "services": ["hdfs"], "hdfs_datanodes": 2, "port_offset": stack_settings.stack.port_offset + 50}),
    })
    try:
        rows = stack.up(settings)
        pids = [r["pid"] for r in rows]
        assert [(r["name"], r["state"]) for r in rows] == [
            ("namenode", "ready"), ("datanode-1", "ready"), ("datanode-2", "ready")]

        ctx = stack.context(settings)
        datanode2 = hdfs.processes(ctx)[2]
        process.kill(datanode2)
        assert not process.is_running(datanode2)
        process.launch(datanode2)
        process.wait_ready([datanode2], 60)
        pids.append(process.pid(datanode2))
        offset = settings.stack.port_offset
        assert set(hdfs.live_datanodes(ctx)) == {f"127.0.0.1:{9866 + offset}", f"127.0.0.1:{9876 + offset}"}
    finally:
        stack.down(settings)

    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    ours = [p.pid for p in psutil.process_iter(["cmdline"])
            if any(str(state_dir) in arg for arg in (p.info["cmdline"] or []))]
    assert ours == []
