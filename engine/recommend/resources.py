"""The resource rules: a bigger memory limit before pods are OOM-killed, a smaller CPU request when most
of it sits idle. Both read per-pod usage; both suggest a number and say how it was computed.

CPU request (DECREASE_CPU) is sized the way the Kubernetes VPA recommender sizes its target: a high
percentile of the observed usage distribution (VPA: the 90th percentile of a CPU usage histogram whose
samples decay with a one-day half-life) times one plus a safety margin (VPA's default margin fraction
is 0.15), and never below a floor (VPA's default minimum is 25 millicores). Here the distribution is
the plain samples of the last `cpu_window` (a day by default, so it spans the daily cycle), not a
decaying histogram. "Consistently below" means that percentile is under `cpu_scale_down_threshold`
of the request, i.e. at least that share of the samples are; the confidence is the share that is.

Memory (INCREASE_MEMORY) reads the peak, not a percentile: memory is not compressible, a pod over its
limit is killed, so (like VPA, which sizes memory on peaks) one high sample is enough. The suggested
limit puts that peak at `memory_warning_threshold / (1 + memory_margin)` of the new limit
(0.85 / 1.15 = 74% by default), below the warning threshold with room to spare; it is rounded up to
whole MiB, and is always above the current limit (the peak already exceeds the threshold).
"""

from __future__ import annotations

import math

import numpy as np

from .inputs import WorkloadInputs
from .policy import Action, ScalingPolicy, Urgency
from .result import Condition, ResourceSuggestion
from .rules import Outcome
from .windows import past, quantile

MIB = 1 << 20


def increase_memory(inputs: WorkloadInputs, policy: ScalingPolicy, now: float) -> Outcome:
    limit = inputs.memory_limit_bytes
    if limit is None or inputs.memory_usage_bytes is None:
        missing = "memory limit" if limit is None else "memory usage"
        return f"INCREASE_MEMORY not evaluated: no {missing}{_because(inputs)}"
    usage = past(inputs.memory_usage_bytes, now, policy.memory_window)
    if not len(usage):
        return (f"INCREASE_MEMORY not evaluated: no memory usage in the last {policy.memory_window:.0f} s"
                f"{_because(inputs)}")
    thr, margin = policy.memory_warning_threshold, policy.memory_margin
    peak = float(np.max(usage.values))
    util = peak / limit
    seen = f"memory peak {peak / MIB:.1f} MiB over the last {policy.memory_window:.0f} s is {util:.1%} of the limit"
    if util <= thr:
        return f"INCREASE_MEMORY: {seen} (<= {thr:.0%})"
    suggested = math.ceil(peak * (1 + margin) / thr / MIB - 1e-9) * MIB
    basis = (f"peak {peak:.0f} B x (1 + {margin:g}) / {thr:g}, rounded up to whole MiB: "
             f"the peak at {peak / suggested:.1%} of the new limit")
    ceiling = policy.memory_limit_max_bytes
    if ceiling is not None and suggested > ceiling:
        if limit >= ceiling:  # nothing higher to suggest: memory pressure is still news
            return (f"INCREASE_MEMORY: {seen} (> {thr:.0%}), but the limit is at memory_limit_max_bytes "
                    f"({ceiling / MIB:.0f} MiB): more replicas or less memory per pod, not a higher limit")
        suggested = float(ceiling)
        basis += f"; clamped to memory_limit_max_bytes {ceiling / MIB:.0f} MiB"
    urgency = Urgency.CRITICAL if util >= 1 else Urgency.HIGH if util >= (1 + thr) / 2 else Urgency.MEDIUM
    detail = f"{seen} (> {thr:.0%}): suggested limit {suggested / MIB:.0f} MiB (now {limit / MIB:.1f} MiB)"
    return Condition(Action.INCREASE_MEMORY, detail, 1.0, urgency, rule="memory",
                     resource=ResourceSuggestion("memory", float(limit), float(suggested), "bytes", basis))


def decrease_cpu(inputs: WorkloadInputs, policy: ScalingPolicy, now: float) -> Outcome:
    request = inputs.cpu_request_cores
    if request is None or inputs.cpu_usage_cores is None:
        missing = "CPU request" if request is None else "CPU usage"
        return f"DECREASE_CPU not evaluated: no {missing}{_because(inputs)}"
    usage = past(inputs.cpu_usage_cores, now, policy.cpu_window)
    if not usage.covers(policy.cpu_window, policy.min_window_coverage):
        return (f"DECREASE_CPU not evaluated: needs CPU usage over {policy.min_window_coverage:.0%} "
                f"of the last {policy.cpu_window:.0f} s{_because(inputs)}")
    pct, thr, margin = policy.cpu_request_percentile, policy.cpu_scale_down_threshold, policy.cpu_request_margin
    p = quantile(usage.values, pct)
    seen = (f"p{pct * 100:g} CPU usage {p:.4g} cores over the last {policy.cpu_window:.0f} s "
            f"is {p / request:.1%} of the request")
    if p >= thr * request:
        return f"DECREASE_CPU: {seen} (>= {thr:.0%})"
    floor = policy.cpu_request_floor_cores
    suggested = max(floor, math.ceil(p * (1 + margin) * 1000 - 1e-9) / 1000)
    if suggested >= request:
        return f"DECREASE_CPU: {seen}, but the request {request:.4g} cores is already at the floor {floor:g}"
    below = float(np.mean(usage.values < thr * request))
    basis = (f"p{pct * 100:g} usage {p:.4g} cores x (1 + {margin:g}), rounded up to whole millicores, "
             f"at least {floor:g} cores (the Kubernetes VPA recommender's way)")
    detail = (f"{seen} (< {thr:.0%}, {below:.0%} of samples below): suggested request {suggested:g} cores "
              f"(now {request:g})")
    return Condition(Action.DECREASE_CPU, detail, below, Urgency.LOW, rule="cpu",
                     resource=ResourceSuggestion("cpu", float(request), float(suggested), "cores", basis))


def _because(inputs: WorkloadInputs) -> str:
    return f" ({inputs.resource_note})" if inputs.resource_note else ""
