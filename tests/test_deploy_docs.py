"""docs/deploy.md is exercised: every `spark-submit` line is parsed by its job (`--dry-run`) with spark-submit's own
options checked against `spark-submit --help`; every `meterlake` line resolves to a command with those options;
every TOML block loads as settings; the CQL runs on a real Cassandra; the YAML parses. The systemd units in
infra/systemd/ parse and start real commands."""
from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from meterlake import config
from meterlake.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "docs" / "deploy.md"
JOBS = {"clean", "settle", "settle_diff", "quality", "bill", "backfill", "reconcile", "serve"}


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DEPLOY.read_text(), flags=re.M | re.S)


def commands() -> list[list[str]]:
    out = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(shlex.split(line, comments=True))
    return out


def test_every_shell_line_is_a_spark_submit_of_a_job_or_a_meterlake_command():
    assert {c[0] for c in commands()} == {"spark-submit", "meterlake"}


def _check_meterlake(args: list[str]) -> None:
    # --help is eager: click stops there, after it has matched the command path and every option given before it
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.output, (args, result.output)


def test_every_meterlake_line_is_a_command_with_those_options():
    lines = [c[1:] for c in commands() if c[0] == "meterlake"]
    assert lines
    for args in lines:
        _check_meterlake(args)
    # and a wrong option is caught the same way
    bad = CliRunner().invoke(cli, ["store", "run", "--no-such-option", "--help"])
    assert bad.exit_code != 0


def test_every_job_has_a_spark_submit_line_its_job_and_spark_submit_accept(capsys):
    lines = [c for c in commands() if c[0] == "spark-submit"]
    spark_submit = Path(sys.executable).with_name("spark-submit")
    # as docs/deploy.md says: the virtualenv's bin first on PATH (spark-submit finds pyspark through python3)
    env = {**os.environ, "PATH": f"{spark_submit.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    usage = subprocess.run([str(spark_submit), "--help"], capture_output=True, text=True, timeout=300, env=env)
    known = set(re.findall(r"^\s+(--[a-z-]+)", usage.stdout + usage.stderr, flags=re.M))
    assert {"--packages", "--conf", "--master"} <= known, usage.stderr[-2000:]
    seen = set()
    for line in lines:
        script_at = next(i for i, word in enumerate(line) if word.endswith(".py"))
        submit_options = [w for w in line[1:script_at] if w.startswith("--")]
        assert set(submit_options) <= known, submit_options
        script = line[script_at]
        assert (ROOT / script).is_file(), script
        job = script.split("/")[1]
        module = importlib.import_module(f"jobs.{job}.job")
        assert module.main([*line[script_at + 1:], "--dry-run"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["dry_run"] is True and answer["master"] == "spark://spark-master:7077", answer
        seen.add(job)
    assert seen == JOBS


def test_a_job_line_with_a_wrong_option_fails_its_dry_run():
    from jobs.settle import job

    with pytest.raises(SystemExit):
        job.main(["--date", "2024-10-27", "--run", "SX", "--dry-run"])


def test_every_toml_block_loads_as_settings(tmp_path):
    found = blocks("toml")
    assert len(found) >= 6
    for i, text in enumerate(found):
        path = tmp_path / f"block{i}.toml"
        path.write_text(text)
        config.load(str(path))  # a misspelt key or a wrong value is an error


def test_the_jvm_agent_option_is_the_one_the_local_stack_uses():
    from infra.local import versions

    version = versions.service("jmx_exporter")["artifacts"][0].rsplit(":", 1)[1]
    options = [line for text in blocks("jvm") for line in text.splitlines() if line.strip()]
    assert options
    for option in options:
        assert re.fullmatch(rf"-javaagent:\S+/jmx_prometheus_javaagent-{re.escape(version)}\.jar=(\S+:)?\d+:\S+\.yaml",
                            option), option


def test_the_yaml_blocks_parse():
    for text in blocks("yaml"):
        doc = yaml.safe_load(text)
        assert doc["scrape_configs"] and doc["rule_files"]


@pytest.mark.stack
def test_the_cql_runs_on_cassandra(cassandra_stack):
    from meterlake import clients, keyspace

    ks = f"deploy_{uuid.uuid4().hex[:8]}"
    session = clients.cassandra_session(cassandra_stack)
    try:
        keyspace.ensure(session, ks, 1)
        statements = [s.strip() for text in blocks("cql") for s in text.split(";") if s.strip()]
        assert len(statements) >= 4
        for statement in statements:
            session.execute(re.sub(r"\bmeterlake\.", f"{ks}.", statement.replace("KEYSPACE meterlake",
                                                                                 f"KEYSPACE {ks}")))
        compaction = session.execute("SELECT compaction FROM system_schema.tables WHERE keyspace_name = %s "
                                     "AND table_name = 'hh_sets'", (ks,)).one().compaction
        assert compaction["class"].endswith("LeveledCompactionStrategy")
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {ks}")
        session.cluster.shutdown()


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None and re.fullmatch(r"[A-Za-z]+", key), f"{path.name}: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize("unit", sorted((ROOT / "infra" / "systemd").glob("*.service")), ids=lambda p: p.name)
def test_the_systemd_units_parse_and_start_a_real_command(unit):
    sections = _unit(unit)
    assert set(sections) == {"Unit", "Service", "Install"}
    service = sections["Service"]
    assert service["KillSignal"] == ["SIGTERM"] and service["User"] == ["meterlake"]
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    start = shlex.split(service["ExecStart"][0].replace("%i", "1").replace("%H", "host"))
    assert start[0].endswith("/bin/meterlake")
    _check_meterlake(start[1:])
    for env in service.get("Environment", []):
        name = env.split("=", 1)[0]
        assert name == "METERLAKE_CONFIG" or name.removeprefix("METERLAKE_").lower().split("__")[0] in \
            config.Settings.model_fields, env
