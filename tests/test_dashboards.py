"""Grafana dashboards: provisionable, data source chosen by a variable, and every PromQL expression
parses (promtool, Prometheus's own parser) and names only metrics a running Helios exports (read from
a live /metrics scrape) or standard kube-state-metrics ones. The alert rules are held to the same."""

import asyncio
import json
import re
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .test_deploy import ROOT, build, one, tool

DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
RULES = ROOT / "alerts/helios-rules.yaml"
# Standard kube-state-metrics series the dashboards may use beside Helios's own.
KUBE_STATE_METRICS = {
    "kube_deployment_status_replicas", "kube_deployment_spec_replicas",
    "kube_horizontalpodautoscaler_status_current_replicas", "kube_horizontalpodautoscaler_status_desired_replicas",
}
# Grafana's built-in variables, replaced by what Grafana would put there.
GRAFANA_BUILTINS = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}
# What each family type exposes, as prometheus_client writes it.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count"),
            "gauge": ("",), "info": ("_info",), "stateset": ("",), "unknown": ("",), "gaugehistogram": ("_bucket",)}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(board: dict) -> list[dict]:
    out = []
    for p in board["panels"]:
        out += [p] + p.get("panels", [])  # rows nest panels
    return out


def substitute(expr: str, variables: list[str]) -> str:
    """The query as Grafana sends it: built-ins replaced, dashboard variables set to 'All' (.*)."""
    for name, value in GRAFANA_BUILTINS.items():
        expr = expr.replace(name, value)
    for name in variables:
        expr = re.sub(rf"\$\{{{name}\}}|\${name}\b", ".*", expr)
    assert "$" not in expr, f"unknown variable in {expr}"
    return expr


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable of every dashboard."""
    out = []
    for path in DASHBOARDS:
        board = load(path)
        variables = [v["name"] for v in board["templating"]["list"]]
        for p in panels(board):
            for t in p.get("targets", []):
                out.append((f"{path.name}: {p['title']} {t['refId']}", substitute(t["expr"], variables)))
        for v in board["templating"]["list"]:
            if v["type"] == "query":  # label_values(<selector>, label): the selector is PromQL
                (selector,) = re.fullmatch(r"label_values\((.+),\s*\w+\)", v["query"]["query"]).groups()
                out.append((f"{path.name}: variable {v['name']}", substitute(selector, variables)))
    return out


def rule_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())["groups"]
    return [(f"{RULES.name}: {r['alert']}", r["expr"]) for g in rules for r in g["rules"]]


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def test_the_four_dashboards_exist_with_unique_uids():
    titles = {load(p)["title"] for p in DASHBOARDS}
    assert titles == {"Helios / Overview", "Helios / Anomaly Timeline", "Helios / Scaling History",
                      "Helios / Model Performance"}
    assert len({load(p)["uid"] for p in DASHBOARDS}) == len(DASHBOARDS)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_provisionable_and_takes_its_data_source_from_a_variable(path):
    board = load(path)
    assert board["schemaVersion"] >= 36 and "id" not in board, "provisioned boards carry a uid, not an id"
    (ds,) = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    used = [p["datasource"] for p in panels(board)] + [t["datasource"] for p in panels(board) for t in p["targets"]]
    used += [v["datasource"] for v in board["templating"]["list"] if v["type"] == "query"]
    assert used and all(d == {"type": "prometheus", "uid": "${datasource}"} for d in used)
    taken: set[tuple[int, int]] = set()
    for p in panels(board):  # panels must not overlap on Grafana's 24-column grid
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells
    assert len({p["id"] for p in panels(board)}) == len(panels(board))


def test_overview_draws_the_interval_band_against_the_observed_load():
    board = load(ROOT / "dashboards/helios-overview.json")
    (panel,) = [p for p in board["panels"] if "vs observed" in p["title"]]
    exprs = " ".join(t["expr"] for t in panel["targets"])
    for bound in ("point", "lower", "upper"):
        assert f'bound="{bound}"' in exprs
    assert "helios_observed_value" in exprs
    fills = [prop for o in panel["fieldConfig"]["overrides"] for prop in o["properties"]
             if prop["id"] == "custom.fillBelowTo"]
    assert fills, "the interval is drawn as a band (fillBelowTo)"


def test_every_expression_parses_with_promtool(tmp_path):
    exprs = dashboard_expressions() + rule_expressions()
    rules = {"groups": [{"name": "parse-check", "rules": [
        {"record": f"check:expr_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]}]}
    path = tmp_path / "exprs.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(exprs)} rules found" in result.stdout


def test_promtool_refuses_a_broken_expression(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"record": "r", "expr": "sum(rate(helios_refreshes_total[$__rate_interval])"}]}]}))
    result = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode != 0


def families_to_names(exposition: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + s for s in SUFFIXES[family.type]}
        names |= {s.name for s in family.samples}
    return names


async def test_dashboards_and_rules_name_only_metrics_helios_exports(start_app, client_for):
    app = await start_app()
    client = client_for(app)
    # A demo workload per kind of signal, so every per-workload family has samples.
    for name, signal in (("web", "load"), ("api", "cpu"), ("db", "memory")):
        await client.get_metrics({"source": "demo", "targetValue": "50", "signal": signal}, name=name)
    for _ in range(300):  # the provisioning gauges appear once each workload's first replay is done
        exported = families_to_names(client.scrape())
        if "helios_slo_attainable" in exported:
            break
        await asyncio.sleep(0.1)
    assert "helios_forecast_value" in exported  # the scrape saw the workloads
    allowed = exported | KUBE_STATE_METRICS
    exprs = dashboard_expressions() + rule_expressions()
    unknown = {f"{where}: {name}" for where, e in exprs for name in metric_names(e) - allowed}
    assert not unknown, "\n".join(sorted(unknown))
    used = set().union(*(metric_names(e) for _, e in exprs))
    assert {"helios_forecast_value", "helios_inference_duration_seconds_bucket", "helios_stale",
            "helios_anomaly_detections_total", "kube_horizontalpodautoscaler_status_desired_replicas"} <= used


def test_prometheus_example_queries_a_metric_the_dashboards_know():
    doc = yaml.safe_load((ROOT / "manifests/examples/scaledobject-prometheus.yaml").read_text())
    (query,) = [t["metadata"]["query"] for t in doc["spec"]["triggers"] if t["type"] == "prometheus"]
    assert metric_names(query) == {"helios_predicted_cpu"}
    assert any("helios_predicted_cpu" in e for _, e in dashboard_expressions())


def test_provisioning_file_and_config_map_carry_every_dashboard():
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/helios.yaml").read_text())
    assert provider["apiVersion"] == 1
    (p,) = provider["providers"]
    assert p["type"] == "file" and p["options"]["path"]
    config_map = one(build(ROOT / "manifests/overlays/plain"), "ConfigMap", "helios-grafana-dashboards")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert set(config_map["data"]) == {p.name for p in DASHBOARDS}
    # kubectl apply (client side) copies the object into an annotation limited to 256 KiB.
    assert sum(len(v.encode()) for v in config_map["data"].values()) < 200 * 1024
