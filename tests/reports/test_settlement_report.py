"""The settlement report: HTML with its plot, PDF and CSV from the settled test portfolio (tests/portfolio.py),
and from literal settlement rows of a 46-period day."""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from datetime import date, datetime

import pyarrow as pa
import pytest
from click.testing import CliRunner

from meterlake import config
from meterlake.cli import cli
from meterlake.lake.files import open_lake
from reports import settlement as report
from tests.portfolio import AUTUMN

pytestmark = pytest.mark.timeout(1800)  # the first test using settled_portfolio builds it with Spark

PNG = b"\x89PNG\r\n\x1a\n"


def _rows(lake, path: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(lake.read_bytes(path).decode())))


@pytest.mark.slow
def test_the_r1_report_renders_in_three_formats_with_its_plot_and_the_changes_since_sf(settled_portfolio):
    settings, answers = settled_portfolio.settings, settled_portfolio.runs
    # GIVEN 27 October 2024 (50 periods) settled SF, then R1 after a late correction (+1 kWh) and a late meter
    # (50 half-hours of 0.1 kWh), compared by settle-diff
    # WHEN its R1 report is rendered
    out = report.run(settings, AUTUMN, "R1", now=datetime.fromisoformat("2024-11-28T07:00:00+00:00"))
    lake = open_lake(settings)
    base = "reports/2024-10-27/R1"
    # THEN the manifest lists every file with its bytes' digest, and was written last
    manifest = json.loads(lake.read_bytes(f"{base}/manifest.json"))
    assert manifest == {k: v for k, v in out.items() if k != "path"} and out["path"] == base
    names = {f["name"] for f in manifest["files"]}
    assert names == {"settlement.html", "settlement.pdf", "periods.csv", "summary.csv", "changes.csv"}
    for f in manifest["files"]:
        assert hashlib.sha256(lake.read_bytes(f"{base}/{f['name']}")).hexdigest() == f["sha256"]
    assert (manifest["previous_run"], manifest["generated_at"]) == ("SF", "2024-11-28T07:00:00Z")
    # the HTML embeds its plot as a PNG image, and says what changed since SF
    html = lake.read_bytes(f"{base}/settlement.html").decode()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(PNG)
    assert len(base64.b64decode(images[0])) > 10_000  # a drawn plot, not an empty canvas
    assert "Changes since SF" in html and "late_read" in html and "correction" in html
    # the PDF is a PDF with that image in it
    pdf = lake.read_bytes(f"{base}/settlement.pdf")
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" in pdf
    # the CSV numbers: 50 periods adding up to what the settle job answered; the diff's reasons
    periods = _rows(lake, f"{base}/periods.csv")
    assert [int(r["settlement_period"]) for r in periods] == list(range(1, 51))
    r1, sf = answers[(AUTUMN, "R1")]["totals"], answers[(AUTUMN, "SF")]["totals"]
    assert sum(float(r["consumption_kwh"]) for r in periods) == pytest.approx(r1["consumption_kwh"], abs=1e-6)
    assert sum(float(r["previous_kwh"]) for r in periods) == pytest.approx(sf["consumption_kwh"], abs=1e-6)
    changes = {r["reason"]: (int(r["changes"]), float(r["delta_kwh"])) for r in _rows(lake, f"{base}/changes.csv")}
    assert changes == {"late_read": (50, pytest.approx(5.0)), "correction": (1, pytest.approx(1.0))}
    summary = {r["figure"]: r["value"] for r in _rows(lake, f"{base}/summary.csv")}
    assert (summary["periods"], summary["cutoff_utc"]) == ("50", "2024-11-28T00:00:00Z")


@pytest.mark.slow
def test_a_first_run_has_no_changes_and_csv_only_writes_no_html(settled_portfolio):
    result = CliRunner().invoke(cli, ["report", "settlement", "--date", "2024-10-26", "--run", "SF", "--format",
                                      "csv", "--json"], env=_env(settled_portfolio.settings))
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["previous_run"] is None and answer["periods"] == 48
    assert [f["name"] for f in answer["files"]] == ["periods.csv", "summary.csv", "changes.csv"]
    lake = open_lake(settled_portfolio.settings)
    assert _rows(lake, "reports/2024-10-26/SF/changes.csv") == []
    assert not lake.exists("reports/2024-10-26/SF/settlement.html")


def _env(settings) -> dict[str, str]:
    return {"METERLAKE_PATHS__LAKE": settings.paths.lake, "METERLAKE_PATHS__STATE_DIR": str(settings.paths.state_dir),
            "METERLAKE_LAKE__PSEUDONYM_KEY_FILE": settings.lake.pseudonym_key_file}


@pytest.mark.slow
def test_a_run_not_settled_is_a_usage_error_naming_the_settled_runs(settled_portfolio):
    result = CliRunner().invoke(cli, ["report", "settlement", "--date", "2024-10-26", "--run", "R2", "--json"],
                                env=_env(settled_portfolio.settings))
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "usage" and "settled runs of the date: SF" in error["message"]


def test_an_unknown_format_is_a_usage_error():
    result = CliRunner().invoke(cli, ["report", "settlement", "--date", "2024-10-26", "--run", "SF", "--format",
                                      "html,xls", "--json"])
    assert result.exit_code == 2 and "xls" in json.loads(result.stdout)["error"]["message"]


def test_a_46_period_day_is_plotted_and_listed_with_46_periods(tmp_path):
    # GIVEN literal settlement rows of 31 March 2024 (spring clock change: 46 periods), 1 kWh in period p of SF
    spring = date(2024, 3, 31)
    rows = {"settlement_date": [spring] * 46, "settlement_period": pa.array(range(1, 47), pa.int8()),
            "run": ["SF"] * 46, "gsp_group": ["_C"] * 46, "consumption_kwh": [float(p) for p in range(1, 47)],
            "actual_kwh": [float(p) for p in range(1, 47)], "estimated_kwh": [0.0] * 46,
            "loss_adjusted_kwh": [float(p) for p in range(1, 47)], "meters": [1] * 46, "estimated_meters": [0] * 46,
            "unsettled_meters": [0] * 46, "default_registry_meters": [0] * 46,
            "cutoff_utc": pa.array([datetime.fromisoformat("2024-04-08T00:00:00+01:00")] * 46, pa.timestamp("us",
                                                                                                          "UTC"))}
    settings = config.load(None)
    settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={"lake": str(tmp_path)})})
    lake = open_lake(settings)
    lake.write_parquet("settlement/settlement_date=2024-03-31/run=SF/settlement.parquet", pa.table(rows))
    # WHEN its report is rendered
    out = report.run(settings, spring, "SF", ("html", "csv"))
    # THEN 46 periods, summing to 1 + 2 + ... + 46, the plot's axis says 46
    assert out["periods"] == 46 and out["consumption_kwh"] == pytest.approx(46 * 47 / 2)
    periods = _rows(lake, "reports/2024-03-31/SF/periods.csv")
    assert [int(r["settlement_period"]) for r in periods] == list(range(1, 47))
    data = report.gather(lake, spring, "SF")
    assert data["calendar_periods"] == 46 and data["totals"]["cutoff_utc"] == "2024-04-07T23:00:00Z"
    assert "No quality measurement" in lake.read_bytes("reports/2024-03-31/SF/settlement.html").decode()
