"""Superset as a plain process of the local stack, and its dashboards as code.

Superset runs from its own virtualenv (``.venv-superset``, made by ``make superset-venv``: its pins clash with
ours) under gunicorn on 127.0.0.1, port ``superset.http_port`` of ``infra/local/versions.toml`` plus the stack's
``port_offset``. Its home is ``<state_dir>/superset/`` like any node of the stack: ``conf/superset_config.py``
(rendered from the settings, mode 0600: it holds the secret key), ``data/superset.db`` (the metadata database),
``log/``, the PID file.

No default secrets, no anonymous access: the secret key and the passwords of the users ``admin`` and ``analyst``
are generated into the stack's secrets file (``state/secrets.json``, 0600) on first ``up``; ``AUTH_ROLE_PUBLIC``
is left unset, so Superset refuses anonymous requests (401 from the API, a redirect to the login page from a
dashboard). The ``Analyst`` role reads dashboards and charts and cannot edit datasets (``bootstrap.py``).

Dashboards as code: ``assets/`` holds Superset's assets import/export bundle (``metadata.yaml``, ``databases/``,
``datasets/``, ``charts/``, ``dashboards/``) with stable UUIDs. ``up`` imports it (overwriting what the UUIDs
name) when its digest differs from the last import, so a second ``up`` changes nothing and an edited YAML updates
its chart. The database's ``sqlalchemy_uri`` in the bundle is the placeholder :data:`WAREHOUSE_URI`; the import
puts ``paths.warehouse`` there (the dbt warehouse DuckDB file, opened read-only). ``export`` writes the running
instance back over the bundle, each object to the file that holds its UUID.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import requests

from infra.local import process, secrets, versions
from infra.local.process import JvmProcess
from meterlake.config import Settings
from meterlake.errors import ServiceError

SERVICE = "superset"
ADDRESS = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-superset"
ASSETS = Path(__file__).with_name("assets")
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
WAREHOUSE_URI = "duckdb:///${paths.warehouse}"
USERS = {"admin": "superset_admin_password", "analyst": "superset_analyst_password"}


@dataclass(frozen=True)
class PythonProcess(JvmProcess):
    """A process of the stack run by a Python interpreter; ``-X -Dmeterlake.home=HOME`` carries the marker
    :func:`infra.local.process.pid` looks for (Python keeps unknown ``-X`` options to itself)."""

    python: Path = VENV / "bin" / "python"

    def command(self) -> list[str]:
        return [str(self.python), "-X", f"-Dmeterlake.home={self.home}", *self.args]


def port(settings: Settings) -> int:
    return versions.service(SERVICE)["http_port"] + settings.stack.port_offset


def url(settings: Settings) -> str:
    return f"http://{ADDRESS}:{port(settings)}"


def warehouse_path(settings: Settings) -> Path:
    return Path(settings.resolve_url(settings.paths.warehouse))


def render_config(settings: Settings, secret_key: str) -> str:
    """``superset_config.py`` for this stack: a pure function of the settings and the secret key."""
    home = settings.state_dir / SERVICE
    metadata = home / "data" / "superset.db"
    lines = [
        "# Rendered by meterlake (infra/superset/instance.py) on `meterlake dashboards up`; edits are overwritten.",
        f"SECRET_KEY = {secret_key!r}",
        f"SQLALCHEMY_DATABASE_URI = {f'sqlite:///{metadata}?check_same_thread=false'!r}",
        f"DATA_DIR = {str(home / 'data')!r}",
        "# AUTH_ROLE_PUBLIC stays unset and PUBLIC_ROLE_LIKE None: anonymous requests are refused.",
        "PUBLIC_ROLE_LIKE = None",
        "WTF_CSRF_ENABLED = True",
        "SESSION_COOKIE_HTTPONLY = True",
        "SESSION_COOKIE_SAMESITE = 'Lax'",
        "# the warehouse is read-only; nothing uploads files or creates tables through Superset",
        "FEATURE_FLAGS = {'DASHBOARD_RBAC': False, 'ALERT_REPORTS': False}",
        "SUPERSET_WEBSERVER_TIMEOUT = 120",
        "ROW_LIMIT = 50000",
        "",
    ]
    return "\n".join(lines)


def _superset_process(settings: Settings, secret: dict[str, str]) -> PythonProcess:
    home = settings.state_dir / SERVICE
    spec = versions.service(SERVICE)
    env = {
        "SUPERSET_CONFIG_PATH": str(home / "conf" / "superset_config.py"),
        "SUPERSET_HOME": str(home / "data"),
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
        "PYTHONUNBUFFERED": "1",
    }
    base = url(settings)

    def ready() -> bool:
        return requests.get(f"{base}/health", timeout=5).text.strip() == "OK"

    def prepare() -> None:
        _prepare(settings, secret, home, env)

    args = ["-m", "gunicorn", "--bind", f"{ADDRESS}:{port(settings)}", "--workers", str(spec["workers"]),
            "--worker-class", "gthread", "--threads", str(spec["threads"]), "--timeout", "120",
            "--limit-request-line", "0", "--limit-request-field_size", "0", "superset.app:create_app()"]
    return PythonProcess(name=SERVICE, service=SERVICE, home=home, main_class="", classpath=(), jvm_options=(),
                         address=ADDRESS, ports={"http": port(settings)}, is_ready=ready, args=args, env=env,
                         prepare=prepare)


def _prepare(settings: Settings, secret: dict[str, str], home: Path, env: dict[str, str]) -> None:
    """Render the config (0600) and, when the metadata database is new or Superset's version changed, run
    ``bootstrap.py`` under Superset's interpreter (migrate, roles, users)."""
    conf = home / "conf" / "superset_config.py"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(render_config(settings, secret["superset_secret_key"]))
    os.chmod(conf, 0o600)
    stamp = home / "data" / "bootstrap.json"
    want = {"version": versions.service(SERVICE)["version"],
            "bootstrap": hashlib.sha256(BOOTSTRAP.read_bytes()).hexdigest()}
    if (home / "data" / "superset.db").is_file() and stamp.is_file() and json.loads(stamp.read_text()) == want:
        return
    run_env = {**os.environ, **env,
               "METERLAKE_SUPERSET_ADMIN_PASSWORD": secret["superset_admin_password"],
               "METERLAKE_SUPERSET_ANALYST_PASSWORD": secret["superset_analyst_password"]}
    log_file = home / "log" / f"{SERVICE}.log"
    with log_file.open("ab") as log:
        log.write(b"\n==== meterlake: bootstrap (migrate, roles, users)\n")
        log.flush()
        done = subprocess.run([str(VENV / "bin" / "python"), str(BOOTSTRAP)], stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, cwd=home, env=run_env, check=False)
    if done.returncode != 0:
        raise ServiceError(f"superset: bootstrap of the metadata database failed (see {log_file})",
                           service=SERVICE, log=str(log_file), log_tail=_tail(log_file))
    stamp.write_text(json.dumps(want))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log yet)"


def _context(settings: Settings, *, create: bool) -> tuple[PythonProcess, dict[str, str]] | None:
    if secrets.load(settings.state_dir, create=create) is None:
        return None
    secret = {name: secrets.ensure(settings.state_dir, name)
              for name in ("superset_secret_key", *USERS.values())}
    return _superset_process(settings, secret), secret


def check_venv() -> None:
    if not (VENV / "bin" / "gunicorn").is_file():
        raise ServiceError(f"Superset's virtualenv is missing: {VENV} (run `make superset-venv`)", service=SERVICE,
                           venv=str(VENV))


def up(settings: Settings, assets: Path = ASSETS) -> dict:
    """Start Superset (idempotent), wait until it answers, import the bundle if it changed; the status object."""
    check_venv()
    proc, secret = _context(settings, create=True)
    if not process.is_running(proc) and process.port_in_use(ADDRESS, port(settings)):
        raise ServiceError(f"superset: {ADDRESS}:{port(settings)} is already in use by another program; stop it or "
                           "set stack.port_offset", service=SERVICE, port=port(settings))
    process.launch(proc)
    process.wait_ready([proc], settings.stack.start_timeout_s)
    imported = import_bundle(settings, assets, secret)
    return {**status(settings), "imported": imported}


def down(settings: Settings) -> list[dict]:
    found = _context(settings, create=False)
    if found is None:
        return []
    proc, _ = found
    was = process.pid(proc)
    return [{"name": proc.name, "service": SERVICE, "pid": was} for _ in process.stop_all([proc])]


def status(settings: Settings) -> dict:
    found = _context(settings, create=False)
    warehouse = warehouse_path(settings)
    base = {"url": url(settings), "warehouse": str(warehouse), "warehouse_exists": warehouse.is_file(),
            "credentials": str(secrets.path(settings.state_dir)),
            "users": {user: f"secrets.json: {key}" for user, key in USERS.items()}}
    if found is None:
        return {**base, "process": None, "dashboards": []}
    proc, secret = found
    state = process.status(proc)
    dashboards = []
    if state["state"] == "ready":
        api = Api(url(settings), "admin", secret["superset_admin_password"])
        dashboards = [{"title": d["dashboard_title"], "uuid": d.get("uuid"), "url": url(settings) + d["url"]}
                      for d in api.dashboards()]
    return {**base, "process": state, "dashboards": dashboards}


class Api:
    """Superset's REST API as one user: a JWT for the API, the CSRF token its session asks for."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.session = requests.Session()
        answer = self.session.post(f"{base}/api/v1/security/login", timeout=30,
                                   json={"username": username, "password": password, "provider": "db"})
        if answer.status_code != 200:
            raise ServiceError(f"superset: login as {username} refused ({answer.status_code})", service=SERVICE)
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        token = self.get("/api/v1/security/csrf_token/")["result"]
        self.session.headers.update({"X-CSRFToken": token, "Referer": base})

    def get(self, path: str, **params) -> dict:
        answer = self.session.get(self.base + path, params=params, timeout=60)
        self._check(answer, path)
        return answer.json()

    def _check(self, answer: requests.Response, path: str) -> None:
        if answer.status_code >= 400:
            raise ServiceError(f"superset: {path} answered {answer.status_code}: {answer.text[:500]}",
                               service=SERVICE, status=answer.status_code)

    def dashboards(self) -> list[dict]:
        found = self.get("/api/v1/dashboard/", q="(page_size:100,columns:!(id,uuid,dashboard_title,url))")
        return sorted(found["result"], key=lambda d: d["dashboard_title"])

    def import_zip(self, data: bytes) -> None:
        """Import an assets bundle, overwriting every object its UUIDs name (the dashboard import endpoint
        would leave existing charts and datasets as they are)."""
        path = "/api/v1/assets/import/"
        answer = self.session.post(self.base + path, timeout=300,
                                   files={"bundle": ("meterlake_dashboards.zip", data, "application/zip")})
        self._check(answer, path)

    def export_zip(self) -> bytes:
        """Every database, dataset, chart and dashboard of the instance as one assets bundle."""
        path = "/api/v1/assets/export/"
        answer = self.session.get(self.base + path, timeout=300)
        self._check(answer, path)
        return answer.content


def bundle_files(settings: Settings, assets: Path = ASSETS) -> dict[str, bytes]:
    """The bundle's files as Superset imports them: relative path → bytes, the warehouse's URI filled in."""
    out = {}
    for file in sorted(assets.rglob("*.yaml")):
        relative = file.relative_to(assets).as_posix()
        data = file.read_bytes()
        if relative.startswith("databases/"):
            text = data.decode().replace(WAREHOUSE_URI, f"duckdb:///{warehouse_path(settings)}")
            data = text.encode()
        out[relative] = data
    return out


def bundle_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for relative, data in files.items():
            zf.writestr(f"meterlake_dashboards/{relative}", data)
    return buffer.getvalue()


def digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for relative, data in sorted(files.items()):
        h.update(relative.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def import_bundle(settings: Settings, assets: Path, secret: dict[str, str]) -> bool:
    """Import the bundle unless this instance last imported the same bytes; whether it imported."""
    files = bundle_files(settings, assets)
    stamp = settings.state_dir / SERVICE / "data" / "imported.json"
    want = digest(files)
    if stamp.is_file() and json.loads(stamp.read_text()).get("digest") == want:
        return False
    api = Api(url(settings), "admin", secret["superset_admin_password"])
    api.import_zip(bundle_zip(files))
    stamp.write_text(json.dumps({"digest": want}))
    return True


_UUID = re.compile(r"^uuid: (\S+)$", re.M)


def export(settings: Settings, assets: Path = ASSETS) -> dict:
    """Write the running instance's dashboards (with their charts, datasets, database) back over ``assets``:
    each object to the file that holds its UUID, new ones under Superset's own names."""
    found = _context(settings, create=False)
    if found is None or not process.is_running(found[0]):
        raise ServiceError("superset is not running (run `meterlake dashboards up` first)", service=SERVICE)
    proc, secret = found
    api = Api(url(settings), "admin", secret["superset_admin_password"])
    dashboards = api.dashboards()
    by_uuid = {}
    for file in assets.rglob("*.yaml"):
        match = _UUID.search(file.read_text())
        if match:
            by_uuid[match.group(1)] = file
    written, added = [], []
    with zipfile.ZipFile(io.BytesIO(api.export_zip())) as zf:
        for name in zf.namelist():
            relative = name.split("/", 1)[1]
            text = zf.read(name).decode()
            if relative.startswith("databases/"):
                text = re.sub(r"^sqlalchemy_uri: .*$", f"sqlalchemy_uri: {WAREHOUSE_URI}", text, flags=re.M)
            match = _UUID.search(text)
            target = by_uuid.get(match.group(1)) if match else None
            if target is None:
                target = assets / relative
                if relative != "metadata.yaml":
                    added.append(relative)
            if relative == "metadata.yaml":
                continue  # its timestamp changes on every export; the bundle's own stays
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_file() or target.read_text() != text:
                target.write_text(text)
                written.append(str(target.relative_to(assets)))
    return {"assets": str(assets), "dashboards": len(dashboards), "written": sorted(written), "added": sorted(added)}
