"""Every policy on one trace, with the same cluster, the same window and the same Helios settings."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from helios.adapters.file import FileSource
from helios.engine.anomaly.base import Severity
from helios.engine.models import MODELS
from helios.engine.replay.loop import Cluster, Demand, Run, simulate
from helios.engine.replay.provision import Choice
from helios.engine.types import Series

from ...config.metadata import MetadataParser
from ...config.settings import Settings
from ..tables import utc_iso
from .policies import ForecastTape, Helios, Oracle, Reactive

BENCHMARKS = ("reactive", "oracle")  # the policies that are not a Helios model
HEADROOM = re.compile(r"reactive\+(\d+(?:\.\d+)?)%")  # reactive+N%: reactive scaling with N % headroom


def policy_names() -> list[str]:
    return [*BENCHMARKS, "reactive+N%", *sorted(MODELS)]


def check_policy(name: str) -> str:
    """`name` if it is a policy `compare` runs, else ValueError naming the allowed forms."""
    if name in BENCHMARKS or name in MODELS or HEADROOM.fullmatch(name):
        return name
    raise ValueError(f"unknown {name}; allowed: reactive, reactive+N% (N a number >= 0, e.g. "
                     f"reactive+10% or reactive+2.5%), oracle, or a model: {', '.join(sorted(MODELS))}")


def headroom(policy: str) -> float | None:
    """N / 100 of a reactive+N% policy, 0 for reactive, None for any other."""
    if policy == "reactive":
        return 0.0
    m = HEADROOM.fullmatch(policy)
    return float(m.group(1)) / 100 if m else None


@dataclass(frozen=True)
class Replay:
    """What to replay: the window and the knobs shared by every policy."""

    warmup: float = 7 * 86400.0  # history before the window (what the models start from)
    days: float | None = None  # simulate only the last `days` of the trace
    peak_replicas: int = 20  # with no target value: the window's 99th percentile needs this many replicas
    trigger: dict[str, str] = field(default_factory=dict)  # scalerMetadata keys: quantile, leadTime, horizon
    # Also the anomaly alerts serving would raise along the way (settings.anomaly's detector; xgboost
    # scores each new sample with its saved detector, about 45 ms of CPU: off unless asked).
    anomaly: bool = False


def window(trace: Series, replay: Replay) -> tuple[float, float]:
    first, end = trace.timestamps[0], trace.timestamps[-1]
    start = first + replay.warmup
    if replay.days is not None:
        start = max(start, end - replay.days * 86400)
    if start >= end:
        span = (end - first) / 86400
        raise ValueError(f"the trace spans {span:.2f} days: nothing is left after a warm-up of "
                         f"{replay.warmup / 86400:g} days (--warmup)")
    return float(start), float(end)


def resolve(cluster: Cluster, demand: Demand, start: float, end: float, peak_replicas: int) -> Cluster:
    """The cluster with its target value (by default: the window's 99th percentile of demand needs
    `peak_replicas` replicas, so every trace needs between 1 and about that many) and capacity."""
    target = cluster.target_value
    if target is None:
        p99 = float(np.percentile(demand.at(np.arange(start, end, cluster.sync_period)), 99))
        if p99 <= 0:
            raise ValueError("the demand is 0 in the simulated window: give --target-value")
        target = p99 / peak_replicas
    return replace(cluster, target_value=target, capacity=cluster.capacity or target)


def hpa_keys(cluster: Cluster) -> dict[str, str]:
    """The trigger keys that tell Helios's provisioning replay the simulated HPA, as a user would."""
    return {"podStartup": f"{cluster.startup_delay:g}s", "hpaTolerance": repr(cluster.tolerance),
            "scaleUpStabilization": f"{cluster.behavior.scale_up.stabilization_window_seconds}s",
            "scaleDownStabilization": f"{cluster.behavior.scale_down.stabilization_window_seconds}s"}


@dataclass(frozen=True)
class Comparison:
    trace: str
    cluster: Cluster  # resolved: its target value and capacity are set
    runs: dict[str, Run]  # by policy
    choices: dict[str, list[Choice]] = field(default_factory=dict)  # each Helios policy's provisioning choices
    # With Replay.anomaly: each Helios policy's anomaly alerts, (sample timestamp, severity), in order.
    alerts: dict[str, list[tuple[int, Severity]]] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        rows = []
        for policy, run in self.runs.items():
            row = run.outcome.row(self.trace, policy)
            if policy in self.alerts:
                row["anomaly_alerts"] = len(self.alerts[policy])
                row["anomaly_alerted"] = [f"{utc_iso(at)} {level.name.lower()}" for at, level in self.alerts[policy]]
            rows.append(row)
        return rows


def compare(name: str, trace: Series, policies: Sequence[str], cluster: Cluster, replay: Replay,
            settings: Settings, step: int) -> Comparison:
    """Run each policy on `trace` over the replay window."""
    demand = Demand(trace)
    start, end = window(trace, replay)
    cluster = resolve(cluster, demand, start, end, replay.peak_replicas)
    target = cluster.target_value
    parse = MetadataParser({"file": FileSource()}, settings.models, MODELS, settings.provisioning,
                           settings.scaling.pod_startup_seconds)
    runs, choices, alerts = {}, {}, {}
    for policy in policies:
        if (h := headroom(policy)) is not None:
            chosen = Reactive(trace, h)
        elif policy == "oracle":
            lookahead = cluster.startup_delay + cluster.polling_interval + cluster.sync_period
            chosen = Oracle(trace, lookahead, cluster.tolerance)
        else:
            trigger = parse("sim", name[:63], {"source": "file", "path": name, "targetValue": repr(target),
                                               "model": policy, **hpa_keys(cluster), **replay.trigger})
            tape = ForecastTape(trace, trigger, settings.models, settings.metrics, step, settings.provisioning,
                                settings.anomaly if replay.anomaly else None)
            chosen = Helios(tape, trigger, settings.metrics.staleness_limit)
            choices[policy] = tape.choices
            if replay.anomaly:
                alerts[policy] = tape.alerts  # filled as the run refreshes the tape
        runs[policy] = simulate(demand, chosen, cluster, start, end)
    return Comparison(name, cluster, runs, choices, alerts)
