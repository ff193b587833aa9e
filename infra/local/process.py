"""One object per service process, like ccm: a process has its own directory (conf, data, log, pid), address and
ports. Starting, waiting, stopping, killing and reporting are a few generic functions over :class:`JvmProcess`.

A process is "ours" only if the PID in its pid file is alive *and* its command line names its home directory, so
``down`` never signals a process it did not start, even after PID reuse.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from meterlake.errors import ServiceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JvmProcess:
    name: str                       # "cassandra-2", "kafka-1", "namenode"
    service: str                    # "cassandra", "kafka", "hdfs", "spark"
    home: Path                      # state/<name>/{conf,data,log,pid}
    main_class: str
    classpath: Sequence[Path | str]
    jvm_options: Sequence[str]
    address: str
    ports: dict[str, int]
    is_ready: Callable[[], bool] = field(compare=False, repr=False)
    args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = field(default=None, compare=False, repr=False)  # render conf, format

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "log" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    def command(self) -> list[str]:
        classpath = os.pathsep.join(str(p) for p in self.classpath)
        # -Dmeterlake.home marks the process as ours (see pid()).
        return ["java", f"-Dmeterlake.home={self.home}", *self.jvm_options, "-cp", classpath, self.main_class,
                *self.args]


def pid(proc: JvmProcess) -> int | None:
    """The PID of our running process, or None."""
    try:
        value = int(proc.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        p = psutil.Process(value)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        if f"-Dmeterlake.home={proc.home}" not in p.cmdline():
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return value


def is_running(proc: JvmProcess) -> bool:
    return pid(proc) is not None


def log_tail(proc: JvmProcess, lines: int = 30) -> str:
    try:
        with proc.log_file.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log yet)"
    return "\n".join(text.splitlines()[-lines:])


_ERROR_LINE = re.compile(r"\b(ERROR|FATAL|SEVERE)\b|Exception\b|^Caused by:")


def log_errors(proc: JvmProcess, limit: int = 10) -> list[str]:
    """The last error lines since the last start: a JVM's shutdown after a failed start pushes them out of the
    log's tail."""
    try:
        with proc.log_file.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 1024 * 1024))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []
    start = max((i for i, line in enumerate(lines) if line.startswith("==== meterlake: starting")), default=0)
    found: list[str] = []
    for line in lines[start:]:
        if _ERROR_LINE.search(line) and line not in found:
            found.append(line)
    return found[-limit:]


_last_error: dict[str, str] = {}


def _safe_ready(proc: JvmProcess) -> bool:
    try:
        ready = bool(proc.is_ready())
    except Exception as exc:  # a client error while the service is still starting means "not yet"
        _last_error[proc.name] = f"{type(exc).__name__}: {exc}"
        log.debug("%s not ready: %s", proc.name, exc)
        return False
    if not ready:
        _last_error[proc.name] = "readiness check answered not ready"
    return ready


def launch(proc: JvmProcess) -> int:
    """Start the process unless it is already running (idempotent). Does not wait for readiness."""
    existing = pid(proc)
    if existing is not None:
        return existing
    for d in (proc.conf_dir, proc.data_dir, proc.log_file.parent):
        d.mkdir(parents=True, exist_ok=True)
    if proc.prepare is not None:
        proc.prepare()
    env = {**os.environ, **proc.env}
    with proc.log_file.open("ab") as log:
        log.write(f"\n==== meterlake: starting {proc.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        log.flush()
        child = subprocess.Popen(
            proc.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=proc.home, env=env, start_new_session=True,
        )
    proc.pid_file.write_text(f"{child.pid}\n")
    _wait_for_exec(proc, child)
    return child.pid


def _wait_for_exec(proc: JvmProcess, child: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """Until the child has exec'd java (its command line carries our marker) or has exited: on a loaded machine
    the forked child still shows Python's command line for a moment, and pid() would call it not ours."""
    deadline = time.monotonic() + timeout_s
    marker = f"-Dmeterlake.home={proc.home}"
    while time.monotonic() < deadline and child.poll() is None:
        try:
            if marker in psutil.Process(child.pid).cmdline():
                return
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return
        time.sleep(0.02)


def wait_ready(procs: Sequence[JvmProcess], timeout_s: float, poll_s: float = 1.0) -> None:
    """Wait until every process answers its readiness check; fail naming the service and its log's tail."""
    pending = list(procs)
    deadline = time.monotonic() + timeout_s
    while pending:
        for proc in list(pending):
            if not is_running(proc):
                raise ServiceError(
                    f"{proc.name} exited during start-up (see {proc.log_file})",
                    service=proc.service, process=proc.name, log=str(proc.log_file), log_tail=log_tail(proc),
                    log_errors=log_errors(proc),
                )
            if _safe_ready(proc):
                pending.remove(proc)
        if not pending:
            return
        if time.monotonic() > deadline:
            proc = pending[0]
            raise ServiceError(
                f"{proc.name} did not become ready within {timeout_s:.0f}s (see {proc.log_file})",
                service=proc.service, process=proc.name, log=str(proc.log_file),
                last_check=_last_error.get(proc.name, ""), log_tail=log_tail(proc),
                log_errors=log_errors(proc),
            )
        time.sleep(poll_s)


def signal_and_wait(proc: JvmProcess, sig: int, timeout_s: float) -> bool:
    """Send ``sig`` to our process; wait for it to exit. True if it is gone."""
    value = pid(proc)
    if value is None:
        return True
    try:
        p = psutil.Process(value)
        p.send_signal(sig)
        p.wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def stop(proc: JvmProcess, timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time. Leaves no process behind."""
    if not signal_and_wait(proc, signal.SIGTERM, timeout_s):
        signal_and_wait(proc, signal.SIGKILL, 10.0)
    proc.pid_file.unlink(missing_ok=True)


def stop_all(procs: Sequence[JvmProcess], timeout_s: float = 30.0) -> list[JvmProcess]:
    """Stop several processes at once: SIGTERM to all, then wait (SIGKILL stragglers). Returns those that ran."""
    running = [(proc, pid(proc)) for proc in procs]
    running = [(proc, value) for proc, value in running if value is not None]
    handles = []
    for _, value in running:
        try:
            p = psutil.Process(value)
            p.terminate()
            handles.append(p)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(handles, timeout=timeout_s)
    for p in alive:
        p.kill()
    psutil.wait_procs(alive, timeout=10)
    for proc in procs:
        proc.pid_file.unlink(missing_ok=True)
    return [proc for proc, _ in running]


def kill(proc: JvmProcess) -> None:
    """SIGKILL, as a crash would (failure tests); the data directory stays for ``start``."""
    signal_and_wait(proc, signal.SIGKILL, 10.0)


def status(proc: JvmProcess, check_ready: bool = True) -> dict:
    value = pid(proc)
    rss = None
    if value is not None:
        try:
            rss = psutil.Process(value).memory_info().rss
        except psutil.NoSuchProcess:
            value = None
    if value is None:
        state = "stopped" if not proc.pid_file.exists() else "dead"
    else:
        state = "ready" if (not check_ready or _safe_ready(proc)) else "starting"
    return {
        "name": proc.name,
        "service": proc.service,
        "state": state,
        "address": proc.address,
        "ports": proc.ports,
        "pid": value,
        "rss_bytes": rss,
        "log": str(proc.log_file),
    }


def port_in_use(address: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return True
    return False
