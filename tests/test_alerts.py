"""Alert rules, checked and unit-tested with promtool; the cluster objects carry exactly these rules."""

import subprocess
import sys

import pytest
import yaml

from .test_deploy import ROOT, build, one, tool

RULES = ROOT / "alerts/helios-rules.yaml"
UNIT_TESTS = sorted((ROOT / "alerts/tests").glob("*.yaml"))
ALERTS = {"HeliosHighAnomalyRate", "HeliosInferenceLatency", "HeliosForecastStale", "HeliosScalerErrors",
          "HeliosNoWorkloadsRefreshed", "HeliosForecastErrorHigh"}


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, cwd=ROOT)


def test_rules_pass_promtool_check():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(ALERTS)} rules found" in result.stdout


def test_rules_pass_their_promtool_unit_tests():
    assert UNIT_TESTS
    result = promtool("test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_cover_every_alert_firing_and_silent():
    tested: dict[str, set[bool]] = {}
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                tested.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    assert set(tested) == ALERTS
    # Firing cases; silent neighbours sit in the same inputs (a series that must not fire).
    assert all(True in cases for cases in tested.values())


def test_a_wrong_threshold_fails_the_unit_tests(tmp_path):
    """The unit tests check behaviour: the latency alert at 300 ms must not fire for a 230 ms p99."""
    broken = RULES.read_text().replace(") > 0.1", ") > 0.3")
    assert broken != RULES.read_text()
    (tmp_path / "helios-rules.yaml").write_text(broken)
    (tmp_path / "tests").mkdir()
    for path in UNIT_TESTS:
        (tmp_path / "tests" / path.name).write_text(path.read_text())
    copies = [str(tmp_path / "tests" / p.name) for p in UNIT_TESTS]
    result = subprocess.run([tool("promtool"), "test", "rules", *copies], capture_output=True, text=True)
    assert result.returncode != 0 and "HeliosInferenceLatency" in result.stdout + result.stderr


def test_every_alert_explains_itself():
    assert {r["alert"] for r in rules()} == ALERTS
    for r in rules():
        assert r["labels"]["severity"] in {"warning", "critical"}, r["alert"]
        assert {"summary", "description", "runbook"} <= set(r["annotations"]), r["alert"]
        assert r.get("for"), f"{r['alert']}: a single bad scrape must not page"


def test_latency_alert_is_a_histogram_quantile():
    (rule,) = [r for r in rules() if r["alert"] == "HeliosInferenceLatency"]
    assert rule["expr"].startswith("histogram_quantile(0.99") and "_bucket" in rule["expr"]


@pytest.mark.parametrize(("overlay", "kind"), [("plain", "PrometheusRule"), ("gke", "Rules")])
def test_cluster_rule_objects_carry_exactly_the_rule_file(overlay, kind):
    obj = one(build(ROOT / "manifests/overlays" / overlay), kind)
    assert obj["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_generated_rule_objects_are_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "alerts/render.py"), "--check"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
