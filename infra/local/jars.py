"""Resolve a service's pinned jars from Maven Central into a cache outside the repository.

``resolve("kafka", cache_dir)`` renders a throw-away POM from versions.toml (a pure function, tested without
Maven), runs ``mvn dependency:copy-dependencies`` once, and returns the folder of jars. The folder's name carries a
hash of the artifact list, so a version bump resolves afresh and an unchanged one costs nothing. A ``.complete``
marker is written last: an interrupted download is redone, never half-used.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

from infra.local import versions
from meterlake.errors import ServiceError

MARKER = ".complete"


def render_pom(artifacts: list[str]) -> str:
    """A minimal POM depending on ``group:artifact:version`` coordinates."""
    deps = []
    for coord in artifacts:
        group, artifact, version = coord.split(":")
        deps.append(
            "    <dependency>"
            f"<groupId>{escape(group)}</groupId><artifactId>{escape(artifact)}</artifactId>"
            f"<version>{escape(version)}</version></dependency>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>org.meterlake.local</groupId><artifactId>jars</artifactId><version>0</version>\n"
        "  <packaging>pom</packaging>\n"
        "  <dependencies>\n" + "\n".join(deps) + "\n  </dependencies>\n</project>\n"
    )


def cache_key(artifacts: list[str], excludes: list[str]) -> str:
    text = "\n".join(sorted(artifacts)) + "\n--\n" + "\n".join(sorted(excludes))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def jar_dir(service: str, cache_dir: Path) -> Path:
    spec = versions.service(service)
    artifacts, excludes = spec["artifacts"], spec.get("exclude_artifact_ids", [])
    return cache_dir / f"{service}-{cache_key(artifacts, excludes)}"


def is_resolved(service: str, cache_dir: Path) -> bool:
    return (jar_dir(service, cache_dir) / MARKER).is_file()


def resolve(service: str, cache_dir: Path, *, quiet: bool = True) -> Path:
    """Download the service's jars (with runtime dependencies) unless already cached; return their folder."""
    spec = versions.service(service)
    artifacts, excludes = spec["artifacts"], spec.get("exclude_artifact_ids", [])
    target = jar_dir(service, cache_dir)
    if (target / MARKER).is_file():
        return target
    if shutil.which("mvn") is None:
        raise ServiceError(f"{service}: Maven (mvn) is not installed; it resolves the pinned jars", service=service)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix=f"meterlake-{service}-pom-") as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(render_pom(artifacts))
        cmd = ["mvn", "-B", "-f", str(pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={target}", "-DincludeScope=runtime"]
        if quiet:
            cmd.insert(1, "-q")
        if excludes:
            cmd.append("-DexcludeArtifactIds=" + ",".join(excludes))
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise ServiceError(f"{service}: resolving {', '.join(artifacts)} from Maven failed", service=service,
                           log_tail=tail)
    (target / MARKER).write_text("\n".join(artifacts) + "\n")
    return target
