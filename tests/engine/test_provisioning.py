"""Provisioning to a shortfall target: the headroom frontier, the models' backcasts (no look-ahead), the
replay's choice between forecast and headroom plans, and the answer rule each plan serves."""

import math
from dataclasses import replace

import numpy as np
import pytest

from helios.engine import demand
from helios.engine.demand import Provisioning, expected_demand, provisioned_demand
from helios.engine.errors import InsufficientData
from helios.engine.models import create
from helios.engine.models.base import Forecaster
from helios.engine.pipeline import choose_provisioning
from helios.engine.replay import provision
from helios.engine.replay.frontier import Point, at_cost, cost_to_reach, equal_cost_ratio
from helios.engine.replay.loop import Cluster
from helios.engine.replay.provision import (
    FORECAST_LADDER,
    HEADROOM_LADDER,
    MARGIN_STEPS,
    REFINE_STEPS,
    SLO,
    Replayed,
    TapePolicy,
    VersusHeadroom,
    _best,
    _finest,
    _pick,
    choose,
    versus_headroom,
)
from helios.engine.types import Forecast, Series

T0 = 1_700_000_100
STEP = 300
TIME = "underprovisioned_fraction"


def series(values, start=T0) -> Series:
    return Series(start + STEP * np.arange(len(values)), np.asarray(values, dtype=float))


def wave(days=2.0, seed=0, noise=2.0, period=288, amplitude=80.0) -> np.ndarray:
    t = np.arange(int(days * 288))
    rng = np.random.default_rng(seed)
    return 100 + amplitude * np.sin(2 * math.pi * t / period) + rng.normal(0, noise, t.size)


# --- the frontier -----------------------------------------------------------------------------------

CURVE = [Point(100, 0.30, 0.10), Point(120, 0.20, 0.06), Point(150, 0.05, 0.01), Point(200, 0.01, 0.001)]


def test_the_curve_is_linear_between_points_and_flat_beyond_its_ends():
    assert at_cost(CURVE, 110, TIME) == pytest.approx(0.25)
    assert at_cost(CURVE, 135, TIME) == pytest.approx(0.125)
    assert at_cost(CURVE, 80, TIME) == pytest.approx(0.30)  # cheaper than reactive: reactive's shortfall
    assert at_cost(CURVE, 500, TIME) == pytest.approx(0.01)
    assert at_cost(list(reversed(CURVE)), 110, TIME) == pytest.approx(0.25)  # order does not matter


def test_the_equal_cost_ratio_adds_the_slack_to_both_sides():
    # Half of headroom's 0.25 at 110 replica-hours: (0.125 + 0.005) / (0.25 + 0.005).
    assert equal_cost_ratio(Point(110, 0.125, 0.0), CURVE, TIME) == pytest.approx(0.130 / 0.255)
    # Two near-zero shortfalls do not swing it: 0 against 0.01 at 200 is 0.33, not 0.
    assert equal_cost_ratio(Point(200, 0.0, 0.0), CURVE, TIME) == pytest.approx(0.005 / 0.015)
    assert equal_cost_ratio(Point(150, 0.10, 0.0), CURVE, TIME) > 1  # worse than headroom at its cost


def test_cost_to_reach_interpolates_to_the_target_or_says_it_is_not_reached():
    assert cost_to_reach(CURVE, 0.05, TIME) == pytest.approx(150)
    assert cost_to_reach(CURVE, 0.03, TIME) == pytest.approx(175)
    assert cost_to_reach(CURVE, 0.5, TIME) == pytest.approx(100)
    assert cost_to_reach(CURVE, 0.001, TIME) is None


# --- backcasts --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["baseline", "naive", "seasonal_naive", "prophet"])
def test_a_vectorised_backcast_serves_what_fitting_at_the_first_origin_and_moving_on_would(model):
    history, first = series(wave(1.5, noise=5)), 300
    fast = create(model, step=STEP).backcast(history, first, 2)
    slow = Forecaster.backcast(create(model, step=STEP), history, first, 2)  # the contract's plain loop
    assert len(fast) == len(slow) == len(history) - first
    assert [f.start for f in fast] == [f.start for f in slow] == (history.timestamps[first:] + STEP).tolist()
    for f, s in zip(fast, slow, strict=True):
        assert np.allclose(f.point, s.point)
    assert fast[-1].start == history.timestamps[-1] + STEP
    # Its bounds are those calibrated at the first origin (a refit at each origin slides them a little).
    spread = fast[0].quantiles - fast[0].point
    assert all(np.allclose(f.quantiles - f.point, spread) for f in fast)
    assert np.allclose(fast[0].quantiles, slow[0].quantiles)


@pytest.mark.parametrize("model", ["baseline", "naive", "seasonal_naive", "auto"])
def test_a_backcast_never_looks_ahead(model):
    values, first = wave(3.5, seed=3), 400
    params = {"candidates": ["naive", "seasonal_naive", "baseline"]} if model == "auto" else {}
    tape = create(model, step=STEP, **params).backcast(series(values), first, 1)
    changed = values.copy()
    changed[first + 50:] *= 3  # a different future from origin first + 50 on
    other = create(model, step=STEP, **params).backcast(series(changed), first, 1)
    for j in range(50):  # every forecast made before the change is the same
        assert np.allclose(tape[j].quantiles, other[j].quantiles), j
    assert not np.allclose(tape[-1].quantiles, other[-1].quantiles)  # a day past the change, every rule sees it


def test_auto_backcasts_with_the_choice_made_at_the_first_origin():
    values, first = wave(2.5, seed=4), 400
    auto = create("auto", step=STEP, candidates=["naive", "seasonal_naive", "baseline"])
    tape = auto.backcast(series(values), first, 2)
    chosen = create("auto", step=STEP, candidates=["naive", "seasonal_naive", "baseline"]).fit(
        series(values[: first + 1]))
    assert {f.model for f in tape} == {chosen.label}
    assert np.allclose(tape[0].quantiles, chosen.predict(2).quantiles)  # at `first`: the fitted model's forecast


# --- the answer each plan serves --------------------------------------------------------------------

def test_a_forecast_plan_serves_the_higher_of_its_quantile_and_its_headroom_a_headroom_plan_the_headroom():
    f = Forecast("m", T0 + STEP, STEP, np.array([100.0, 100.0]), np.linspace(60, 140, 17)[:, None].repeat(2, 1))
    now, lead = T0 + 10, 300
    q9 = expected_demand(f, 90.0, now, lead, 0.9)
    assert provisioned_demand(f, 90.0, now, lead, Provisioning("forecast", 0.9)) == pytest.approx(q9)
    assert 90.0 * 1.2 < q9 < 90.0 * 1.6
    over_small = demand.provision(f, 90.0, now, lead, Provisioning("forecast", 0.9, 0.2))  # the forecast sees more
    assert (over_small.value, over_small.rule) == (pytest.approx(q9), "forecast")
    over_large = demand.provision(f, 90.0, now, lead, Provisioning("forecast", 0.9, 0.6))  # the headroom covers it
    assert (over_large.value, over_large.rule, over_large.peak) == (pytest.approx(144.0), "headroom floor",
                                                                     pytest.approx(q9))
    assert provisioned_demand(f, 90.0, now, lead, Provisioning("headroom", margin=0.25)) == pytest.approx(112.5)
    assert provisioned_demand(None, 90.0, now, lead, Provisioning("headroom", margin=0.25)) == pytest.approx(112.5)
    assert Provisioning("forecast", 0.95, 0.1).label == "forecast q0.95 over headroom +10%"
    assert Provisioning("headroom").label == "headroom +0%"


def test_the_tape_policy_answers_from_the_latest_origin_at_or_before_each_poll():
    history = series([10.0, 20.0, 30.0])
    tape = create("naive", step=STEP).backcast(history, 0, 2)
    policy = TapePolicy(history.timestamps, history.values, tape, 300, Provisioning("headroom", margin=0.5))
    assert policy.metric(T0 - 1) is None
    assert policy.metric(T0 + 299) == pytest.approx(15.0)
    assert policy.metric(T0 + 300) == pytest.approx(30.0)
    assert policy.metric(T0 + 10_000) == pytest.approx(45.0)


# --- the choice -------------------------------------------------------------------------------------

def cluster(values) -> Cluster:
    target = float(np.percentile(values, 99)) / 20
    return Cluster(target_value=target, capacity=target)


def test_on_a_forecastable_wave_the_forecast_meets_the_target_for_less_than_headroom():
    # Twice a day from 5 to 195: steep ramps the trend foresees, which headroom must cover at every level.
    values = wave(1.5, period=144, amplitude=95)
    history, first = series(values), 144
    tape = create("baseline", step=STEP).backcast(history, first, 2)
    choice = choose(history, first, tape, 300, SLO(0.02), cluster(values))
    assert choice.plan.basis == "forecast" and choice.attainable
    assert choice.replayed.underprovisioned_fraction <= 0.02
    assert choice.replayed.replica_hours < (1 - provision.FORECAST_EDGE) * choice.headroom.replica_hours
    assert choice.replayed_seconds == pytest.approx((len(values) - 1 - first) * STEP)
    assert choice.replayed.plan == choice.plan
    assert 0.6 <= choice.forecast_coverage <= 0.95  # the baseline's 80 % interval, calibrated, in the replay


def test_where_the_forecast_costs_more_than_headroom_for_the_target_headroom_is_served():
    values = wave(1.5)
    history, first = series(values), 144
    # A model that forecasts three times the load at every level: every forecast plan over-provisions.
    tape = [Forecast("high", int(t) + STEP, STEP, np.full(2, 3 * v), np.full((17, 2), 3 * v))
            for t, v in zip(history.timestamps[first:], values[first:], strict=True)]
    choice = choose(history, first, tape, 300, SLO(0.02, cost_cap=2.0), cluster(values))
    assert choice.plan.basis == "headroom" and choice.attainable
    assert choice.replayed.replica_hours <= 2.0 * choice.reactive_replica_hours
    assert "headroom" in choice.reason


def test_an_unattainable_target_gives_the_least_shortfall_within_the_cap_and_says_so():
    rng = np.random.default_rng(7)
    values = 20 + 200 * (rng.random(432) < 0.05)  # rare tall spikes nothing foresees
    history, first = series(values), 144
    tape = create("baseline", step=STEP).backcast(history, first, 2)
    choice = choose(history, first, tape, 300, SLO(0.001, cost_cap=1.2), cluster(values))
    assert not choice.attainable and "not attainable" in choice.reason
    assert choice.replayed.replica_hours <= 1.2 * choice.reactive_replica_hours


def test_the_bisection_finds_the_cheapest_rung_an_exhaustive_search_finds():
    values = wave(1.5, seed=11, noise=8)
    history, first = series(values), 144
    tape = create("baseline", step=STEP).backcast(history, first, 2)
    c = cluster(values)
    results = {}

    def replay(plan):
        if plan not in results:
            o = provision.simulate(provision.Demand(history), TapePolicy(history.timestamps[first:], values[first:],
                                                                          tape, 300, plan), c,
                                   float(history.timestamps[first]), float(history.timestamps[-1])).outcome
            results[plan] = provision.Replayed(plan, o.underprovisioned_fraction, o.unserved_fraction,
                                               o.replica_hours)
        return results[plan]

    for ladder in (FORECAST_LADDER, HEADROOM_LADDER):
        target = 0.03
        found = _best(ladder, replay, target, cap=1e9)
        exhaustive = [replay(p) for p in ladder]
        meeting = [r for r in exhaustive if r.underprovisioned_fraction <= target]
        assert meeting and found.replica_hours <= min(r.replica_hours for r in meeting) * 1.02


def test_headroom_is_searched_below_its_cheapest_rung_that_meets_the_target():
    # A smooth CPU trace: short 20 % of the time at +0 %, 1 % at +5 %; a 2 % target needs +3.8 %.
    def replay(plan):
        under = 0.2 * math.exp(-60 * plan.margin)
        return rung("headroom", 100 * (1 + plan.margin), under, under / 10, plan.margin)

    target, needed = 0.02, math.log(10) / 60
    cheapest_rung = _best(HEADROOM_LADDER, replay, target, cap=1e9)
    assert cheapest_rung.plan.margin == 0.05
    found = _finest(HEADROOM_LADDER, cheapest_rung, replay, target, cap=1e9)
    assert found.underprovisioned_fraction <= target and found.plan.basis == "headroom"
    assert needed < found.plan.margin <= needed + 0.05 / 2 ** MARGIN_STEPS  # within the bisection's resolution
    assert found.replica_hours < cheapest_rung.replica_hours
    # Reactive meets it, or nothing does within the cap: nothing to search.
    assert _finest(HEADROOM_LADDER, replay(HEADROOM_LADDER[0]), replay, 0.5, cap=1e9).plan == HEADROOM_LADDER[0]
    short = replay(HEADROOM_LADDER[-1])
    assert _finest(HEADROOM_LADDER, short, replay, 0.0, cap=1e9) is short


def test_a_cold_start_is_insufficient_data_and_one_day_of_history_is_enough():
    values = wave(1.0)
    c = cluster(values)
    with pytest.raises(InsufficientData, match="cold start"):
        choose_provisioning("baseline", {}, series(values[:150]), STEP, 300, SLO(), c, 86400, 43200)
    choice = choose_provisioning("baseline", {}, series(values), STEP, 300, SLO(), c, 86400, 43200)
    assert choice.replayed_seconds >= 43200


def test_slo_values_outside_their_ranges_are_refused():
    with pytest.raises(ValueError, match="target_shortfall"):
        SLO(0.6)
    with pytest.raises(ValueError, match="cost_cap"):
        SLO(0.02, cost_cap=1.0)


def test_the_plan_in_force_stays_while_it_meets_the_target_for_little_more_and_goes_otherwise():
    target = 0.035  # where rungs of the chosen basis meet it within STICKY of each other
    values = wave(1.5, seed=5, noise=6)
    history, first, c = series(values), 144, cluster(values)
    tape = create("baseline", step=STEP).backcast(history, first, 2)
    fresh = choose(history, first, tape, 300, SLO(target), c)
    assert fresh.attainable and "kept" not in fresh.reason
    start, end = float(history.timestamps[first]), float(history.timestamps[-1])

    def outcome(plan):
        policy = TapePolicy(history.timestamps[first:], values[first:], tape, 300, plan)
        return provision.simulate(provision.Demand(history), policy, c, start, end).outcome

    checked = 0
    for plan in (*FORECAST_LADDER, *HEADROOM_LADDER):
        if plan == fresh.plan:
            continue
        o = outcome(plan)
        limit = min(fresh.replayed.replica_hours * (1 + provision.STICKY), 2 * fresh.reactive_replica_hours)
        # Only within the basis in force: across bases the forecast's edge over headroom decides alone.
        stays = plan.basis == fresh.plan.basis and o.underprovisioned_fraction <= target and o.replica_hours <= limit
        again = choose(history, first, tape, 300, SLO(target), c, previous=plan)
        assert (again.plan == plan) is stays, plan
        assert ("kept" in again.reason) is stays
        checked += stays
    assert checked >= 1  # the rule was exercised both ways


# --- forecast or headroom -----------------------------------------------------------------------------

def rung(basis, cost, under, unserved=0.0, margin=0.1) -> Replayed:
    return Replayed(Provisioning(basis, 0.9 if basis == "forecast" else 0.7, margin), under, unserved, cost)


CLEARLY = VersusHeadroom(time=0.5, demand=0.6)  # a forecast plan half as often short as headroom at its cost


def test_a_forecast_is_served_only_when_it_meets_the_target_for_the_edge_less_than_headroom():
    headroom, cap = rung("headroom", 100, 0.015), 1000
    slightly = rung("forecast", 100 * (1 - provision.FORECAST_EDGE) + 1, 0.01)  # cheaper, but not by the edge
    chosen, attainable, why = _pick(slightly, CLEARLY, headroom, SLO(0.02), cap)
    assert chosen is headroom and attainable and f"{100 * provision.FORECAST_EDGE:g}% less" in why
    clearly = rung("forecast", 100 * (1 - provision.FORECAST_EDGE) - 1, 0.01)
    chosen, attainable, _ = _pick(clearly, CLEARLY, headroom, SLO(0.02), cap)
    assert chosen is clearly and attainable


def test_a_forecast_that_does_not_beat_headroom_at_equal_cost_is_not_served():
    headroom, cheap = rung("headroom", 100, 0.015), rung("forecast", 80, 0.01)
    for versus in (VersusHeadroom(time=0.5, demand=1.2), VersusHeadroom(time=1.3, demand=0.5)):
        chosen, attainable, why = _pick(cheap, versus, headroom, SLO(0.02), 1000)
        assert chosen is headroom and attainable
        assert "does not beat headroom at equal cost" in why and f"{versus.demand:.2f}x its unserved" in why
    # Neither meets the target: the least short is headroom's, even if the forecast is less often short.
    short_h, short_f = rung("headroom", 190, 0.03), rung("forecast", 195, 0.025, 0.02)
    chosen, attainable, why = _pick(short_f, VersusHeadroom(time=0.9, demand=1.1), short_h, SLO(0.02), 200)
    assert chosen is short_h and not attainable and "not attainable" in why
    chosen, _, _ = _pick(short_f, VersusHeadroom(time=0.9, demand=0.9), short_h, SLO(0.02), 200)
    assert chosen is short_f


def test_a_forecast_that_alone_meets_the_target_is_served_whatever_the_equal_cost_ratios():
    headroom, forecast = rung("headroom", 199, 0.03), rung("forecast", 150, 0.015)
    chosen, attainable, why = _pick(forecast, VersusHeadroom(time=0.8, demand=1.5), headroom, SLO(0.02), 200)
    assert chosen is forecast and attainable and "only plan meeting" in why


def test_versus_headroom_reads_headroom_at_the_plans_own_cost_not_a_line_between_rungs():
    # A smooth CPU trace: headroom's shortfall falls steeply, from 20 % at +0 % to 1 % at +5 %.
    def under(margin):
        return 0.2 * math.exp(-60 * margin)

    asked = []

    def replay(plan):
        asked.append(plan)
        return rung("headroom", 100 * (1 + plan.margin), under(plan.margin), under(plan.margin) / 10, plan.margin)

    # A forecast plan priced between +0 % and +5 %, short 6 % of the time: a straight line between those
    # rungs puts headroom at 10.5 % there, but headroom +2.5 %, which costs the same, is short 4.5 %.
    plan = rung("forecast", 102.5, 0.06, 0.006)
    versus = versus_headroom(plan, replay)
    exact = Point(102.5, under(0.025), under(0.025) / 10)
    assert versus.time == pytest.approx((0.06 + 0.005) / (exact.underprovisioned_fraction + 0.005))
    assert versus.demand == pytest.approx((0.006 + 0.001) / (exact.unserved_fraction + 0.001))
    assert not versus.beats
    line = [Point(100, under(0), under(0) / 10), Point(105, under(0.05), under(0.05) / 10)]
    assert equal_cost_ratio(Point(102.5, 0.06, 0.006), line, TIME) < 1  # what the rungs alone would have said
    assert len(set(asked)) <= 6 + REFINE_STEPS  # a bisection over 14 rungs and the refinement, not the whole ladder
    assert versus_headroom(rung("forecast", 102.5, 0.02, 0.002), replay).beats
    dear = versus_headroom(rung("forecast", 1000, 0.01, 0.001), replay)  # beyond +150 %: the curve is flat
    top = replay(HEADROOM_LADDER[-1])
    assert dear.time == pytest.approx((0.01 + 0.005) / (top.underprovisioned_fraction + 0.005))


def test_a_forecast_must_beat_headroom_over_each_half_of_the_replay_not_only_over_the_whole():
    def halved(r: Replayed, first: tuple[float, float], second: tuple[float, float]) -> Replayed:
        return replace(r, halves=(Point(r.replica_hours / 2, *first), Point(r.replica_hours / 2, *second)))

    def replay(plan):  # every headroom rung is as short in both halves
        under, unserved = 0.2 / (1 + 10 * plan.margin), 0.02 / (1 + 10 * plan.margin)
        return halved(rung("headroom", 100 * (1 + plan.margin), under, unserved, plan.margin),
                      (under, unserved), (under, unserved))

    steady = halved(rung("forecast", 112, 0.01, 0.001), (0.01, 0.001), (0.01, 0.001))
    assert versus_headroom(steady, replay).beats
    # One good day carries the whole: short 0.1 % of the first half and 15 % of the second, against
    # headroom's 9 % in each at that cost, so the second half loses.
    lucky = halved(rung("forecast", 112, 0.0755, 0.0075), (0.001, 0.0001), (0.15, 0.015))
    versus = versus_headroom(lucky, replay)
    assert versus.time < 1 and versus.demand < 1 and not versus.beats
    assert "in the replay's second half" in str(versus) and "first half" not in str(versus)

