"""Credentials of the local stack: generated on first ``stack up``, never defaulted, kept 0600 in the state dir.

Nothing in the stack accepts anonymous clients: Kafka listeners take SASL/PLAIN, Cassandra a password
(the built-in ``cassandra`` superuser is disabled), WebHDFS refuses requests without a user, and the Spark
standalone cluster shares an authentication secret, and the S3-API server checks AWS signatures.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import uuid
from pathlib import Path

FILE = "secrets.json"


def _new() -> dict[str, str]:
    return {
        "kafka_username": "meterlake",
        "kafka_password": secrets.token_urlsafe(24),
        "kafka_cluster_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "cassandra_username": "meterlake",
        "cassandra_password": secrets.token_urlsafe(24),
        "hdfs_user": "meterlake",
        "spark_secret": secrets.token_urlsafe(32),
        "lake_pseudonym_key": secrets.token_urlsafe(48),  # meterlake.pseudonym
        "s3_access_key": "ML" + secrets.token_hex(9).upper(),  # infra.local.s3
        "s3_secret_key": secrets.token_urlsafe(30),
        "superset_secret_key": secrets.token_urlsafe(48),  # infra.superset: signs sessions, encrypts credentials
        "superset_admin_password": secrets.token_urlsafe(18),
        "superset_analyst_password": secrets.token_urlsafe(18),
    }


def path(state_dir: Path) -> Path:
    return state_dir / FILE


def load(state_dir: Path, *, create: bool = False) -> dict[str, str] | None:
    """The stack's secrets; created (atomically, 0600) when ``create`` and absent."""
    file = path(state_dir)
    if file.is_file():
        return json.loads(file.read_text())
    if not create:
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    data = _new()
    _write(file, data)
    return data


def _write(file: Path, data: dict[str, str]) -> None:
    tmp = file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, file)


def ensure(state_dir: Path, name: str) -> str:
    """The secret ``name``, generated and stored first if the state dir's secrets predate it (under a lock, so
    two processes asking at once get the same value)."""
    data = load(state_dir, create=True)
    if name in data:
        return data[name]
    with open(state_dir / f"{FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load(state_dir)
        if name not in data:
            data[name] = _new()[name]
            _write(path(state_dir), data)
    return data[name]
