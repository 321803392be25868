"""What each policy tells the HPA at a KEDA poll: the metric value, or None when the scaler fails.

- reactive: the last sample at or before now, what a Prometheus trigger on the same signal answers;
- reactive+N%: the same raised by N %, what a lower HPA target gives (the alternative to beat);
- helios: the value GetMetrics would serve, made by Helios's own code (engine.pipeline fits and
  updates on the refresher's schedule, scaler.runtime.state.answer on the snapshot), from data up to now;
  optionally with the anomaly alerts serving would raise on the way (ForecastTape's `anomaly`);
- oracle: the true demand ahead, to bound what any policy can reach through the same HPA.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import replace

from helios.engine.align import align
from helios.engine.anomaly.base import Severity
from helios.engine.errors import HeliosError
from helios.engine.pipeline import choose_provisioning, fit_and_forecast, score_latest, update_and_forecast
from helios.engine.replay.loop import Demand
from helios.engine.tracking import ForecastLedger
from helios.engine.types import Series

from ...config.metadata import TriggerSpec
from ...config.settings import AnomalySettings, MetricsSettings, ModelsSettings, ProvisioningSettings
from ...runtime.state import Availability, Snapshot, answer
from ...runtime.workloads import Workload


class Reactive:
    """The last sample, raised by `headroom` (0.2: 20 % more): reactive scaling with a lower HPA target."""

    def __init__(self, trace: Series, headroom: float = 0.0) -> None:
        self._demand = Demand(trace)
        self._raise = 1 + headroom

    def metric(self, now: float) -> float | None:
        i = bisect.bisect_right(self._demand.timestamps, now) - 1
        return float(self._demand.values[i]) * self._raise if i >= 0 else None


class Oracle:
    """Knows the future: asks for the peak true demand from now until the last moment that pods ordered
    on this answer start serving (the HPA uses it for one polling interval, plus a sync period, and
    pods are ready a startup delay later), raised just past the HPA's tolerance so that the HPA never
    leaves it inside the no-change band. So the HPA always orders enough pods in time, unless its rate
    limits or max replicas forbid it: no policy is under-provisioned less often through the same HPA.
    The price is up to `tolerance` more replicas than the peak needs."""

    def __init__(self, trace: Series, lookahead: float, tolerance: float) -> None:
        self._demand = Demand(trace)
        self.lookahead = lookahead
        self._raise = (1 + tolerance) * (1 + 1e-6)

    def metric(self, now: float) -> float | None:
        return self._demand.peak(now, now + self.lookahead) * self._raise


class ForecastTape:
    """The snapshots the refresher would publish for one workload, refreshed at the times asked.

    Each refresh reads the trace as the `file` source does (the samples of the last `metrics.history`
    up to now), publishes the observed value, and fits the model when none is fitted or
    `models.refit_interval` has passed, otherwise updates it when a new sample arrived — the
    Refresher's schedule. Each new forecast is settled and recorded in a forecast ledger as the
    insights do, so the live guard (engine.replay.provision.guarded) acts on the same rolling error as
    in the server. Fits take no simulated time. Times must not decrease.

    With `anomaly` (a detector other than none), each new forecast is followed, as the insights follow
    it, by the anomaly score of the newest sample, through the same Workload record and rule
    (Workload.detector_due, Workload.take_score: refitted every anomaly.refit_interval, one alert per
    incident): `alerts` lists the (sample timestamp, severity) of each alert serving would raise.
    """

    def __init__(self, trace: Series, trigger: TriggerSpec, models: ModelsSettings, metrics: MetricsSettings,
                 step: int, provisioning: ProvisioningSettings | None = None,
                 anomaly: AnomalySettings | None = None) -> None:
        self._trace, self._models, self._metrics, self._step = trace, models, metrics, step
        self._provisioning = provisioning or ProvisioningSettings()
        self._trigger = trigger
        self._horizon = max(1, math.ceil(trigger.horizon / step))
        self._model = trigger.model
        self._params = models.params_for(trigger.model, self._horizon, trigger.quantile)
        self.snapshot = Snapshot(trigger)
        self._artifact: bytes | None = None
        self._fitted_at = -math.inf
        self._ledger = ForecastLedger(interval_level=models.interval_level)
        self.fits = self.updates = self.failures = self.replays = 0
        self.choices: list = []  # every provisioning choice, in order (benchmarks show them)
        self._anomaly = anomaly if anomaly is not None and anomaly.detector != "none" else None
        self._record = Workload()  # the anomaly detector, the likelihood's state and the alert gate
        self.alerts: list[tuple[int, Severity]] = []

    def refresh(self, now: float) -> Snapshot:
        history = self._trace.between(now - self._metrics.history, now)
        last = history.last_value()
        if last is None:  # the refresher's NoData: the last snapshot stays
            return self.snapshot
        old = self.snapshot
        self.snapshot = replace(old, observed=last, data_end=history.end, refreshed_at=now)
        refit = self._artifact is None or now - self._fitted_at >= self._models.refit_interval
        if not refit and old.forecast is not None and (history.end, last) == (old.data_end, old.observed):
            return self.snapshot
        try:
            if refit:
                fitted = fit_and_forecast(self._model, self._params, history, self._step, self._horizon)
                self._fitted_at = now
                self.fits += 1
            else:
                fitted = update_and_forecast(self._artifact, history, self._step, self._horizon)
                self.updates += 1
        except (HeliosError, ValueError):  # the refresher's fit_error: observed and old forecast stay
            self.failures += 1
            return self.snapshot
        self._artifact = fitted.artifact
        self._ledger.settle(align(history, self._step))
        self._ledger.record(fitted.forecast, now, self._trigger.lead_time)
        self.snapshot = replace(self.snapshot, forecast=fitted.forecast, forecast_at=now, fitted_at=self._fitted_at,
                                model_details=fitted.details, forecast_error=self._ledger.error())
        if refit and self._trigger.slo is not None:
            self._provision(history)
        if self._anomaly is not None:
            self._score(history, now)
        return self.snapshot

    def _score(self, history: Series, now: float) -> None:
        """Insights._score without a worker: the newest sample's score, and whether it raises an alert."""
        w, detector = self._record, self._anomaly.detector
        refit = w.detector_due(now, self._anomaly.refit_interval, [])
        try:
            scored = score_latest(detector, None if refit else w.detector, history, self._step, None, w.likelihood)
        except HeliosError:  # too little history yet: no score this time, as in the server
            return
        if w.take_score(scored, now, refit, []):
            self.alerts.append((scored.timestamp, scored.severity))

    def _provision(self, history: Series) -> None:
        """The refresher's replay after each refit: the last choice stays when one fails."""
        t, p = self._trigger, self._provisioning
        try:
            last = self.snapshot.provisioning
            choice = choose_provisioning(t.model, self._params, history, self._step, t.lead_time, t.slo, t.cluster,
                                         p.replay, p.min_replay, last.plan if last is not None else None)
        except (HeliosError, ValueError) as e:
            self.snapshot = replace(self.snapshot, provisioning_note=str(e))
            return
        self.replays += 1
        self.choices.append(choice)
        self.snapshot = replace(self.snapshot, provisioning=choice, provisioning_note="")


class Helios:
    """GetMetrics' value at each poll, from the tape's latest snapshot (refreshed at the same moment:
    the refresher and KEDA both run every polling interval)."""

    def __init__(self, tape: ForecastTape, trigger: TriggerSpec, staleness_limit: float) -> None:
        self._tape, self._trigger, self._staleness = tape, trigger, staleness_limit

    def metric(self, now: float) -> float | None:
        a = answer(self._tape.refresh(now), self._trigger, now, self._staleness)
        return a.value if a.availability is Availability.OK else None  # else KEDA reports an error
