"""Effective configuration: defaults < file < environment; secrets masked when shown."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from meterlake import config
from meterlake.cli import cli


def test_the_file_overrides_defaults_and_relative_paths_follow_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    cfg = tmp_path / "conf" / "meterlake.toml"
    cfg.write_text('[paths]\nstate_dir = "st"\n[cassandra]\nreplication_factor = 3\n')
    settings = config.load(cfg)
    assert settings.cassandra.replication_factor == 3
    assert settings.state_dir == tmp_path / "conf" / "st"
    assert settings.kafka.reads_topic == "meter-reads"


def test_the_environment_overrides_the_file(tmp_path, monkeypatch):
    cfg = tmp_path / "meterlake.toml"
    cfg.write_text('[cassandra]\nreplication_factor = 3\nwrite_consistency = "QUORUM"\n')
    monkeypatch.setenv("METERLAKE_CASSANDRA__REPLICATION_FACTOR", "2")
    settings = config.load(cfg)
    assert settings.cassandra.replication_factor == 2
    assert settings.cassandra.write_consistency == "QUORUM"


def test_an_unknown_key_is_refused(tmp_path):
    cfg = tmp_path / "meterlake.toml"
    cfg.write_text("[kafka]\nbootstrap = 'x'\n")
    with pytest.raises(ValueError, match="bootstrap"):
        config.load(cfg)


def test_a_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        config.load(tmp_path / "absent.toml")


def test_config_show_masks_passwords_and_prints_one_json_object(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METERLAKE_KAFKA__PASSWORD", "hunter2")
    result = CliRunner().invoke(cli, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kafka"]["password"] == "********"
    assert "hunter2" not in result.stdout
    assert data["source"] is None
