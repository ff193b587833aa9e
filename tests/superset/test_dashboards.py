"""Superset provisioned from a clean state with the repository's dashboards, checked through its API and in a real
browser (Debian's headless Chromium driven by Playwright).

The warehouse is the lake views' file (infra/superset/warehouse.py) over the settled test portfolio
(tests/portfolio.py). Screenshots of each dashboard land in build/screenshots/.
"""
from __future__ import annotations

import json
import shutil
import stat
import time
from pathlib import Path

import pytest
import requests
import yaml

from infra.local import secrets
from infra.superset import instance, warehouse

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.timeout(1800)]  # the first builds the portfolio

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
DASHBOARDS = {"consumption-behaviour": 6, "settlement": 5, "data-quality": 4}  # slug: charts in its YAML


@pytest.fixture(scope="module")
def superset(settled_portfolio, stack_settings, tmp_path_factory):
    """Superset from a clean state (its own state dir), the stack's test port range, the dashboards imported."""
    settings = settled_portfolio.settings
    settings = settings.model_copy(update={
        "paths": settings.paths.model_copy(update={"state_dir": tmp_path_factory.mktemp("superset-state")}),
        "stack": settings.stack.model_copy(update={"port_offset": stack_settings.stack.port_offset})})
    warehouse.publish_lake_views(settings)
    started = time.monotonic()
    first = instance.up(settings)
    first["seconds"] = time.monotonic() - started
    yield settings, first
    instance.down(settings)


def _admin(settings) -> instance.Api:
    data = secrets.load(settings.state_dir)
    return instance.Api(instance.url(settings), "admin", data["superset_admin_password"])


def test_up_imports_the_three_dashboards(superset):
    settings, first = superset
    assert first["imported"] is True and first["process"]["state"] == "ready"
    assert [d["title"] for d in first["dashboards"]] == ["Consumption behaviour", "Data quality", "Settlement"]
    charts = _admin(settings).get("/api/v1/chart/", q="(page_size:100)")["result"]
    assert len(charts) == sum(DASHBOARDS.values())


def test_anonymous_requests_are_refused(superset):
    settings, _ = superset
    base = instance.url(settings)
    assert requests.get(f"{base}/api/v1/dashboard/", timeout=30).status_code == 401
    assert requests.get(f"{base}/api/v1/chart/data?form_data=%7B%7D", timeout=30).status_code == 401
    page = requests.get(f"{base}/superset/dashboard/settlement/", timeout=30, allow_redirects=False)
    assert page.status_code in (302, 303) and "/login" in page.headers["Location"]


def test_no_secret_has_a_default_value(superset, tmp_path):
    settings, _ = superset
    state = settings.state_dir
    conf = state / "superset" / "conf" / "superset_config.py"
    for path in (secrets.path(state), conf):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    data = secrets.load(state)
    rendered = conf.read_text()
    assert f"SECRET_KEY = {data['superset_secret_key']!r}" in rendered
    assert "AUTH_ROLE_PUBLIC" not in rendered.replace("# AUTH_ROLE_PUBLIC stays unset", "")
    # another state dir gets other secrets: nothing is a constant of the code
    other = secrets.load(tmp_path, create=True)
    for key in ("superset_secret_key", "superset_admin_password", "superset_analyst_password"):
        assert len(data[key]) >= 24 and data[key] != other[key]
    # the well-known defaults are refused
    base = instance.url(settings)
    for user, password in (("admin", "admin"), ("admin", "general"), ("analyst", "analyst")):
        answer = requests.post(f"{base}/api/v1/security/login", timeout=30,
                               json={"username": user, "password": password, "provider": "db"})
        assert answer.status_code == 401, (user, password)


def test_the_analyst_reads_dashboards_but_cannot_edit_datasets(superset):
    settings, _ = superset
    data = secrets.load(settings.state_dir)
    analyst = instance.Api(instance.url(settings), "analyst", data["superset_analyst_password"])
    assert len(analyst.dashboards()) == 3
    datasets = _admin(settings).get("/api/v1/dataset/", q="(page_size:100)")["result"]
    target = next(d for d in datasets if d["table_name"] == "settlement_periods")
    edit = analyst.session.put(f"{analyst.base}/api/v1/dataset/{target['id']}", json={"sql": "SELECT 1"},
                               timeout=30)
    assert edit.status_code in (401, 403), edit.text
    assert analyst.session.delete(f"{analyst.base}/api/v1/dataset/{target['id']}", timeout=30).status_code in (
        401, 403)
    assert _admin(settings).get(f"/api/v1/dataset/{target['id']}")["result"]["sql"].lstrip().startswith("--")


def test_a_second_up_changes_nothing_and_an_edited_yaml_updates_its_chart(superset, tmp_path):
    settings, _ = superset
    admin = _admin(settings)
    before = {c["uuid"]: c["changed_on_utc"] for c in admin.get(
        "/api/v1/chart/", q="(page_size:100,columns:!(uuid,slice_name,changed_on_utc))")["result"]}
    assert instance.up(settings)["imported"] is False
    edited = tmp_path / "assets"
    shutil.copytree(instance.ASSETS, edited)
    chart_file = edited / "charts" / "Unsettled_meter-periods.yaml"
    chart = yaml.safe_load(chart_file.read_text())
    chart["slice_name"] = "Unsettled meter half-hours"
    chart_file.write_text(yaml.safe_dump(chart, sort_keys=True))
    try:
        assert instance.up(settings, assets=edited)["imported"] is True
        after = {c["uuid"]: (c["slice_name"], c["changed_on_utc"]) for c in admin.get(
            "/api/v1/chart/", q="(page_size:100,columns:!(uuid,slice_name,changed_on_utc))")["result"]}
        assert after[chart["uuid"]][0] == "Unsettled meter half-hours"
        assert set(after) == set(before)  # updated in place, nothing added
    finally:
        assert instance.up(settings)["imported"] is True  # the repository's bundle again


def test_export_writes_the_running_instance_back_over_the_bundle(superset, tmp_path):
    settings, _ = superset
    out = tmp_path / "assets"
    shutil.copytree(instance.ASSETS, out)
    result = instance.export(settings, out)
    assert result["dashboards"] == 3 and result["added"] == []
    database = (out / "databases" / "meterlake_warehouse.yaml").read_text()
    assert f"sqlalchemy_uri: {instance.WAREHOUSE_URI}" in database  # not this machine's path
    assert str(instance.warehouse_path(settings)) not in "".join(p.read_text() for p in out.rglob("*.yaml"))
    repo_uuids = {yaml.safe_load(p.read_text())["uuid"] for p in instance.ASSETS.rglob("*.yaml")
                  if p.name != "metadata.yaml"}
    out_uuids = {yaml.safe_load(p.read_text())["uuid"] for p in out.rglob("*.yaml") if p.name != "metadata.yaml"}
    assert out_uuids == repo_uuids


def _chart_answers(page) -> dict[int | None, list[dict]]:
    """slice id -> the JSON answers of /api/v1/chart/data for it, collected as the page asks (None: the native
    filters' queries for their values, which name no chart)."""
    answers: dict[int, list[dict]] = {}

    def on_response(response):
        if "/api/v1/chart/data" not in response.url or response.request.method != "POST":
            return
        try:
            body = json.loads(response.request.post_data or "{}")
            slice_id = body.get("form_data", {}).get("slice_id")
            answers.setdefault(slice_id, []).append({"status": response.status, "json": response.json()})
        except Exception as exc:  # a body that is not JSON is an error too
            answers.setdefault(None, []).append({"status": response.status, "json": {"error": str(exc)}})

    page.on("response", on_response)
    return answers


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_every_dashboard_renders_its_charts_with_data_in_a_real_browser(superset):
    from playwright.sync_api import sync_playwright

    settings, _ = superset
    base = instance.url(settings)
    password = secrets.load(settings.state_dir)["superset_analyst_password"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            page.goto(f"{base}/login/")
            page.fill("input#username", "analyst")  # the analyst role: reads dashboards
            page.fill("input#password", password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda u: "/login" not in u, timeout=60_000)
            for slug, n_charts in DASHBOARDS.items():
                answers = _chart_answers(page)
                page.goto(f"{base}/superset/dashboard/{slug}/")
                page.wait_for_selector("[data-test='chart-grid-component']", timeout=120_000)
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    charts = page.locator("[data-test='chart-grid-component']")
                    loading = page.locator("[data-test='chart-grid-component'] [data-test='loading-indicator']")
                    if charts.count() == n_charts and len(answers.keys() - {None}) >= n_charts and \
                            loading.count() == 0:
                        break
                    page.wait_for_timeout(500)
                while time.monotonic() < deadline and page.get_by_text("Loading filter values").count():
                    page.wait_for_timeout(500)
                page.wait_for_timeout(3000)  # the charts' animations finish before the screenshot
                page.screenshot(path=str(SCREENSHOTS / f"{slug}.png"), full_page=True)
                names = page.locator("[data-test='chart-grid-component']").evaluate_all(
                    "els => els.map(e => e.getAttribute('data-test-chart-name'))")
                assert len(names) == n_charts, (slug, names)
                for got in answers.pop(None, []):  # the filters' values: answered, no error
                    assert got["status"] == 200 and all(r.get("error") is None for r in got["json"]["result"]), got
                assert len(answers) == n_charts, (slug, sorted(answers))
                for slice_id, got in answers.items():
                    last = got[-1]
                    assert last["status"] == 200, (slug, slice_id, last)
                    results = last["json"]["result"]
                    assert all(r.get("error") is None for r in results), (slug, slice_id, results)
                    assert all(r["rowcount"] > 0 for r in results), (slug, slice_id, "no rows")
                errors = page.locator("[data-test='chart-grid-component'] .ant-alert-error, "
                                      "[data-test='chart-grid-component'] [role='alert']")
                assert errors.count() == 0, (slug, errors.all_inner_texts())
                empty = page.get_by_text("No results were returned for this query")
                assert empty.count() == 0, slug
        finally:
            browser.close()
    assert {f"{slug}.png" for slug in DASHBOARDS} <= {p.name for p in SCREENSHOTS.glob("*.png")}
