"""The layering rule (README, "Layout"; contracts in .importlinter): imports only go down, and no circles.

The check runs import-linter over the project's own packages. It also runs over a copy of the tree with one wrong
import added, to show that the contracts catch each kind of back-arrow rather than passing whatever they are given.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("meterlake", "streaming", "jobs", "infra", "reports", "benchmarks")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    # a subprocess: import-linter finds the packages from its working directory, not from this process's imports
    return subprocess.run([str(LINT), "--config", str(root / ".importlinter"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, timeout=120)


def test_the_project_keeps_its_layers():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.toml",
                                                                                       "*.xml", "templates"))
    shutil.copy(ROOT / ".importlinter", root / ".importlinter")
    return root


@pytest.mark.parametrize("module, line, broken", [
    pytest.param("jobs/settle/job.py", "import streaming.kafka_io", "Middle floor",
                 id="jobs import streaming"),
    pytest.param("streaming/mirror/query.py", "import jobs.settle.job", "Middle floor",
                 id="streaming imports jobs"),
    pytest.param("meterlake/schema.py", "import infra.local.versions", "Ground:",
                 id="the core imports the launcher"),
    pytest.param("meterlake/calendar.py", "import streaming.kafka_io", "Ground:",
                 id="the core imports streaming"),
    pytest.param("streaming/kafka_io.py", "import meterlake.cli", "Top floor:",
                 id="streaming imports the CLI"),
    pytest.param("infra/local/process.py", "import jobs.settle.job", "Middle floor",
                 id="the launcher imports jobs"),
    pytest.param("meterlake/config.py", "import meterlake.clients", "No import cycles",
                 id="a circle in the core"),
    pytest.param("streaming/ingest/claims.py", "import streaming.mirror.consumer", "Streaming:",
                 id="ingest imports the mirror"),
])
def test_a_wrong_import_breaks_a_contract(tree_copy, module, line, broken):
    # GIVEN the project's tree with one import that runs the wrong way
    path = tree_copy / module
    original = path.read_text()
    path.write_text(f"{original}\n{line}\n")
    try:
        # WHEN the layering check runs over it
        result = lint(tree_copy)
    finally:
        path.write_text(original)
    # THEN it fails, naming the broken contract and the importing module
    assert result.returncode != 0, result.stdout
    broken_section = result.stdout.split("Broken contracts", 1)[-1]
    assert broken in broken_section
    importer = module.removesuffix(".py").replace("/", ".")
    relative = "." + importer.rsplit(".", 1)[-1] + " -> "  # a cycle is named relative to its folder
    assert importer in broken_section or relative in broken_section
