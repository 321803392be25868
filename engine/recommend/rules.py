"""The replica rules and the alert rule. Each reads the inputs and answers a Condition when it triggers,
or a short note saying why not (not evaluated, or the numbers that kept it quiet).

Sizing: every replica rule asks for the fewest replicas that hold the load it sizes on at or below
`cpu_scale_up_threshold` of capacity (windows.replicas_for). One sizing rule for up and down keeps the
band between the two thresholds free of flapping: after any move, the load it sized on sits at or
below the scale-up threshold, so no rule fires back on the same numbers. The targets here are not yet
clamped to [min_replicas, max_replicas]; decide.py clamps and notes it.

Per rule: when it triggers; what it sizes on; its confidence.
- SCALE_UP: the peak point forecast over the next `scale_up_window` is above `cpu_scale_up_threshold`
  of current capacity, with confidence above `confidence_threshold`; sizes on that peak; confidence
  is the largest probability, over the window's steps, that the load exceeds the threshold, read off
  the forecast's quantiles (the point says how high, the quantiles how sure).
- PREEMPTIVE_SCALE: a point forecast within `preemptive_window` is above `preemptive_ratio` x the
  baseline (the median load over the last `scale_down_window`: robust to the odd spike), and the
  window's peak needs more replicas than run now; sizes on that peak; confidence is the largest
  probability that the load exceeds ratio x baseline.
- SCALE_DOWN: the load's peak over the last `scale_down_window` is below `cpu_scale_down_threshold` of
  capacity, and so is the forecast's `scale_down_quantile` over the next `scale_down_window` (never
  scale down into a predicted rise; without a forecast, no scale-down); sizes on the larger of the two
  peaks; confidence is 1 - the largest probability that the load exceeds the scale-down threshold.
- ALERT_WARNING / ALERT_CRITICAL: the anomaly detector's severity; confidence is 1 - the two-sided
  Gaussian tail of the score (2.5 sigma: 0.988), or 1 without a score.
- Replica bounds: running below min_replicas (SCALE_UP) or above max_replicas (SCALE_DOWN).
- Served (a workload Helios steers, `served_value` given): SCALE_UP / SCALE_DOWN to what the served value
  makes the HPA aim for, ceil(value / targetValue), when value / (current x targetValue) leaves the HPA's
  tolerance band; the one decision, so the threshold rules above only add advisory lines (decide.py).

PREEMPTIVE_SCALE is timed: `act_by` = the spike's first step - `pod_startup_seconds`, the latest moment
to request pods that are ready when it arrives. Urgency from the slack (act_by - now): none left is
CRITICAL, less than one pod start-up is HIGH, less than `scale_up_window` is MEDIUM, more is LOW.
SCALE_UP's urgency comes from the load observed now: at or over capacity CRITICAL, over the threshold
HIGH, only predicted MEDIUM.
"""

from __future__ import annotations

import math

import numpy as np

from ..anomaly.base import Severity
from .inputs import WorkloadInputs
from .policy import Action, ScalingPolicy, Urgency
from .result import Condition
from .windows import ahead, median, past, replicas, replicas_for, utilisation

Outcome = Condition | str | None


def scale_up(inputs: WorkloadInputs, policy: ScalingPolicy, now: float) -> Outcome:
    window = ahead(inputs.load_forecast, now, policy.scale_up_window)
    if window is None:
        return f"SCALE_UP not evaluated: no forecast over the next {policy.scale_up_window:.0f} s"
    cur, cap, thr = inputs.current_replicas, inputs.capacity_per_replica, policy.cpu_scale_up_threshold
    peak, at = window.peak()
    util = utilisation(peak, cur, cap)
    seen = f"predicted peak {peak:.4g} in {at - now:.0f} s is {util:.1%} of {cur} x {cap:.4g} capacity"
    if util <= thr:
        return f"SCALE_UP: {seen} (<= {thr:.0%})"
    confidence = window.prob_above(thr * cur * cap)
    if confidence <= policy.confidence_threshold:
        return f"SCALE_UP: {seen} (> {thr:.0%}) but confidence {confidence:.2f} <= {policy.confidence_threshold:.2f}"
    needed = replicas_for(peak, cap, thr)
    observed = past(inputs.load_history, now, policy.scale_down_window)
    now_util = utilisation(float(observed.values[-1]), cur, cap) if len(observed) else 0.0
    urgency = Urgency.CRITICAL if now_util >= 1 else Urgency.HIGH if now_util > thr else Urgency.MEDIUM
    detail = (f"{seen} (> {thr:.0%}) with confidence {confidence:.2f} (> {policy.confidence_threshold:.2f}): "
              f"needs {replicas(needed)} to hold it at or below {thr:.0%}")
    return Condition(Action.SCALE_UP, detail, confidence, urgency, target_replicas=needed, rule="scale_up")


def preemptive(inputs: WorkloadInputs, policy: ScalingPolicy, now: float) -> Outcome:
    history = past(inputs.load_history, now, policy.scale_down_window)
    if not history.covers(policy.scale_down_window, policy.min_window_coverage):
        return (f"PREEMPTIVE_SCALE not evaluated: its baseline needs load history over "
                f"{policy.min_window_coverage:.0%} of the last {policy.scale_down_window:.0f} s")
    window = ahead(inputs.load_forecast, now, policy.preemptive_window)
    if window is None:
        return f"PREEMPTIVE_SCALE not evaluated: no forecast over the next {policy.preemptive_window:.0f} s"
    baseline = median(history.values)
    level = policy.preemptive_ratio * baseline
    spike_at = window.first_above(level)
    peak, peak_at = window.peak()
    if spike_at is None:
        return f"PREEMPTIVE_SCALE: predicted peak {peak:.4g} <= {policy.preemptive_ratio:g} x baseline {baseline:.4g}"
    cur, cap, thr = inputs.current_replicas, inputs.capacity_per_replica, policy.cpu_scale_up_threshold
    needed = replicas_for(peak, cap, thr)
    spike = (f"predicted load passes {policy.preemptive_ratio:g} x baseline {baseline:.4g} (median of the last "
             f"{policy.scale_down_window:.0f} s) in {spike_at - now:.0f} s, "
             f"peaking at {peak:.4g} in {peak_at - now:.0f} s")
    if needed <= cur:
        return (f"PREEMPTIVE_SCALE: {spike}, but current capacity ({replicas(cur)}) already holds it "
                f"at or below {thr:.0%}")
    act_by = spike_at - policy.pod_startup_seconds
    slack = act_by - now
    urgency = (Urgency.CRITICAL if slack <= 0 else Urgency.HIGH if slack <= policy.pod_startup_seconds
               else Urgency.MEDIUM if slack <= policy.scale_up_window else Urgency.LOW)
    detail = (f"{spike}: needs {replicas(needed)} to hold it at or below {thr:.0%}, "
              f"request within {max(slack, 0):.0f} s so pods ({policy.pod_startup_seconds:.0f} s to start) are in time")
    return Condition(Action.PREEMPTIVE_SCALE, detail, window.prob_above(level), urgency,
                     target_replicas=needed, act_by=float(act_by), rule="preemptive")


def scale_down(inputs: WorkloadInputs, policy: ScalingPolicy, now: float) -> Outcome:
    cur, cap, thr = inputs.current_replicas, inputs.capacity_per_replica, policy.cpu_scale_down_threshold
    length = policy.scale_down_window
    history = past(inputs.load_history, now, length)
    if not history.covers(length, policy.min_window_coverage):
        return (f"SCALE_DOWN not evaluated: needs load history over {policy.min_window_coverage:.0%} "
                f"of the last {length:.0f} s")
    window = ahead(inputs.load_forecast, now, length)
    if window is None:
        return f"SCALE_DOWN not evaluated: no forecast over the next {length:.0f} s (never scales down blind)"
    observed = float(np.max(history.values))
    if (util := utilisation(observed, cur, cap)) >= thr:
        return f"SCALE_DOWN: last {length:.0f} s peak {observed:.4g} is {util:.1%} of capacity (>= {thr:.0%})"
    q = policy.scale_down_quantile
    upper = window.peak_quantile(q)
    if (util_ahead := utilisation(upper, cur, cap)) >= thr:
        return (f"SCALE_DOWN: the forecast's {q:.0%} quantile rises to {upper:.4g}, {util_ahead:.1%} of capacity "
                f"(>= {thr:.0%}), within {length:.0f} s: no scaling down into a predicted rise")
    needed = replicas_for(max(observed, upper), cap, policy.cpu_scale_up_threshold)
    if max(needed, policy.min_replicas) >= cur:
        return (f"SCALE_DOWN: load is low but {replicas(cur)} are already the fewest allowed "
                f"(min_replicas {policy.min_replicas})")
    detail = (f"last {length:.0f} s peak {observed:.4g} is {util:.1%} and the forecast's {q:.0%} quantile peak "
              f"{upper:.4g} is {util_ahead:.1%} of {cur} x {cap:.4g} capacity (< {thr:.0%}): "
              f"needs {replicas(needed)} to hold the larger at or below {policy.cpu_scale_up_threshold:.0%}")
    confidence = 1.0 - window.prob_above(thr * cur * cap)
    return Condition(Action.SCALE_DOWN, detail, confidence, Urgency.LOW, target_replicas=needed, rule="scale_down")


def served(inputs: WorkloadInputs, policy: ScalingPolicy, now: float) -> Outcome:
    value, target, cur = inputs.served_value, inputs.served_target, inputs.current_replicas
    if value is None or target is None:
        return None
    aims = math.ceil(value / target - 1e-9)
    plan = f" ({inputs.served_plan})" if inputs.served_plan else ""
    said = f"the served value {value:.4g}{plan} makes the HPA aim for ceil({value:.4g} / {target:.4g}) = {aims}"
    tol = inputs.hpa_tolerance
    if cur > 0 and 1 - tol <= value / (target * cur) <= 1 + tol:  # the HPA's own band (hpa.HPA.proposal)
        return f"served: {value:.4g}{plan} keeps {cur} replicas (within the HPA tolerance {tol:g})"
    if aims > cur:
        return Condition(Action.SCALE_UP, said, 1.0, Urgency.MEDIUM, target_replicas=aims, rule="served")
    if aims < cur:
        return Condition(Action.SCALE_DOWN, said, 1.0, Urgency.LOW, target_replicas=aims, rule="served")
    return f"served: {value:.4g}{plan} keeps {cur} replicas"


def replica_bounds(inputs: WorkloadInputs, policy: ScalingPolicy, now: float) -> Outcome:
    """Running outside [min_replicas, max_replicas] is corrected whatever the load; no cooldown holds it."""
    cur = inputs.current_replicas
    if cur < policy.min_replicas:
        return Condition(Action.SCALE_UP, f"current replicas {cur} below min_replicas {policy.min_replicas}",
                         1.0, Urgency.HIGH, target_replicas=policy.min_replicas, rule="replica_bounds")
    if cur > policy.max_replicas:
        return Condition(Action.SCALE_DOWN, f"current replicas {cur} above max_replicas {policy.max_replicas}",
                         1.0, Urgency.MEDIUM, target_replicas=policy.max_replicas, rule="replica_bounds")
    return None


def anomaly_alert(inputs: WorkloadInputs, policy: ScalingPolicy, now: float) -> Outcome:
    score, likelihood = inputs.anomaly_score, inputs.anomaly_likelihood
    scored = f"anomaly score {score:+.2f} sigma" if score is not None else "no anomaly score"
    if likelihood is not None:
        scored = f"likelihood {likelihood:.12f}, {scored}"  # alerts start at 1 - 1e-9: the digits that matter
    if inputs.anomaly_beyond_range is not None:
        low, high = inputs.anomaly_beyond_range
        scored = f"value outside the range this workload has shown, {low:.4g} to {high:.4g}; {scored}"
    if inputs.anomaly_severity is Severity.NONE:
        return f"no new anomaly ({scored})" if score is not None else None
    # How unlikely the recent behaviour is under normal behaviour: the likelihood the severity came from,
    # else the score's (the detectors score in sigmas).
    if likelihood is not None:
        confidence = likelihood
    else:
        confidence = math.erf(abs(score) / math.sqrt(2)) if score is not None else 1.0
    if inputs.anomaly_severity is Severity.CRITICAL:
        return Condition(Action.ALERT_CRITICAL, f"critical anomaly ({scored})", confidence, Urgency.CRITICAL,
                         rule="anomaly")
    return Condition(Action.ALERT_WARNING, f"anomaly ({scored})", confidence, Urgency.MEDIUM, rule="anomaly")
