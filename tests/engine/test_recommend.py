"""The recommendation engine: every row of the issue's table at its boundary, precedence, cooldown,
min/max clamping, the suggested resources' numbers, and property tests over random inputs."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.engine.anomaly.base import Severity
from helios.engine.recommend import (
    PRECEDENCE,
    Action,
    LastAction,
    ScalingPolicy,
    Urgency,
    WorkloadInputs,
    recommend,
)
from helios.engine.recommend.windows import median, past, quantile
from helios.engine.types import QUANTILE_LEVELS, Forecast, Series

NOW = 1_800_000  # on the 5-minute grid
STEP = 300
MIB = 1 << 20
Z = np.array([NormalDist().inv_cdf(q) for q in QUANTILE_LEVELS])
POLICY = ScalingPolicy()


def forecast(points, sigma: float = 5.0, start: int = NOW + STEP, step: int = STEP) -> Forecast:
    """A forecast whose quantiles are Gaussian around the point, `sigma` wide."""
    p = np.asarray(points, dtype=float)
    return Forecast("test", start, step, p, p[None, :] + sigma * Z[:, None])


def flat_forecast(value: float, sigma: float = 5.0, steps: int = 12) -> Forecast:
    return forecast([value] * steps, sigma)


def spike_forecast(base: float, peak: float, at: int, steps: int = 12) -> Forecast:
    """`base` everywhere but `peak` at NOW + at seconds (a multiple of STEP)."""
    points = [base] * steps
    points[at // STEP - 1] = peak
    return forecast(points)


def series(values, step: int = STEP, end: int = NOW) -> Series:
    v = np.asarray(values, dtype=float)
    return Series(end - step * np.arange(v.size)[::-1], v)


def hour(value: float) -> Series:
    return series([value] * 13)  # NOW - 3600 .. NOW


def day(values) -> Series:
    assert len(values) == 288
    return series(values)  # a day of 5-minute samples, all within (NOW - 86400, NOW]


def inputs(**kw) -> WorkloadInputs:
    """4 replicas of 250 at a steady 500 (50%), forecast to stay there, unless told otherwise."""
    base = dict(current_replicas=4, capacity_per_replica=250.0, load_history=hour(500),
                load_forecast=flat_forecast(500))
    return WorkloadInputs(**{**base, **kw})


def run(policy: ScalingPolicy = POLICY, last: LastAction | None = None, **kw):
    return recommend(inputs(**kw), policy, last, NOW)


# Scenarios that trigger exactly one rule each, combined in the precedence tests.
LOAD = {
    Action.SCALE_UP: dict(load_forecast=flat_forecast(900)),  # 90% within 30 min; < 2 x baseline 500
    Action.PREEMPTIVE_SCALE: dict(load_forecast=spike_forecast(500, 1200, at=2700)),  # beyond 30 min
    Action.SCALE_DOWN: dict(load_history=hour(150), load_forecast=flat_forecast(150)),  # 15%
}
EXTRA = {
    Action.ALERT_CRITICAL: dict(anomaly_score=5.0, anomaly_severity=Severity.CRITICAL),
    Action.ALERT_WARNING: dict(anomaly_score=3.0, anomaly_severity=Severity.WARNING),
    Action.INCREASE_MEMORY: dict(memory_usage_bytes=hour(900 * MIB), memory_limit_bytes=1000 * MIB),
    Action.DECREASE_CPU: dict(cpu_usage_cores=day([0.1] * 288), cpu_request_cores=1.0),
}
SCENARIO = {**LOAD, **EXTRA}


# --- one row of the table each ---------------------------------------------------------------------


def test_steady_load_in_the_band_recommends_nothing_and_says_what_it_checked():
    r = run()
    assert (r.action, r.target_replicas, r.current_replicas, r.conditions) == (Action.NONE, 4, 4, ())
    assert r.reason.startswith("no condition triggered")
    assert "50.0% of 4 x 250 capacity (<= 80%)" in r.reason
    assert "INCREASE_MEMORY not evaluated: no memory limit" in r.reason
    assert r.confidence > 0.98  # the forecast is well clear of 80%
    assert r.urgency is Urgency.LOW


@pytest.mark.parametrize(("peak", "fires"), [(800.0, False), (800.5, True), (900.0, True), (700.0, False)])
def test_scale_up_when_the_30_minute_peak_is_above_80_percent(peak, fires):
    r = run(load_forecast=forecast([500, 600, peak, 600, 500, 500, 500, 500, 500, 500, 500, 500], sigma=0.1))
    assert (r.action is Action.SCALE_UP) is fires
    if fires:
        # The fewest replicas that hold the peak at or below 80%: 800.5 / (250 x 0.8) = 4.0025 -> 5.
        assert r.target_replicas == -(-peak // 200)
        assert r.confidence > 0.8
    else:
        assert r.target_replicas == 4


def test_scale_up_sizes_to_the_threshold_exactly_at_a_whole_number():
    r = run(load_history=hour(900), load_forecast=flat_forecast(1600, sigma=1))  # 1600 / 200 = 8 exactly, not 9
    assert (r.action, r.target_replicas) == (Action.SCALE_UP, 8)


def quantile_forecast(point: float, q20: float) -> Forecast:
    """A forecast whose 20% quantile is `q20` at every step (quantiles linear in the level)."""
    levels = np.asarray(QUANTILE_LEVELS)
    column = q20 + (levels - 0.2) * 1000
    return Forecast("test", NOW + STEP, STEP, np.full(6, point), np.repeat(column[:, None], 6, axis=1))


@pytest.mark.parametrize(("q20", "fires"), [(800.0, False), (800.1, True)])
def test_scale_up_needs_confidence_above_0_8(q20, fires):
    # P(load > 800) is 1 - 0.2 = 0.8 exactly when the 20% quantile sits at the threshold.
    r = run(load_forecast=quantile_forecast(900, q20))
    assert (r.action is Action.SCALE_UP) is fires
    if not fires:
        assert "confidence 0.80 <= 0.80" in r.reason


def test_a_wide_forecast_is_not_confident_enough_to_scale_up():
    r = run(load_forecast=flat_forecast(850, sigma=300))
    assert r.action is Action.NONE and "but confidence" in r.reason


def test_scale_up_looks_30_minutes_ahead_only():
    later = spike_forecast(500, 900, at=2100)  # 35 min ahead: 90%, but outside the window
    assert run(load_forecast=later).action is Action.NONE
    assert run(load_forecast=spike_forecast(500, 900, at=1800)).action is Action.SCALE_UP


@pytest.mark.parametrize(
    ("observed", "urgency"), [(500, Urgency.MEDIUM), (850, Urgency.HIGH), (1000, Urgency.CRITICAL)]
)
def test_scale_up_urgency_comes_from_the_load_observed_now(observed, urgency):
    history = series([500] * 12 + [observed])
    r = run(load_history=history, load_forecast=flat_forecast(950))
    assert r.action is Action.SCALE_UP and r.urgency is urgency


@pytest.mark.parametrize(("spike", "fires"), [(1000.0, False), (1000.5, True), (1500.0, True)])
def test_preemptive_scale_when_predicted_load_exceeds_twice_the_baseline(spike, fires):
    r = run(load_forecast=spike_forecast(500, spike, at=2700))  # baseline: the last hour's median, 500
    assert (r.action is Action.PREEMPTIVE_SCALE) is fires
    if fires:
        assert r.target_replicas == -(-spike // 200)
        assert r.act_by == NOW + 2700 - POLICY.pod_startup_seconds  # pods requested in time for the spike
        assert "baseline 500" in r.reason


def test_preemptive_baseline_is_the_median_so_one_past_spike_does_not_move_it():
    history = series([500] * 12 + [5000])
    r = run(load_history=history, load_forecast=spike_forecast(500, 1200, at=2700))
    assert r.action is Action.PREEMPTIVE_SCALE and "baseline 500" in r.reason


def test_no_preemptive_scale_when_current_replicas_already_hold_the_spike():
    r = run(current_replicas=10, load_history=hour(100), load_forecast=spike_forecast(100, 300, at=1200))
    assert Action.PREEMPTIVE_SCALE not in {c.action for c in r.conditions}
    assert "already holds it" in r.reason


@pytest.mark.parametrize(
    ("spike_at", "startup", "urgency"),
    [(600, 600, Urgency.CRITICAL), (600, 400, Urgency.HIGH), (600, 120, Urgency.MEDIUM), (3000, 120, Urgency.LOW)],
)
def test_preemptive_urgency_from_how_soon_pods_must_be_requested(spike_at, startup, urgency):
    policy = ScalingPolicy(pod_startup_seconds=startup, confidence_threshold=0.999)  # keep SCALE_UP out
    r = run(policy, load_forecast=spike_forecast(500, 1200, at=spike_at))
    preemptive = next(c for c in r.conditions if c.action is Action.PREEMPTIVE_SCALE)
    assert preemptive.urgency is urgency
    assert preemptive.act_by == NOW + spike_at - startup


def test_preemptive_needs_a_baseline():
    r = run(load_history=None, load_forecast=spike_forecast(500, 1200, at=2700))
    assert r.action is Action.NONE and "PREEMPTIVE_SCALE not evaluated" in r.reason


@pytest.mark.parametrize(("observed", "fires"), [(200.0, False), (199.0, True), (150.0, True)])
def test_scale_down_when_the_last_hour_stays_below_20_percent(observed, fires):
    r = run(load_history=hour(observed), load_forecast=flat_forecast(150))
    assert (r.action is Action.SCALE_DOWN) is fires
    # 4 x 250 capacity; the larger of the hour's peak and the forecast's 90% quantile (150 + 1.28 x 5)
    # fits one replica at 80%.
    assert r.target_replicas == (1 if fires else 4)


def test_one_busy_sample_in_the_hour_stops_a_scale_down():
    r = run(load_history=series([100] * 12 + [210]), load_forecast=flat_forecast(100))
    assert r.action is Action.NONE and "21.0% of capacity (>= 20%)" in r.reason


def test_no_scale_down_into_a_predicted_rise():
    rising = forecast([150] * 6 + [250] * 6)  # 25% within the next hour
    r = run(load_history=hour(150), load_forecast=rising)
    assert r.action is Action.NONE and "no scaling down into a predicted rise" in r.reason


def test_scale_down_reads_the_upper_quantile_not_the_point():
    uncertain = flat_forecast(150, sigma=60)  # point 15%, 90% quantile 150 + 1.28 x 60 = 227: 22.7%
    assert run(load_history=hour(150), load_forecast=uncertain).action is Action.NONE


def test_scale_down_target_holds_the_larger_peak_at_the_scale_up_threshold():
    r = run(current_replicas=10, load_history=hour(450), load_forecast=flat_forecast(300))  # 18% of 2500
    assert r.action is Action.SCALE_DOWN and r.target_replicas == 3  # 450 / 200 = 2.25 -> 3


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        (dict(load_forecast=None), "no forecast"),
        (dict(load_history=series([150] * 4)), "needs load history"),  # 15 minutes of the hour
        (dict(load_history=None), "needs load history"),
    ],
)
def test_scale_down_is_not_evaluated_without_the_data_to_justify_it(changes, why):
    r = run(**{"load_history": hour(150), "load_forecast": flat_forecast(150), **changes})
    assert r.action is Action.NONE and f"SCALE_DOWN not evaluated: {why}" in r.reason


def test_no_scale_down_below_min_replicas():
    r = run(ScalingPolicy(min_replicas=4), load_history=hour(150), load_forecast=flat_forecast(150))
    assert r.action is Action.NONE and "already the fewest allowed" in r.reason


@pytest.mark.parametrize(
    ("peak_fraction", "fires", "urgency"),
    [(0.85, False, None), (0.86, True, Urgency.MEDIUM), (0.93, True, Urgency.HIGH), (1.0, True, Urgency.CRITICAL)],
)
def test_increase_memory_when_usage_is_above_85_percent_of_the_limit(peak_fraction, fires, urgency):
    limit = 1000 * MIB
    usage = series([0.5 * limit] * 12 + [peak_fraction * limit])
    r = run(memory_usage_bytes=usage, memory_limit_bytes=limit)
    assert (r.action is Action.INCREASE_MEMORY) is fires
    if fires:
        assert r.urgency is urgency
        (suggestion,) = r.resources
        assert (suggestion.resource, suggestion.unit, suggestion.current) == ("memory", "bytes", limit)
        # peak x 1.15 / 0.85, rounded up to whole MiB: 860 MiB -> 1163.53 -> 1164 MiB.
        expected = {0.86: 1164, 0.93: 1259, 1.0: 1353}[peak_fraction]
        assert suggestion.suggested == expected * MIB
        assert peak_fraction * limit / suggestion.suggested < POLICY.memory_warning_threshold


def test_a_memory_limit_is_never_suggested_above_the_maximum():
    limit = 1000 * MIB
    usage = series([0.5 * limit] * 12 + [0.93 * limit])
    capped = run(ScalingPolicy(memory_limit_max_bytes=1200 * MIB), memory_usage_bytes=usage, memory_limit_bytes=limit)
    (suggestion,) = capped.resources
    assert suggestion.suggested == 1200 * MIB and "clamped to memory_limit_max_bytes 1200 MiB" in suggestion.basis
    at_max = run(ScalingPolicy(memory_limit_max_bytes=1000 * MIB), memory_usage_bytes=usage, memory_limit_bytes=limit)
    assert at_max.action is not Action.INCREASE_MEMORY and not at_max.resources
    assert "but the limit is at memory_limit_max_bytes (1000 MiB)" in at_max.reason
    with pytest.raises(ValueError, match="memory_limit_max_bytes must be > 0"):
        ScalingPolicy(memory_limit_max_bytes=0)


def test_an_alert_from_the_range_channel_says_so():
    from helios.engine.anomaly.base import Severity

    r = run(anomaly_score=0.4, anomaly_likelihood=1 - 1e-9, anomaly_severity=Severity.WARNING,
            anomaly_beyond_range=(20.0, 180.0))
    assert r.action is Action.ALERT_WARNING
    assert "value outside the range this workload has shown, 20 to 180" in r.reason


def test_memory_is_not_evaluated_without_data():
    r = run(memory_limit_bytes=1000 * MIB)
    assert "INCREASE_MEMORY not evaluated: no memory usage" in r.reason
    r = run(memory_usage_bytes=series([900 * MIB], end=NOW - 7200), memory_limit_bytes=1000 * MIB)  # stale
    assert r.action is Action.NONE and "no memory usage in the last 3600 s" in r.reason


@pytest.mark.parametrize(
    ("usage", "cpu_request", "suggested"),
    [
        ([0.1] * 288, 1.0, 0.115),  # p90 0.1 x 1.15
        # p90 of 288 sorted samples sits at index 0.9 x 287 = 258.3, between 0.1 (258) and 0.15 (259):
        # 0.1 + 0.3 x 0.05 = 0.115; x 1.15 = 0.13225, rounded up to whole millicores.
        ([0.1] * 259 + [0.15] * 29, 1.0, 0.133),
        ([0.001] * 288, 1.0, 0.025),  # the 25 millicore floor
        ([0.001] * 288, 0.03, 0.025),
    ],
)
def test_decrease_cpu_suggests_the_vpa_style_request(usage, cpu_request, suggested):
    r = run(cpu_usage_cores=day(usage), cpu_request_cores=cpu_request)
    assert r.action is Action.DECREASE_CPU
    (suggestion,) = r.resources
    assert (suggestion.resource, suggestion.unit, suggestion.current) == ("cpu", "cores", cpu_request)
    assert suggestion.suggested == pytest.approx(suggested, abs=1e-12)
    assert "p90" in suggestion.basis


@pytest.mark.parametrize(
    ("usage", "cpu_request", "why"),
    [
        ([0.2] * 288, 1.0, "(>= 20%)"),  # exactly at the threshold
        ([0.1] * 240 + [0.5] * 48, 1.0, "(>= 20%)"),  # 17% of the day busy: not consistently low
        ([0.001] * 288, 0.025, "already at the floor"),
    ],
)
def test_decrease_cpu_only_when_usage_is_consistently_low(usage, cpu_request, why):
    r = run(cpu_usage_cores=day(usage), cpu_request_cores=cpu_request)
    assert r.action is Action.NONE and why in r.reason


def test_decrease_cpu_tolerates_brief_bursts_and_reports_how_consistent():
    r = run(cpu_usage_cores=day([0.1] * 274 + [0.9] * 14), cpu_request_cores=1.0)  # 5% of samples busy
    assert r.action is Action.DECREASE_CPU
    assert r.confidence == pytest.approx(274 / 288)


def test_decrease_cpu_needs_most_of_a_day():
    r = run(cpu_usage_cores=series([0.1] * 24), cpu_request_cores=1.0)  # two hours
    assert r.action is Action.NONE and "DECREASE_CPU not evaluated" in r.reason


@pytest.mark.parametrize(
    ("severity", "score", "action", "urgency"),
    [
        (Severity.NONE, 1.0, Action.NONE, Urgency.LOW),
        (Severity.WARNING, 3.0, Action.ALERT_WARNING, Urgency.MEDIUM),
        (Severity.CRITICAL, -5.0, Action.ALERT_CRITICAL, Urgency.CRITICAL),
        (Severity.WARNING, None, Action.ALERT_WARNING, Urgency.MEDIUM),
    ],
)
def test_alerts_follow_the_detectors_severity(severity, score, action, urgency):
    r = run(anomaly_score=score, anomaly_severity=severity)
    assert (r.action, r.urgency, r.target_replicas) == (action, urgency, 4)
    if action is not Action.NONE:
        assert r.confidence == (1.0 if score is None else pytest.approx(1 - 2 * (1 - NormalDist().cdf(abs(score)))))


# --- precedence -------------------------------------------------------------------------------------

PAIRS = [
    (hi, lo)
    for i, hi in enumerate(PRECEDENCE[:-1])
    for lo in PRECEDENCE[i + 1:-1]
    # one load at a time (PREEMPTIVE_SCALE with SCALE_UP has its own test), one anomaly severity
    if not (hi in LOAD and lo in LOAD) and {hi, lo} != {Action.ALERT_CRITICAL, Action.ALERT_WARNING}
]
ALL_EXTRAS = {k: v for action in (Action.INCREASE_MEMORY, Action.DECREASE_CPU, Action.ALERT_CRITICAL)
              for k, v in EXTRA[action].items()}


@pytest.mark.parametrize(("higher", "lower"), PAIRS, ids=lambda a: a.value)
def test_the_higher_action_names_the_recommendation_and_both_are_in_the_reason(higher, lower):
    r = run(**SCENARIO[lower], **SCENARIO[higher])
    assert r.action is higher
    actions = [c.action for c in r.conditions]
    assert actions.index(higher) < actions.index(lower)
    assert r.reason.index(f"{higher.value}: ") < r.reason.index(f"{lower.value}: ")


def test_every_condition_at_once():
    r = run(**ALL_EXTRAS, load_forecast=spike_forecast(500, 1200, at=1500))
    assert r.action is Action.ALERT_CRITICAL
    assert [c.action for c in r.conditions] == [
        Action.ALERT_CRITICAL, Action.PREEMPTIVE_SCALE, Action.SCALE_UP, Action.INCREASE_MEMORY, Action.DECREASE_CPU,
    ]
    assert r.target_replicas == 6  # the alert does not cost the replicas the spike needs
    assert {s.resource for s in r.resources} == {"memory", "cpu"}


def test_a_critical_alert_keeps_the_capacity_a_scale_up_asks_for():
    r = run(**SCENARIO[Action.SCALE_UP], **SCENARIO[Action.ALERT_CRITICAL])
    assert (r.action, r.target_replicas, r.urgency) == (Action.ALERT_CRITICAL, 5, Urgency.CRITICAL)


@pytest.mark.parametrize("over", [Action.INCREASE_MEMORY, Action.ALERT_WARNING, Action.ALERT_CRITICAL])
def test_nothing_scales_down_while_a_higher_condition_holds(over):
    r = run(**SCENARIO[Action.SCALE_DOWN], **SCENARIO[over])
    assert r.action is over and r.target_replicas == 4
    assert Action.SCALE_DOWN in [c.action for c in r.conditions]


def test_scale_down_and_decrease_cpu_both_apply():
    r = run(**SCENARIO[Action.SCALE_DOWN], **SCENARIO[Action.DECREASE_CPU])
    assert (r.action, r.target_replicas) == (Action.SCALE_DOWN, 1)
    assert [s.resource for s in r.resources] == ["cpu"]


def test_preemptive_and_scale_up_take_the_larger_target():
    # SCALE_UP sees 900 within 30 min (5 replicas); the spike at 50 min needs 7.
    points = [900] * 6 + [500, 500, 500, 1400, 500, 500]
    r = run(load_forecast=forecast(points))
    assert [c.action for c in r.conditions] == [Action.PREEMPTIVE_SCALE, Action.SCALE_UP]
    assert (r.action, r.target_replicas) == (Action.PREEMPTIVE_SCALE, 7)


# --- cooldown -----------------------------------------------------------------------------------------

DOWN = dict(**SCENARIO[Action.SCALE_DOWN])
UP = dict(**SCENARIO[Action.SCALE_UP])


@pytest.mark.parametrize("last_up", [Action.SCALE_UP, Action.PREEMPTIVE_SCALE])
def test_no_scale_down_within_the_cooldown_of_a_scale_up(last_up):
    r = run(last=LastAction(last_up, NOW - 100, 4), **DOWN)
    assert (r.action, r.target_replicas, r.suppressed_by_cooldown) == (Action.NONE, 4, True)
    assert "[held by cooldown]" in r.reason and f"last action {last_up.value} 100 s ago" in r.reason
    assert [c.action for c in r.conditions] == [Action.SCALE_DOWN]  # still listed


def test_a_held_scale_down_lets_the_next_condition_name_the_recommendation():
    r = run(last=LastAction(Action.SCALE_UP, NOW - 100, 4), **DOWN, **SCENARIO[Action.DECREASE_CPU])
    assert (r.action, r.target_replicas, r.suppressed_by_cooldown) == (Action.DECREASE_CPU, 4, True)


@pytest.mark.parametrize("ago", [300, 1000])
def test_scale_down_resumes_once_the_cooldown_has_passed(ago):
    r = run(last=LastAction(Action.SCALE_UP, NOW - ago, 4), **DOWN)
    assert (r.action, r.target_replicas, r.suppressed_by_cooldown) == (Action.SCALE_DOWN, 1, False)


def test_a_last_action_stamped_in_the_future_counts_as_recent():
    r = run(last=LastAction(Action.SCALE_UP, NOW + 60, 4), **DOWN)
    assert r.suppressed_by_cooldown and r.target_replicas == 4


def test_scale_up_is_not_delayed_after_a_scale_down():
    r = run(last=LastAction(Action.SCALE_DOWN, NOW - 100, 4), **UP)
    assert (r.action, r.target_replicas, r.suppressed_by_cooldown) == (Action.SCALE_UP, 5, False)
    assert "scale-ups are not delayed" in r.reason


def test_scale_up_can_be_held_too_when_configured():
    policy = ScalingPolicy(cooldown_blocks_scale_up=True)
    r = run(policy, last=LastAction(Action.SCALE_DOWN, NOW - 100, 4), **UP)
    assert (r.action, r.target_replicas, r.suppressed_by_cooldown) == (Action.NONE, 4, True)


def test_same_direction_and_non_replica_actions_are_not_held():
    assert run(last=LastAction(Action.SCALE_DOWN, NOW - 10, 4), **DOWN).action is Action.SCALE_DOWN
    assert run(last=LastAction(Action.INCREASE_MEMORY, NOW - 10, 4), **DOWN).action is Action.SCALE_DOWN


def test_the_cooldown_never_holds_a_move_back_inside_the_bounds():
    r = run(current_replicas=12, last=LastAction(Action.SCALE_UP, NOW - 10, 12), load_forecast=flat_forecast(1000))
    assert (r.action, r.target_replicas) == (Action.SCALE_DOWN, 10)
    assert "above max_replicas 10" in r.reason


# --- min/max --------------------------------------------------------------------------------------------


def test_scale_up_is_capped_at_max_replicas_and_says_so():
    r = run(load_history=hour(3000), load_forecast=flat_forecast(5000))  # needs 25
    assert (r.action, r.target_replicas) == (Action.SCALE_UP, 10)
    assert "target 25 clamped to max_replicas 10" in r.reason


def test_scale_down_stops_at_min_replicas_and_says_so():
    r = run(ScalingPolicy(min_replicas=3), current_replicas=8, load_history=hour(150), load_forecast=flat_forecast(150))
    assert (r.action, r.target_replicas) == (Action.SCALE_DOWN, 3)
    assert "target 1 clamped to min_replicas 3" in r.reason


@pytest.mark.parametrize(("current", "action", "target"), [(0, Action.SCALE_UP, 1), (15, Action.SCALE_DOWN, 10)])
def test_replicas_outside_the_bounds_are_brought_back(current, action, target):
    r = run(current_replicas=current, load_history=None, load_forecast=None)
    assert (r.action, r.target_replicas) == (action, target)


def test_scale_from_zero_when_load_is_predicted_and_min_is_zero():
    r = run(ScalingPolicy(min_replicas=0), current_replicas=0, load_history=hour(0), load_forecast=flat_forecast(300))
    assert r.action is Action.PREEMPTIVE_SCALE and r.target_replicas == 2


# --- inputs, policy, purity -------------------------------------------------------------------------------


def test_without_any_data_the_answer_is_none_with_zero_confidence_and_says_why():
    r = run(load_history=None, load_forecast=None)
    assert (r.action, r.target_replicas, r.confidence) == (Action.NONE, 4, 0.0)
    assert "SCALE_UP not evaluated: no forecast" in r.reason
    assert len(r.notes) == 5  # every rule that did not trigger says why


def test_a_forecast_that_ended_before_now_is_not_read():
    old = Forecast("test", NOW - 7200, STEP, np.full(6, 5000.0), np.full((len(QUANTILE_LEVELS), 6), 5000.0))
    r = run(load_forecast=old)
    assert r.action is Action.NONE and "SCALE_UP not evaluated" in r.reason


def test_missing_samples_are_skipped():
    history = series([150] * 6 + [np.nan] + [150] * 6)
    assert run(load_history=history, load_forecast=flat_forecast(150)).action is Action.SCALE_DOWN


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (dict(cpu_scale_down_threshold=0.9), "cpu_scale_down_threshold"),
        (dict(cpu_scale_up_threshold=1.5), "cpu_scale_up_threshold"),
        (dict(memory_warning_threshold=0), "memory_warning_threshold"),
        (dict(memory_warning_threshold=1.2), "memory_warning_threshold"),
        (dict(min_replicas=5, max_replicas=3), "max_replicas"),
        (dict(min_replicas=-1), "min_replicas"),
        (dict(min_replicas=1.5), "min_replicas"),
        (dict(cooldown_seconds=-1), "cooldown_seconds"),
        (dict(cooldown_seconds=float("nan")), "cooldown_seconds"),
        (dict(confidence_threshold=1.01), "confidence_threshold"),
        (dict(cpu_scale_down_threshold=-0.1), "cpu_scale_down_threshold"),
        (dict(preemptive_ratio=1.0), "preemptive_ratio"),
        (dict(scale_up_window=0), "scale_up_window"),
        (dict(pod_startup_seconds=7200), "preemptive_window"),
        (dict(scale_down_quantile=0.3), "scale_down_quantile"),
        (dict(cooldown_blocks_scale_up="yes"), "cooldown_blocks_scale_up"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"scaling\.{field} must be"):
        ScalingPolicy(**changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (dict(current_replicas=-1), "current_replicas"),
        (dict(current_replicas=2.0), "current_replicas"),
        (dict(capacity_per_replica=0), "capacity_per_replica"),
        (dict(capacity_per_replica=float("inf")), "capacity_per_replica"),
        (dict(memory_limit_bytes=-5), "memory_limit_bytes"),
        (dict(cpu_request_cores=0), "cpu_request_cores"),
        (dict(anomaly_score=float("nan")), "anomaly_score"),
        (dict(anomaly_severity=7), "anomaly_severity"),
    ],
)
def test_bad_inputs_are_refused_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        inputs(**changes)


def test_severity_may_be_given_as_its_number():
    assert inputs(anomaly_severity=2).anomaly_severity is Severity.CRITICAL


def test_recommend_reads_no_clock_and_answers_the_same_twice(monkeypatch):
    def no_clock():
        raise AssertionError("recommend read the clock")

    monkeypatch.setattr(time, "time", no_clock)
    monkeypatch.setattr(time, "monotonic", no_clock)
    kw = {**SCENARIO[Action.PREEMPTIVE_SCALE], **ALL_EXTRAS}
    assert run(**kw) == run(**kw)


def test_summary_is_json_ready():
    r = run(**SCENARIO[Action.SCALE_DOWN], **SCENARIO[Action.DECREASE_CPU])
    summary = json.loads(json.dumps(r.summary()))
    assert summary["action"] == "SCALE_DOWN" and summary["urgency"] == "low"
    assert summary["conditions"] == ["SCALE_DOWN", "DECREASE_CPU"]
    assert summary["resources"][0]["suggested"] == pytest.approx(0.115)


def test_thresholds_at_their_ends_turn_rules_off():
    quiet = ScalingPolicy(cpu_scale_down_threshold=0, confidence_threshold=1)
    assert run(quiet, **SCENARIO[Action.SCALE_UP]).action is Action.NONE
    assert run(quiet, **SCENARIO[Action.SCALE_DOWN], **SCENARIO[Action.DECREASE_CPU]).action is Action.NONE


def test_the_policy_passed_in_sets_the_bounds():
    """A policy is a value: a copy with another max_replicas caps there; the one copied still caps at 10."""
    needs_25 = dict(load_history=hour(3000), load_forecast=flat_forecast(5000))
    raised = run(replace(POLICY, max_replicas=20), **needs_25)
    assert (raised.action, raised.target_replicas) == (Action.SCALE_UP, 20)
    assert "target 25 clamped to max_replicas 20" in raised.reason
    assert run(POLICY, **needs_25).target_replicas == 10


# --- properties -------------------------------------------------------------------------------------------

LOADS = st.floats(0, 5000, allow_nan=False)


@st.composite
def situations(draw):
    """Random policy bounds, replicas, history, forecast, resources, anomaly and last action."""
    low = draw(st.integers(0, 5))
    policy = ScalingPolicy(min_replicas=low, max_replicas=draw(st.integers(max(1, low), 20)),
                           cooldown_blocks_scale_up=draw(st.booleans()))
    history = draw(st.none() | st.lists(LOADS, min_size=1, max_size=13).map(series))
    points = draw(st.lists(LOADS, min_size=1, max_size=12))
    fc = forecast(points, sigma=draw(st.floats(0, 800)), start=NOW + draw(st.sampled_from([-200, 60, 300, 1500])))
    memory = draw(st.none() | st.floats(0.1, 1.2))
    situation = inputs(
        current_replicas=draw(st.integers(0, 25)),
        capacity_per_replica=draw(st.floats(1, 1000)),
        load_history=history,
        load_forecast=fc,
        memory_usage_bytes=None if memory is None else hour(memory * 1000 * MIB),
        memory_limit_bytes=1000 * MIB,
        anomaly_severity=draw(st.sampled_from(Severity)),
    )
    last = draw(st.none() | st.builds(LastAction, st.sampled_from(Action), st.floats(NOW - 1000, NOW + 100),
                                      st.integers(0, 20)))
    return situation, policy, last


def scaled(fc: Forecast, k: float) -> Forecast:
    return Forecast(fc.model, fc.start, fc.step, fc.point * k, fc.quantiles * k)


@settings(max_examples=300, deadline=None)
@given(situations())
def test_target_is_always_within_min_and_max(situation):
    inputs_, policy, last = situation
    r = recommend(inputs_, policy, last, NOW)
    assert policy.min_replicas <= r.target_replicas <= policy.max_replicas
    assert 0.0 <= r.confidence <= 1.0
    if not r.conditions:
        assert r.action is Action.NONE
    elif not r.suppressed_by_cooldown:
        assert r.action is r.conditions[0].action  # conditions come in precedence order


@settings(max_examples=300, deadline=None)
@given(situations(), st.floats(1.0, 10.0))
def test_more_predicted_load_never_gives_fewer_replicas(situation, k):
    inputs_, policy, last = situation
    more = replace(inputs_, load_forecast=scaled(inputs_.load_forecast, k))
    assert recommend(more, policy, last, NOW).target_replicas >= recommend(inputs_, policy, last, NOW).target_replicas


# --- one decision: a workload Helios steers -------------------------------------------------------------

def steered(value: float, **kw):
    """The same workload, with what Helios serves it (targetValue 250: 4 replicas now)."""
    return run(served_value=value, served_target=250.0, served_plan="forecast q0.8", **kw)


@pytest.mark.parametrize(("value", "action", "target"), [
    (1400.0, Action.SCALE_UP, 6),  # 1400 / (4 x 250) = 1.4: the HPA aims for ceil(1400 / 250)
    (1100.0, Action.NONE, 4),  # 1.1: inside the HPA's tolerance, it keeps 4
    (900.0, Action.NONE, 4),  # 0.9: the band's lower edge, still inside
    (600.0, Action.SCALE_DOWN, 3),
])
def test_the_replica_action_is_what_the_served_value_makes_the_hpa_do(value, action, target):
    r = steered(value)
    assert (r.action, r.target_replicas) == (action, target)
    if action is not Action.NONE:
        assert f"makes the HPA aim for ceil({value:.4g} / 250) = {target}" in r.reason
        assert "forecast q0.8" in r.reason


def test_a_forecast_threshold_that_disagrees_with_the_served_value_is_only_advisory():
    # The threshold rule alone would scale up to 5 for a 900 peak; the served value keeps 4.
    r = steered(1000.0, load_forecast=flat_forecast(900))
    assert (r.action, r.target_replicas) == (Action.NONE, 4)
    assert "advisory, not acted on: SCALE_UP to 5" in r.reason
    assert all(c.action is not Action.SCALE_UP for c in r.conditions)
    # A surge beyond the lead window: advisory too, never a contradicting target.
    r = steered(1000.0, load_forecast=spike_forecast(500, 1200, at=2700))
    assert r.action is Action.NONE and "advisory, not acted on: PREEMPTIVE_SCALE to 6" in r.reason


def test_alerts_and_resources_still_win_over_the_served_replica_action():
    r = steered(1400.0, **EXTRA[Action.ALERT_CRITICAL])
    assert r.action is Action.ALERT_CRITICAL and r.target_replicas == 6  # the replicas are not given up
    r = steered(1000.0, **EXTRA[Action.INCREASE_MEMORY])
    assert r.action is Action.INCREASE_MEMORY


def test_served_value_and_target_come_together():
    with pytest.raises(ValueError, match="come together"):
        inputs(served_value=10.0)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 1)), min_size=1, max_size=80),
       st.sampled_from([0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0]) | st.floats(0, 1))
def test_the_rules_quantile_and_median_are_numpys_to_the_bit(values, level):
    x = np.array(values)  # rounded: ties, as whole request counts and millicores have
    assert quantile(x, level) == np.quantile(x, level)
    assert median(x) == np.median(x)


def test_a_past_window_is_the_samples_after_its_start_up_to_now_without_missing_ones():
    values = np.array([1.0, np.nan, 3.0, 4.0, 5.0])
    s = Series(NOW + STEP * np.arange(-3, 2), values)  # NOW - 900 ... NOW + 300
    window = past(s, NOW, 600)  # (NOW - 600, NOW]: the samples at NOW - 300 and NOW
    assert window.timestamps.tolist() == [NOW - 300, NOW] and window.values.tolist() == [3.0, 4.0]
    assert past(s, NOW + 0.5, 1200).values.tolist() == [1.0, 3.0, 4.0]  # NaN dropped; NOW + 300 is ahead
    assert len(past(s, NOW - 2000, 60)) == 0 and len(past(None, NOW, 60)) == 0
