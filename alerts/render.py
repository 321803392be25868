"""Wrap alerts/helios-rules.yaml into the cluster objects that carry it; run after editing the rules.

    python alerts/render.py           # rewrite the generated files
    python alerts/render.py --check   # exit 1 if they differ from what the rules give (CI)

The rule groups are copied unchanged into a prometheus-operator PrometheusRule and a GKE Managed
Prometheus Rules object (both take Prometheus's own `groups:` format as `spec.groups`).
"""

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "alerts/helios-rules.yaml"
HEADER = "# Generated from alerts/helios-rules.yaml by `python alerts/render.py`: edit that file, not this one.\n"
TARGETS = {
    ROOT / "manifests/components/prometheus-operator/prometheusrule.yaml": (
        "monitoring.coreos.com/v1", "PrometheusRule",
        # kube-prometheus-stack selects rules by its release label; set yours if it differs.
        {"app.kubernetes.io/name": "helios", "release": "kube-prometheus-stack"}),
    ROOT / "manifests/components/gke-managed-prometheus/rules.yaml": (
        "monitoring.googleapis.com/v1", "Rules", {"app.kubernetes.io/name": "helios"}),
}


def render(api_version: str, kind: str, labels: dict) -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "helios", "labels": labels},
           "spec": {"groups": groups}}
    return HEADER + yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report generated files that are out of date")
    args = parser.parse_args()
    stale = []
    for path, spec in TARGETS.items():
        text = render(*spec)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT))
        else:
            path.write_text(text)
    for path in stale:
        print(f"{path} is out of date: run `python alerts/render.py`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
