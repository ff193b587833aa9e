"""Pseudonyms of the lake's personal identifiers: keyed, stable, null-preserving; no key, no pseudonymiser."""
from __future__ import annotations

import json
import multiprocessing
import stat

import pyarrow as pa
import pytest

from infra.local import secrets
from infra.local.discover import discover
from meterlake import config, pseudonym
from meterlake.errors import UsageError
from meterlake.pseudonym import Pseudonymiser

KEY = b"a test key of thirty-two bytes!!"


def test_a_pseudonym_is_the_keyed_hmac_of_the_identifier():
    # the expected values are HMAC-SHA256 under KEY (first 24 hex digits), computed with the standard library
    p = Pseudonymiser(KEY)
    assert p.one("1200023305967") == "P36ed974adb6dcb432edaa98d"
    assert p.one("MAC000002") != p.one("MAC000003")
    assert Pseudonymiser(b"another key, also thirty-two b!!").one("1200023305967") != p.one("1200023305967")
    assert p.one(None) is None


def test_a_column_is_pseudonymised_value_by_value_and_keeps_its_nulls():
    p = Pseudonymiser(KEY)
    column = pa.chunked_array([["1200023305967", None], ["MAC000002", "1200023305967"]])
    assert p.array(column).to_pylist() == ["P36ed974adb6dcb432edaa98d", None, p.one("MAC000002"),
                                           "P36ed974adb6dcb432edaa98d"]
    assert p.array(pa.array([None, None], pa.string())).to_pylist() == [None, None]


def test_a_table_has_only_its_identifier_columns_replaced():
    table = pa.table({"meter_point": ["1200023305967"], "device_id": [None], "fuel": ["electricity"]})
    out = Pseudonymiser(KEY).table(table).to_pylist()
    assert out == [{"meter_point": "P36ed974adb6dcb432edaa98d", "device_id": None, "fuel": "electricity"}]


def test_a_short_key_is_refused():
    with pytest.raises(UsageError, match="at least 32"):
        Pseudonymiser(b"password")


def _settings(tmp_path, key_file: str = ""):
    base = config.load(None)
    return base.model_copy(update={
        "paths": base.paths.model_copy(update={"state_dir": tmp_path / "state"}),
        "lake": base.lake.model_copy(update={"pseudonym_key_file": key_file})})


def test_without_a_key_file_or_a_local_stack_there_is_no_pseudonymiser(tmp_path):
    with pytest.raises(UsageError, match="no pseudonymisation key"):
        pseudonym.for_settings(_settings(tmp_path))


def test_the_key_file_is_used_when_configured(tmp_path):
    (tmp_path / "key").write_bytes(KEY + b"\n")
    assert pseudonym.for_settings(_settings(tmp_path, str(tmp_path / "key"))).one("1200023305967") \
        == "P36ed974adb6dcb432edaa98d"
    with pytest.raises(UsageError, match="cannot read the pseudonymisation key"):
        pseudonym.for_settings(_settings(tmp_path, str(tmp_path / "absent")))


def _key_in(state_dir: str, queue) -> None:
    queue.put(secrets.ensure(__import__("pathlib").Path(state_dir), "lake_pseudonym_key"))


def test_a_stack_made_before_the_key_gets_one_key_however_many_ask_at_once(tmp_path):
    # GIVEN the secrets of a stack made before the lake had pseudonyms
    state = tmp_path / "state"
    data = secrets.load(state, create=True)
    del data["lake_pseudonym_key"]
    (state / "secrets.json").write_text(json.dumps(data))
    # WHEN four processes ask for the key at the same moment
    queue = multiprocessing.get_context("spawn").Queue()
    procs = [multiprocessing.get_context("spawn").Process(target=_key_in, args=(str(state), queue))
             for _ in range(4)]
    for proc in procs:
        proc.start()
    keys = {queue.get(timeout=60) for _ in procs}
    for proc in procs:
        proc.join(timeout=60)
    # THEN they all got the same key, which is now stored (0600) beside the other secrets, and they are kept
    stored = json.loads((state / "secrets.json").read_text())
    assert keys == {stored["lake_pseudonym_key"]}
    assert stored["kafka_password"] == data["kafka_password"]
    assert stat.S_IMODE((state / "secrets.json").stat().st_mode) == 0o600
    assert pseudonym.for_settings(discover(_settings(tmp_path))).one("x") == Pseudonymiser(keys.pop().encode()).one("x")
