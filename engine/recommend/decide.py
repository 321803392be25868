"""One recommendation from every rule's verdict: cooldown, precedence, replica target, clamp, reason.

- Cooldown: within `cooldown_seconds` of the last replica action, the opposite direction is held:
  a scale-down after a scale-up (or preemptive scale) is suppressed, and the next condition in
  precedence order names the recommendation. A scale-up after a scale-down is let through, as KEDA
  and the HPA do (capacity is never delayed), unless `cooldown_blocks_scale_up`. Moves back inside
  [min_replicas, max_replicas] are never held. Suppressed conditions stay in `conditions` and reason.
- Replica target: if any scale-up condition holds, the largest of their targets (so a critical alert
  or a memory increase never costs needed replicas); else the scale-down target, only when SCALE_DOWN
  names the recommendation (an anomaly or memory pressure keeps the replicas); else the current count.
  Then clamped to [min_replicas, max_replicas], with a note when that changed it.
- Confidence is the winning condition's; with no condition, the probability that the load stays at or
  below the scale-up threshold over the next `scale_up_window` (0 when there is no forecast to say so).
- Urgency is the highest among the conditions in force (LOW when none).
"""

from __future__ import annotations

from collections.abc import Callable

from .inputs import LastAction, WorkloadInputs
from .policy import PRECEDENCE, SCALE_DOWN_ACTIONS, SCALE_UP_ACTIONS, Action, ScalingPolicy, Urgency
from .resources import decrease_cpu, increase_memory
from .result import Condition, Recommendation
from .rules import Outcome, anomaly_alert, preemptive, replica_bounds, scale_down, scale_up, served
from .windows import ahead

Rule = Callable[[WorkloadInputs, ScalingPolicy, float], Outcome]
RULES: tuple[Rule, ...] = (
    anomaly_alert, replica_bounds, preemptive, scale_up, increase_memory, scale_down, decrease_cpu,
)
# A workload Helios steers (served_value given): its replica actions come from the served value alone;
# the forecast-threshold rules still run, as advisory lines (a surge beyond the lead window, say).
STEERED_RULES: tuple[Rule, ...] = (anomaly_alert, replica_bounds, served, increase_memory, decrease_cpu)
ADVISORY_RULES: tuple[Rule, ...] = (preemptive, scale_up, scale_down)


def recommend(inputs: WorkloadInputs, policy: ScalingPolicy, last: LastAction | None, now: float) -> Recommendation:
    """The recommendation for one workload at time `now`, given the last replica action taken (if any)."""
    conditions: list[Condition] = []
    checks: list[str] = []
    advisory: list[str] = []
    steered = inputs.served_value is not None
    for rule in STEERED_RULES if steered else RULES:
        outcome = rule(inputs, policy, now)
        if isinstance(outcome, Condition):
            conditions.append(outcome)
        elif outcome:
            checks.append(outcome)
    for rule in ADVISORY_RULES if steered else ():
        outcome = rule(inputs, policy, now)
        if isinstance(outcome, Condition):
            advisory.append(f"advisory, not acted on: {outcome.action.value} to {outcome.target_replicas}: "
                            f"{outcome.detail}")
    conditions.sort(key=lambda c: PRECEDENCE.index(c.action))  # stable: rule order breaks ties

    held, cooldown_notes = _cooldown(conditions, inputs.current_replicas, policy, last, now)
    held_ids = {id(c) for c in held}
    active = [c for c in conditions if id(c) not in held_ids]
    winner = active[0] if active else None
    action = winner.action if winner else Action.NONE

    current = inputs.current_replicas
    ups = [c.target_replicas for c in active if c.action in SCALE_UP_ACTIONS]
    downs = [c.target_replicas for c in active if c.action in SCALE_DOWN_ACTIONS]
    target = max(ups) if ups else min(downs) if action in SCALE_DOWN_ACTIONS else current
    clamped = min(max(target, policy.min_replicas), policy.max_replicas)
    notes = list(cooldown_notes)
    if clamped != target:
        bound = "max_replicas" if clamped < target else "min_replicas"
        notes.append(f"target {target} clamped to {bound} {clamped}")

    parts = [f"{c.action.value}: {c.detail}" + (" [held by cooldown]" if id(c) in held_ids else "") for c in conditions]
    checked = ["checked: " + "; ".join(checks)] if checks else []
    reason = "; ".join((parts or ["no condition triggered"]) + notes + advisory + checked)
    return Recommendation(
        action=action,
        target_replicas=clamped,
        current_replicas=current,
        reason=reason,
        confidence=winner.confidence if winner else _calm(inputs, policy, now),
        urgency=max((c.urgency for c in active), key=lambda u: u.rank, default=Urgency.LOW),
        conditions=tuple(conditions),
        resources=tuple(c.resource for c in conditions if c.resource is not None),
        suppressed_by_cooldown=bool(held),
        act_by=winner.act_by if winner else None,
        notes=tuple(advisory + checks),
    )


def _cooldown(conditions: list[Condition], current: int, policy: ScalingPolicy, last: LastAction | None,
              now: float) -> tuple[list[Condition], list[str]]:
    """The conditions the cooldown holds back, and notes saying so."""
    if last is None or now - last.at >= policy.cooldown_seconds:
        return [], []
    since = f"{last.action.value} {now - last.at:.0f} s ago (cooldown {policy.cooldown_seconds:.0f} s)"
    if last.action in SCALE_UP_ACTIONS:
        opposite = SCALE_DOWN_ACTIONS
    elif last.action in SCALE_DOWN_ACTIONS:
        if not policy.cooldown_blocks_scale_up:
            allowed = any(c.action in SCALE_UP_ACTIONS for c in conditions)
            return [], [f"scale-up allowed after {since}: scale-ups are not delayed"] if allowed else []
        opposite = SCALE_UP_ACTIONS
    else:
        return [], []
    held = [c for c in conditions if c.action in opposite and c.rule != "replica_bounds"]
    return held, [f"{c.action.value} held: last action {since}" for c in held]


def _calm(inputs: WorkloadInputs, policy: ScalingPolicy, now: float) -> float:
    """Confidence that nothing needs doing: P(load stays within the scale-up threshold) over the window."""
    window = ahead(inputs.load_forecast, now, policy.scale_up_window)
    if window is None:
        return 0.0
    threshold = policy.cpu_scale_up_threshold * inputs.current_replicas * inputs.capacity_per_replica
    return 1.0 - window.prob_above(threshold)
