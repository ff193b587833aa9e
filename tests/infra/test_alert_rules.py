"""The Prometheus alert rules in infra/prometheus/alerts.yml parse: promtool's own check when promtool is on the
PATH, else a check of the rule file's schema and that every series a rule uses is one the platform exports."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from streaming import metrics

RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "alerts.yml"
DURATION = re.compile(r"^\d+(ms|s|m|h|d|w|y)$")
#: what the services export (streaming/metrics.py), with the suffixes Prometheus adds to counters and histograms
EXPORTED = {m._name + suffix for m in (metrics.READS, metrics.FILES, metrics.QUARANTINED, metrics.WRITE_RETRIES,
                                       metrics.WRITE_TIMEOUTS, metrics.REJOINS) for suffix in ("_total",)} | {
    metrics.LAG._name, metrics.LAST_SUCCESS._name, metrics.DUE_RUNS._name,
    *(metrics.BATCH._name + s for s in ("_bucket", "_count", "_sum"))}
FUNCTIONS = {"sum", "by", "and", "or", "on", "deriv", "increase", "rate", "clamp_min", "time", "max", "min"}


def test_the_alert_rules_parse():
    if shutil.which("promtool"):
        out = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
    doc = yaml.safe_load(RULES.read_text())
    names = set()
    for group in doc["groups"]:
        assert set(group) <= {"name", "rules", "interval", "limit"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
            assert rule["alert"] not in names and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            names.add(rule["alert"])
            assert "for" not in rule or DURATION.match(rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]
            expr = rule["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]"), expr
            for word in set(re.findall(r"\b[a-z_][a-z0-9_]*\b(?=\s*[{(\[]|\s|$)", expr)) - FUNCTIONS:
                if word.startswith("meterlake_"):
                    assert word in EXPORTED, f"{rule['alert']}: {word} is not a series the platform exports"
    assert {"ConsumerLagGrowing", "StallWatchdogFiring", "QuarantineShareHigh", "SettlementRunOverdue"} <= names


@pytest.mark.parametrize("broken", ["for: 15 minutes", "expr: sum(meterlake_consumer_lag"])
def test_a_broken_rule_is_caught(tmp_path, broken, monkeypatch):
    key = broken.split(":")[0]
    text = RULES.read_text()
    original = next(line for line in text.splitlines() if line.strip().startswith(f"{key}:"))
    indent = original[:len(original) - len(original.lstrip())]
    monkeypatch.setattr(f"{__name__}.RULES", tmp_path / "alerts.yml")
    (tmp_path / "alerts.yml").write_text(text.replace(original, indent + broken, 1))
    with pytest.raises(AssertionError):
        test_the_alert_rules_parse()
