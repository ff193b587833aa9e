"""The billing reference commands' --json objects (README table) and errors, on a temporary lake (no Spark)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from meterlake.cli import cli

ROOT = Path(__file__).resolve().parents[3]
TINY_MDD = ROOT / "tests" / "meterlake" / "data" / "mdd_tiny"


@pytest.fixture
def env(tmp_path):
    (tmp_path / "lake.key").write_text("a key of the lake's pseudonyms, for this test only\n")
    return {"METERLAKE_PATHS__LAKE": str(tmp_path / "lake"), "METERLAKE_PATHS__STATE_DIR": str(tmp_path / "state"),
            "METERLAKE_LAKE__PSEUDONYM_KEY_FILE": str(tmp_path / "lake.key")}


def _run(env, *args):
    result = CliRunner().invoke(cli, [*args, "--json"], env=env)
    return result.exit_code, json.loads(result.stdout)


def test_mdd_load(env):
    code, out = _run(env, "mdd", "load", str(TINY_MDD))
    assert code == 0
    assert list(out) == ["path", "lake", "loaded", "rows", "ssc", "digest"]
    assert (out["loaded"], out["ssc"]) == (62, 3)


def test_tariffs_load_reports_the_example_price_files_clock_change_defect(env):
    code, out = _run(env, "tariffs", "load", *sorted(str(p) for p in (ROOT / "tariffs").glob("*.toml")))
    assert code == 0
    assert list(out) == ["paths", "lake", "loaded", "rows", "tariffs", "defects", "digest"]
    assert [(t["tariff"], t["kind"], t["prices"]) for t in out["tariffs"]] == [
        ("agile-2023", "dynamic", 192), ("e7-2024", "tou", 0), ("flat-2024", "flat", 0)]  # 4 days x 48 rows
    assert out["defects"] == [{"tariff": "agile-2023", "local_date": "2023-10-29", "kind": "period_count",
                               "detail": "48 half-hours for a day of 50; unpriced: 2023-10-29T01:00:00Z, "
                                         "2023-10-29T01:30:00Z"}]


def test_accounts_load_refuses_a_bad_file_whole(env, tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text("account,meter_point,tariff,effective_from\nA1,1200000000011,flat,2024-13-01\n")
    code, out = _run(env, "accounts", "load", str(path))
    assert code == 2
    assert out["error"]["problems"] == [{"line": 2, "field": "effective_from",
                                         "problem": "'2024-13-01' is not a date (YYYY-MM-DD)"}]
    path.write_text("account,meter_point,tariff,effective_from,bill_day\nA1,1200000000011,flat,2024-01-01,15\n")
    code, out = _run(env, "accounts", "load", str(path))
    assert (code, out["loaded"], out["accounts"]) == (0, 1, 1)
