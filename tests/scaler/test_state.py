"""state.answer, the pure rule behind GetMetrics, as a table: each row a snapshot and what it answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from helios.adapters import SOURCES
from helios.engine.demand import Provisioning
from helios.engine.models import MODELS
from helios.engine.replay.provision import Choice, Replayed
from helios.engine.tracking import ForecastError
from helios.engine.types import QUANTILE_LEVELS, Forecast, Series
from helios.scaler.config.metadata import MetadataParser
from helios.scaler.config.settings import load_settings
from helios.scaler.runtime.state import Availability, Context, Snapshot, answer
from helios.scaler.runtime.store import MemoryStore
from helios.scaler.runtime.workloads import Workloads

T0 = 1_700_000_100  # the last sample; the forecast's steps are T0 + 300 ... T0 + 1800
LIMIT = 600  # staleness limit


def trigger(**keys):
    settings = load_settings()
    parse = MetadataParser({n: c() for n, c in SOURCES.items()}, settings.models, MODELS, settings.provisioning)
    return parse("shop", "web", {"source": "demo", "targetValue": "10", **keys})


FIXED = trigger(quantile="0.7")  # the quantile is fixed: no replay, plan "forecast q0.7"
TARGETED = trigger()  # the default shortfall target: the replay's choice is served
FLAT = Forecast("m", T0 + 300, 300, np.full(6, 50.0), np.full((len(QUANTILE_LEVELS), 6), 50.0))


def snap(**fields) -> Snapshot:
    return Snapshot(FIXED, **{"observed": 40.0, "data_end": T0, "forecast": FLAT, "refreshed_at": T0, **fields})


def headroom_choice(t) -> Choice:
    plan = Provisioning("headroom", margin=0.25)
    r = Replayed(plan, 0.01, 0.002, 120.0)
    return Choice(plan, r, r, 100.0, True, 86400.0, "test", t.slo, t.cluster, forecast_coverage=0.8)


# name, snapshot, trigger, now, availability, value, basis, fragment of the reason
ROWS = [
    ("never fetched", None, FIXED, T0, Availability.NO_DATA, 0.0, "", "first refresh pending"),
    ("bad query", Snapshot(FIXED, last_error="unknown metric", last_error_kind="BadQuery"), FIXED, T0,
     Availability.BAD_QUERY, 0.0, "", "unknown metric"),
    ("outage, nothing fetched", Snapshot(FIXED, last_error="timed out", last_error_kind="SourceUnavailable"), FIXED,
     T0, Availability.NO_DATA, 0.0, "", "last error: timed out"),
    ("stale", snap(last_error="connection refused"), FIXED, T0 + LIMIT + 1, Availability.STALE, 0.0, "",
     "exceeds the staleness limit"),
    ("forecast ended", snap(refreshed_at=T0 + 1800), FIXED, T0 + 1800, Availability.STALE, 0.0, "",
     "forecast ends before now"),
    ("observe mode", snap(), trigger(quantile="0.7", mode="observe"), T0 + 10, Availability.OK, 40.0, "observed",
     "mode is observe"),
    ("no forecast yet", snap(forecast=None), FIXED, T0 + 10, Availability.OK, 40.0, "observed", "no forecast yet"),
    ("forecast above the load", snap(), FIXED, T0 + 10, Availability.OK, 50.0, "forecast", ": the forecast."),
    ("rise within the HPA's tolerance", snap(observed=48.0), FIXED, T0 + 10, Availability.OK, pytest.approx(52.8),
     "forecast", "less than the HPA's tolerance"),
    ("forecast below the load", snap(observed=60.0), FIXED, T0 + 10, Availability.OK, 60.0, "forecast",
     "the observed value (the floor)"),
    ("NaN observed is served as 0", snap(observed=float("nan"), forecast=None), FIXED, T0 + 10, Availability.OK,
     0.0, "observed", "0: the latest observed value"),
]


@pytest.mark.parametrize("name, snapshot, t, now, availability, value, basis, fragment", ROWS,
                         ids=[r[0] for r in ROWS])
def test_answer(name, snapshot, t, now, availability, value, basis, fragment):
    result = answer(snapshot, t, now, LIMIT)
    assert (result.availability, result.value, result.basis) == (availability, value, basis)
    assert fragment in result.reason, result.reason
    if availability is Availability.OK:
        assert result.detail == "" and now < result.valid_until
    else:  # KEDA is told why; Explain says GetMetrics fails
        assert result.detail and result.reason.startswith(f"GetMetrics fails now ({availability.value})")


def test_headroom_chosen_by_the_replay_raises_the_observed_value_by_its_margin():
    chosen = replace(snap(provisioning=headroom_choice(TARGETED)), trigger=TARGETED)
    result = answer(chosen, TARGETED, T0 + 10, LIMIT)
    assert (result.basis, result.value) == ("headroom", 50.0)  # 40 x 1.25
    assert result.plan == Provisioning("headroom", margin=0.25)
    assert "50 = observed 40 x 1.25: headroom +25%" in result.reason
    assert "ceil(50 / targetValue 10) = 5 replicas" in result.reason
    # A choice made for another target is not served: the trigger's default quantile is, until the next replay.
    assert answer(replace(chosen, trigger=FIXED), FIXED, T0 + 10, LIMIT).basis == "forecast"


def test_the_forecast_reason_names_the_window_peak_and_the_replicas():
    result = answer(snap(), FIXED, T0 + 10, LIMIT)
    assert result.reason == (
        "50 = max(peak of the q0.7 forecast over the lead window (now, now + 300s] = 50, observed 40): "
        "the forecast. The HPA aims for ceil(50 / targetValue 10) = 5 replicas")


# --- Workloads: the one writer of snapshots ----------------------------------------------------------

def test_publish_replaces_the_snapshot_whole_and_never_revives_a_dropped_workload():
    workloads = Workloads(MemoryStore(), LIMIT)
    workloads.add(FIXED)
    first = workloads.snapshot(FIXED.key)
    published = workloads.publish(FIXED.key, observed=40.0, refreshed_at=T0)
    assert published is workloads.snapshot(FIXED.key) and published is not first
    assert (first.observed, published.observed) == (None, 40.0)  # the old object is unchanged
    workloads.drop(FIXED.key)
    assert workloads.publish(FIXED.key, observed=41.0) is None  # a late replay or insights run
    assert workloads.snapshot(FIXED.key) is None and len(workloads) == 0


def test_a_remembered_answer_is_dropped_when_a_new_snapshot_is_published():
    workloads = Workloads(MemoryStore(), LIMIT)
    workloads.add(FIXED)
    workloads.publish(FIXED.key, observed=40.0, data_end=T0, refreshed_at=T0, forecast=FLAT)
    before = workloads.answer(FIXED, T0 + 10)
    assert workloads.answer(FIXED, T0 + 20) is before  # the same snapshot, the same lead window
    workloads.publish(FIXED.key, observed=60.0)
    assert workloads.answer(FIXED, T0 + 20).value == 60.0


def test_a_publish_that_changes_nothing_answer_reads_keeps_the_remembered_answer():
    workloads = Workloads(MemoryStore(), LIMIT)
    workloads.add(FIXED)
    workloads.publish(FIXED.key, observed=40.0, data_end=T0, refreshed_at=T0, forecast=FLAT)
    before = workloads.answer(FIXED, T0 + 10)
    # What the insights and the context feed publish: GetMetrics would serve the same, so nothing is recomputed.
    workloads.publish(FIXED.key, recent=Series(np.array([T0]), np.array([40.0])), anomaly=None,
                      forecast_error=ForecastError(3, 0.1, 0.5), context=Context(None, note="off"))
    assert workloads.answer(FIXED, T0 + 20) is before
    workloads.publish(FIXED.key, forecast=FLAT)  # the same forecast object published again: still the same
    assert workloads.answer(FIXED, T0 + 20) is before
    workloads.publish(FIXED.key, refreshed_at=T0 + 5)  # a new fetch: its staleness moves
    assert workloads.answer(FIXED, T0 + 20) is not before


def test_a_new_forecast_error_drops_the_answer_when_it_guards_a_replays_choice():
    workloads = Workloads(MemoryStore(), LIMIT)
    workloads.add(TARGETED)
    workloads.publish(TARGETED.key, observed=40.0, data_end=T0, refreshed_at=T0, forecast=FLAT,
                      provisioning=headroom_choice(TARGETED))
    before = workloads.answer(TARGETED, T0 + 10)
    workloads.publish(TARGETED.key, forecast_error=ForecastError(50, 0.1, 0.2))  # the live guard reads it
    assert workloads.answer(TARGETED, T0 + 20) is not before


def test_the_insights_answer_of_the_current_snapshot_is_the_one_get_metrics_serves():
    workloads = Workloads(MemoryStore(), LIMIT)
    workloads.add(FIXED)
    current = workloads.publish(FIXED.key, observed=40.0, data_end=T0, refreshed_at=T0, forecast=FLAT)
    earlier = replace(current, observed=60.0)  # not the current snapshot: answered, not remembered
    assert workloads.answer_of(earlier, T0 + 10).value == 60.0
    served = workloads.answer_of(current, T0 + 10)
    assert served.value == 50.0 and workloads.answer(FIXED, T0 + 20) is served
