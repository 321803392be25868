"""How much to provision for one workload: the cheapest plan that meets its shortfall target when the
workload's own recent history is replayed through KEDA + the HPA.

The user states an SLO (the share of time the workload may be short of ready capacity) and a cost
cap (at most `cost_cap` times the replica-hours plain reactive scaling used in the same replay).
Two ladders of plans are replayed, each ordered from cheapest to most generous:
- forecast: the q-quantile forecast over the lead window (the answer GetMetrics serves), q from
  0.5 to 0.95, then the 0.95 quantile over a rising headroom (the higher of the two is served);
- headroom: the observed value raised by 0 to 150 % (reactive scaling with a lower HPA target).
Along a ladder the shortfall falls as the cost rises, so a bisection finds each ladder's cheapest
rung that meets the target in a few replays, and a few more replays between that rung and the one
below it find the quantile or margin that just meets it (_finest). A forecast plan is served only
when it beats headroom twice over in the replay: at its own replica-hours it is short less often and
of less demand than headroom (the equal-cost ratios the benchmarks judge by) over the whole replay
and over each of its halves, so that a win is not one day's or one event's, and it meets the target
for FORECAST_EDGE less than headroom does. Otherwise Helios serves headroom: a forecast that does
not pay for itself against a lower HPA target is not worth serving. When no plan meets the target
within the cap, the least short of them wins, and the choice says the target is not attainable.

The replay uses the forecasts the model would have made at each past origin (Forecaster.backcast:
data up to each origin only) and the same answer rule as GetMetrics (engine.demand).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..demand import Provisioning, next_window_change, provisioned_demand
from ..types import Forecast, Series
from .frontier import HEADROOMS, Point, equal_cost_ratio
from .loop import Cluster, Demand, Run, outcome, simulate

FORECAST_LADDER = (
    *(Provisioning("forecast", q) for q in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)),
    *(Provisioning("forecast", 0.95, m) for m in (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)),
)
HEADROOM_LADDER = tuple(Provisioning("headroom", margin=h) for h in HEADROOMS)
# A replay of two days estimates each plan's cost within a few percent, and a workload whose plan flips at every
# refit runs a mix that is worse than either plan. So a forecast must meet the target for FORECAST_EDGE less
# than headroom to be served (headroom is the safer of equals), and the plan in force stays while it still
# meets the target for at most STICKY more than the newly cheapest of its own basis. Across bases the edge
# alone decides: keeping a forecast that no longer beats headroom by it would serve what the rule refuses.
FORECAST_EDGE = 0.03
STICKY = 0.05
REFINE_STEPS = 2  # replays that narrow the headroom curve around a forecast plan's cost (_closer)
MARGIN_STEPS = 3  # bisections of the gap below a ladder's cheapest rung that meets the target (_finest)


@dataclass(frozen=True)
class SLO:
    target_shortfall: float = 0.02  # share of the time the workload may be short of ready capacity
    cost_cap: float = 2.0  # at most this many times plain reactive scaling's replica-hours

    def __post_init__(self) -> None:
        if not 0 < self.target_shortfall <= 0.5:
            raise ValueError(f"target_shortfall must be in (0, 0.5], got {self.target_shortfall}")
        if not self.cost_cap > 1:
            raise ValueError(f"cost_cap must be > 1, got {self.cost_cap}")


@dataclass(frozen=True)
class Replayed:
    """One plan's outcome over the replayed history."""

    plan: Provisioning
    underprovisioned_fraction: float
    unserved_fraction: float
    replica_hours: float
    halves: tuple[Point, ...] = ()  # the same outcome over the replay's first and second half


@dataclass(frozen=True)
class Choice:
    plan: Provisioning
    replayed: Replayed  # the chosen plan's replay
    headroom: Replayed  # headroom's best: the cheapest meeting the target within the cap, else the least short
    reactive_replica_hours: float
    attainable: bool  # some plan met the target within the cap
    replayed_seconds: float  # how much history was replayed
    reason: str
    slo: SLO  # what the choice was made for: a changed trigger needs a new replay
    cluster: Cluster
    # Share of the replayed next-step actuals inside the tape's 80 % interval: how well the forecast did in
    # the replay, for the live guard to compare the served forecasts' rolling coverage with.
    forecast_coverage: float = float("nan")

    def made_for(self, slo: SLO | None, cluster: Cluster) -> bool:
        return slo == self.slo and cluster == self.cluster


class TapePolicy:
    """What GetMetrics would have answered at each past poll under `plan`: the forecast made at the
    latest origin at or before the poll, and that origin's observed value."""

    def __init__(self, origins: Sequence[int], observed: Sequence[float], tape: Sequence[Forecast], lead: float,
                 plan: Provisioning) -> None:
        self._origins = [float(t) for t in origins]  # floats: bisect compares them with the poll times
        self._observed, self._tape, self._lead, self._plan = observed, tape, lead, plan
        self._last: tuple[int, float, float] = (-1, -1.0, 0.0)  # (origin, valid until, value)

    def metric(self, now: float) -> float | None:
        i = bisect.bisect_right(self._origins, now) - 1
        if i < 0:
            return None
        origin, until, value = self._last
        if origin == i and now < until:  # as the server's answer cache: same forecast, same lead-window steps
            return value
        forecast = self._tape[i]
        value = provisioned_demand(forecast, float(self._observed[i]), now, self._lead, self._plan)
        self._last = (i, next_window_change(forecast, now, self._lead), value)
        return value


def choose(history: Series, first: int, tape: Sequence[Forecast], lead: float, slo: SLO, cluster: Cluster,
           previous: Provisioning | None = None) -> Choice:
    """The plan to serve, from a replay of `history` (aligned, no gaps) from origin `first` to its end.
    `tape[j]` is the forecast made at origin first + j; `cluster` carries the trigger's target value and
    the HPA facts (startup delay, tolerance, behavior); `previous` is the plan in force, if any."""
    if len(tape) != len(history) - first:
        raise ValueError(f"the tape has {len(tape)} forecasts for {len(history) - first} origins")
    origins = history.timestamps[first:]
    start, end = float(origins[0]), float(origins[-1])
    if end <= start:
        raise ValueError("nothing to replay: the history after the first origin is a single sample")
    demand = Demand(history)
    observed = history.values[first:]
    memo: dict[Provisioning, Replayed] = {}

    def replay(plan: Provisioning) -> Replayed:
        if plan not in memo:
            run = simulate(demand, TapePolicy(origins, observed, tape, lead, plan), cluster, start, end)
            o = run.outcome
            memo[plan] = Replayed(plan, o.underprovisioned_fraction, o.unserved_fraction, o.replica_hours,
                                  _halves(run, cluster))
        return memo[plan]

    reactive = replay(HEADROOM_LADDER[0]).replica_hours
    cap = slo.cost_cap * reactive
    forecast, headroom = (_finest(ladder, _best(ladder, replay, slo.target_shortfall, cap), replay,
                                  slo.target_shortfall, cap) for ladder in (FORECAST_LADDER, HEADROOM_LADDER))
    versus = versus_headroom(forecast, replay, memo) if forecast is not None else None
    chosen, attainable, why = _pick(forecast, versus, headroom, slo, cap)
    if attainable and previous is not None and previous.basis == chosen.plan.basis and previous != chosen.plan:
        kept = replay(previous)
        if _meets(kept, slo.target_shortfall, cap) and kept.replica_hours <= chosen.replica_hours * (1 + STICKY):
            target = f"{100 * slo.target_shortfall:.3g}%"
            why = (f"kept: it still meets the {target} shortfall target for at most {100 * STICKY:g}% more than "
                   f"{chosen.plan.label}")
            chosen = kept
    why = f"{chosen.plan.label}: {why}"
    return Choice(chosen.plan, chosen, headroom, reactive, attainable, end - start, why, slo, cluster,
                  _coverage(tape, history.values[first + 1:]))


def _halves(run: Run, cluster: Cluster) -> tuple[Point, Point]:
    mid = run.times.size // 2
    points = []
    for part in (slice(0, mid), slice(mid, None)):
        o = outcome(run.demand[part], run.replicas[part], run.ready[part], cluster.capacity, cluster.sync_period, 0)
        points.append(Point(o.replica_hours, o.underprovisioned_fraction, o.unserved_fraction))
    return tuple(points)


def _coverage(tape: Sequence[Forecast], actual) -> float:
    """Share of next-step actuals inside each origin's 80 % interval (the last origin has none)."""
    inside = []
    for f, y in zip(tape, actual, strict=False):
        lower, upper = f.interval(0.8)
        inside.append(lower[0] <= y <= upper[0])
    return sum(inside) / len(inside) if inside else float("nan")


GUARD_DROP = 0.15  # live coverage this far below the replay's: the forecast is off what the choice assumed
GUARD_MATURED = 24  # settled forecasts the live figure needs first (two hours of 5-minute steps)


def guarded(choice: Choice, matured: int, coverage: float) -> Provisioning:
    """The plan to serve given the served forecasts' rolling interval coverage: the choice, or, when a
    forecast plan's live coverage has fallen GUARD_DROP below what its replay saw, the replay's headroom
    plan until the coverage recovers (headroom needs no forecast)."""
    if choice.plan.basis == "forecast" and matured >= GUARD_MATURED and coverage == coverage and \
            coverage < choice.forecast_coverage - GUARD_DROP:
        return choice.headroom.plan
    return choice.plan


@dataclass(frozen=True)
class VersusHeadroom:
    """A forecast plan's replayed shortfalls over headroom's at the same replica-hours, each with the
    frontier's slack (engine.replay.frontier.equal_cost_ratio): below 1, the forecast is the better buy."""

    time: float  # under-provisioned time
    demand: float  # unserved demand
    halves: tuple[tuple[float, float], ...] = ()  # (time, demand) over each half of the replay

    @property
    def beats(self) -> bool:
        return all(t <= 1 and d <= 1 for t, d in ((self.time, self.demand), *self.halves))

    def __str__(self) -> str:
        whole = (f"{self.time:.2f}x headroom's under-provisioned time and {self.demand:.2f}x its unserved demand "
                 f"at the same replica-hours")
        named = zip(("first", "second"), self.halves, strict=False)  # no halves: nothing to name
        lost = [f"{name} half {t:.2f}x and {d:.2f}x" for name, (t, d) in named if t > 1 or d > 1]
        return f"{whole}; in the replay's {' and '.join(lost)}" if lost else whole


def versus_headroom(plan: Replayed, replay: Callable[[Provisioning], Replayed],
                    replayed: Mapping[Provisioning, Replayed] | None = None) -> VersusHeadroom:
    """`plan` against the headroom curve at its replica-hours: linear between two headroom plans that
    bracket its cost, the ladder's rungs (found by bisection, as the cost rises along the ladder, starting
    from the rungs already `replayed`) brought closer by replays in between (_closer); flat beyond the
    ladder's ends; and the same over each half of the replay, with the same two plans, where the replays
    have halves."""
    replayed = replayed or {}
    lo, hi = 0, len(HEADROOM_LADDER) - 1
    for i, rung in enumerate(HEADROOM_LADDER):
        if rung in replayed:
            if replayed[rung].replica_hours <= plan.replica_hours:
                lo = max(lo, i)
            else:
                hi = min(hi, i - 1)
    hi = max(lo, hi)
    while lo < hi:  # the dearest rung no dearer than the plan
        mid = (lo + hi + 1) // 2
        if replay(HEADROOM_LADDER[mid]).replica_hours <= plan.replica_hours:
            lo = mid
        else:
            hi = mid - 1
    rungs = _closer(plan.replica_hours, replay(HEADROOM_LADDER[lo]),
                    replay(HEADROOM_LADDER[min(lo + 1, len(HEADROOM_LADDER) - 1)]), replay)
    curve = [Point(r.replica_hours, r.underprovisioned_fraction, r.unserved_fraction) for r in rungs]
    mine = Point(plan.replica_hours, plan.underprovisioned_fraction, plan.unserved_fraction)
    halves = []
    if plan.halves and all(r.halves for r in rungs):
        for k, half in enumerate(plan.halves):
            around = [r.halves[k] for r in rungs]
            halves.append((equal_cost_ratio(half, around, "underprovisioned_fraction"),
                           equal_cost_ratio(half, around, "unserved_fraction")))
    return VersusHeadroom(equal_cost_ratio(mine, curve, "underprovisioned_fraction"),
                          equal_cost_ratio(mine, curve, "unserved_fraction"), tuple(halves))


def _closer(cost: float, below: Replayed, above: Replayed, replay: Callable[[Provisioning], Replayed]
            ) -> set[Replayed]:
    """Two headroom plans that bracket `cost` more closely than the ladder's rungs `below` and `above`:
    REFINE_STEPS replays at the margin a straight line between the two puts at that cost. The curve is
    convex, so a straight line between rungs overstates headroom's shortfall between them most where it
    falls steeply (from +0 % to +5 % on a smooth CPU trace it can go from 20 % to 1 %): a forecast plan
    priced between such rungs would seem to beat a headroom that, at its cost, is barely short at all."""
    for _ in range(REFINE_STEPS):
        low, high = below.replica_hours, above.replica_hours
        if not low < cost < high:
            break
        a, b = below.plan.margin, above.plan.margin
        margin = round(a + (b - a) * (cost - low) / (high - low), 4)
        if not a < margin < b:
            break
        middle = replay(Provisioning("headroom", margin=margin))
        below, above = (middle, above) if middle.replica_hours <= cost else (below, middle)
    return {below, above}


def _pick(forecast: Replayed | None, versus: VersusHeadroom | None, headroom: Replayed, slo: SLO,
          cap: float) -> tuple[Replayed, bool, str]:
    """The better of the forecast ladder's best plan and headroom's, whether the target is attainable, and
    why (module docstring). A forecast that alone meets the target is served: the target comes first."""
    target = f"{100 * slo.target_shortfall:.3g}%"
    meets = [r for r in (forecast, headroom) if r is not None and _meets(r, slo.target_shortfall, cap)]
    only = f"the only plan meeting the {target} shortfall target within {slo.cost_cap:g}x reactive's cost"
    unattainable = (f"the {target} shortfall target is not attainable within {slo.cost_cap:g}x reactive's "
                    f"replica-hours; the least shortfall within the cap")
    if meets == [forecast]:
        return forecast, True, only
    if forecast is not None and versus is not None and not versus.beats:
        lost = f"; {forecast.plan.label} does not beat headroom at equal cost in the replay ({versus})"
        return headroom, bool(meets), (f"it meets the {target} shortfall target in the replay" if meets
                                       else unattainable) + lost
    if len(meets) == 2:
        if forecast.replica_hours < (1 - FORECAST_EDGE) * headroom.replica_hours:
            return forecast, True, f"the cheapest plan meeting the {target} shortfall target in the replay"
        return headroom, True, (f"the cheapest plan meeting the {target} shortfall target in the replay: the "
                                f"forecast does not meet it for {100 * FORECAST_EDGE:g}% less than headroom")
    if meets:
        return headroom, True, only
    least = min((r for r in (forecast, headroom) if r is not None),
                key=lambda r: (r.underprovisioned_fraction, r.replica_hours))
    return least, False, unattainable


def _meets(r: Replayed, target: float, cap: float) -> bool:
    return r.underprovisioned_fraction <= target and r.replica_hours <= cap


def _finest(ladder: Sequence[Provisioning], rung: Replayed | None, replay: Callable[[Provisioning], Replayed],
            target: float, cap: float) -> Replayed | None:
    """The cheapest plan meeting the target between `rung`, the ladder's cheapest rung that meets it, and
    the rung below it, which does not: the quantile and the margin are bisected MARGIN_STEPS times between
    the two. The rungs lie 5 to 25 points of margin apart, and the shortfall can fall steeply between two
    (on a smooth CPU trace from 2 % at +5 % to 0.1 % at +10 %). Served from the rungs alone, such a workload
    pays for +10 % where +7 % would do, or flips between +5 % and +10 % from refit to refit as its replayed
    shortfall at +5 % wanders around the target: worse than the constant margin a user would set, as the
    curve is convex. And forecast and headroom would be compared at their rungs' costs, not at the target."""
    if rung is None or not _meets(rung, target, cap):
        return rung
    i = ladder.index(rung.plan)
    if i == 0:
        return rung
    low, best = ladder[i - 1], rung  # low does not meet the target, best does
    for _ in range(MARGIN_STEPS):
        middle = replay(replace(low, quantile=round((low.quantile + best.plan.quantile) / 2, 4),
                                margin=round((low.margin + best.plan.margin) / 2, 4)))
        if _meets(middle, target, cap):
            best = middle
        else:
            low = middle.plan
    return best


def _best(ladder: Sequence[Provisioning], replay: Callable[[Provisioning], Replayed], target: float,
          cap: float) -> Replayed | None:
    """The cheapest rung meeting the target within the cap, found by bisection (the shortfall falls
    along the ladder); when none does, the most generous rung within the cap (the least short); None
    when even the first rung costs more than the cap."""
    lo, hi = 0, len(ladder) - 1
    if replay(ladder[hi]).underprovisioned_fraction <= target:
        while lo < hi:  # invariant: ladder[hi] reaches the target
            mid = (lo + hi) // 2
            if replay(ladder[mid]).underprovisioned_fraction <= target:
                hi = mid
            else:
                lo = mid + 1
        if replay(ladder[hi]).replica_hours <= cap:
            return replay(ladder[hi])
    # Not reached within the cap: the most generous rung whose cost stays within it.
    lo, hi = 0, len(ladder) - 1
    while lo < hi:  # the last rung within the cap (cost rises along the ladder)
        mid = (lo + hi + 1) // 2
        if replay(ladder[mid]).replica_hours <= cap:
            lo = mid
        else:
            hi = mid - 1
    return replay(ladder[lo]) if replay(ladder[lo]).replica_hours <= cap else None
