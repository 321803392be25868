"""The shortfall target end to end: trigger keys, the answer each choice serves, the choice in ListWorkloads,
Explain and /metrics, reactive+N% in `helios simulate`, and bad input."""

import asyncio
import json
import math
from dataclasses import replace

import grpc
import numpy as np
import pytest

from helios.engine.demand import Provisioning
from helios.engine.models import MODELS
from helios.engine.replay.provision import SLO, Choice, Replayed
from helios.engine.tracking import ForecastError
from helios.engine.types import Forecast
from helios.scaler.cli import main
from helios.scaler.config.metadata import InvalidMetadata, MetadataParser
from helios.scaler.config.settings import ConfigError, load_settings
from helios.scaler.config.sources import SOURCES
from helios.scaler.pb import admin_pb2 as pb
from helios.scaler.runtime.state import Snapshot, answer

from ..helpers import daily_wave, fast_settings, sample_value, write_trace

T0 = 1_700_000_100


def parser(**provisioning) -> MetadataParser:
    settings = load_settings(provisioning=provisioning) if provisioning else load_settings()
    return MetadataParser({n: c() for n, c in SOURCES.items()}, settings.models, MODELS, settings.provisioning)


def trigger(**keys):
    return parser()("shop", "web", {"source": "demo", "targetValue": "10", **keys})


# --- trigger keys -----------------------------------------------------------------------------------

def test_the_shortfall_target_is_a_percentage_or_a_fraction_and_defaults_to_the_config():
    assert trigger().slo == SLO(0.02, 2.0)
    assert trigger(targetShortfall="5%").slo == SLO(0.05, 2.0)
    assert trigger(targetShortfall="0.025", costCap="1.5").slo == SLO(0.025, 1.5)
    assert parser(target_shortfall="10%")("shop", "web", {"source": "demo", "targetValue": "1"}).slo.target_shortfall \
        == pytest.approx(0.1)


def test_an_explicit_quantile_overrides_the_target_and_a_null_default_turns_targets_off():
    assert trigger(quantile="0.9").slo is None
    assert trigger(quantile="0.9", targetShortfall="1%").slo is None
    off = parser(target_shortfall=None)
    assert off("shop", "web", {"source": "demo", "targetValue": "1"}).slo is None
    assert off("shop", "web", {"source": "demo", "targetValue": "1", "targetShortfall": "3%"}).slo == SLO(0.03, 2.0)


def test_the_replay_takes_the_hpa_facts_from_keys_else_kubernetes_defaults():
    c = trigger().cluster
    assert (c.target_value, c.startup_delay, c.tolerance) == (10.0, 120, 0.1)
    assert c.behavior.scale_down.stabilization_window_seconds == 300
    assert c.behavior.scale_up.stabilization_window_seconds == 0
    c = trigger(podStartup="45s", hpaTolerance="0.05", scaleDownStabilization="1m", scaleUpStabilization="30s").cluster
    assert (c.startup_delay, c.tolerance) == (45, 0.05)
    assert c.behavior.scale_down.stabilization_window_seconds == 60
    assert c.behavior.scale_up.stabilization_window_seconds == 30


@pytest.mark.parametrize("keys, fragments", [
    ({"targetShortfall": "60%"}, ["targetShortfall='60%'", "(0, 50%]"]),
    ({"targetShortfall": "0"}, ["targetShortfall='0'", "'2%' or '0.02'"]),
    ({"targetShortfall": "two"}, ["targetShortfall='two'", "(0, 50%]"]),
    ({"costCap": "1"}, ["costCap='1'", "> 1"]),
    ({"costCap": "nan"}, ["costCap='nan'"]),
    ({"hpaTolerance": "1.5"}, ["hpaTolerance='1.5'"]),
    ({"podStartup": "soon"}, ["podStartup='soon'"]),
])
def test_bad_provisioning_keys_name_the_key_and_the_allowed_form(keys, fragments):
    with pytest.raises(InvalidMetadata) as e:
        trigger(**keys)
    assert all(f in str(e.value) for f in fragments), str(e.value)


def test_bad_provisioning_settings_are_config_errors():
    with pytest.raises(ConfigError, match="target_shortfall"):
        load_settings(provisioning={"target_shortfall": "80%"})
    with pytest.raises(ConfigError, match="cost_cap"):
        load_settings(provisioning={"cost_cap": 0.5})


# --- what each choice serves ------------------------------------------------------------------------

def choice_for(t, plan: Provisioning, slo=None) -> Choice:
    r = Replayed(plan, 0.01, 0.002, 120.0)
    h = Replayed(Provisioning("headroom", margin=0.3), 0.04, 0.01, 130.0)
    return Choice(plan, r, h, 100.0, True, 86400.0, "test", slo or t.slo, t.cluster, forecast_coverage=0.8)


def snapshot(t, **fields) -> Snapshot:
    f = Forecast("m", T0 + 300, 300, np.full(6, 50.0), np.linspace(30, 70, 17)[:, None].repeat(6, 1))
    return Snapshot(t, observed=40.0, data_end=T0, forecast=f, refreshed_at=T0, **fields)


def test_the_answer_serves_the_replayed_choice_for_this_trigger_else_the_default_quantile():
    t = trigger()
    default = answer(snapshot(t), t, T0 + 10, 600)
    assert default.basis == "forecast" and default.plan == Provisioning("forecast", 0.7)
    head = answer(snapshot(t, provisioning=choice_for(t, Provisioning("headroom", margin=0.25))), t, T0 + 10, 600)
    assert (head.basis, head.value) == ("headroom", pytest.approx(50.0))
    # A forecast plan serves its headroom (observed 40 x (1 + margin)) or the forecast, whichever is higher.
    q9 = float(snapshot(t).forecast.quantile(0.9)[0])
    high = answer(snapshot(t, provisioning=choice_for(t, Provisioning("forecast", 0.9, 0.1))), t, T0 + 10, 600)
    assert 44.0 < q9 < 70.0 and (high.basis, high.value) == ("forecast", pytest.approx(q9))
    wide = answer(snapshot(t, provisioning=choice_for(t, Provisioning("forecast", 0.9, 0.75))), t, T0 + 10, 600)
    assert (wide.basis, wide.value) == ("forecast", pytest.approx(70.0))
    assert "max(peak of the q0.9 forecast" in wide.reason and "observed 40 x 1.75)" in wide.reason
    # A choice made for another target (the trigger was edited) is not served until the next replay.
    other = choice_for(t, Provisioning("headroom", margin=0.25), slo=SLO(0.1))
    assert answer(snapshot(t, provisioning=other), t, T0 + 10, 600).plan == Provisioning("forecast", 0.7)
    # A fixed quantile ignores any choice; observe mode serves the observed value whatever the choice.
    fixed = trigger(quantile="0.5")
    snap = snapshot(fixed, provisioning=choice_for(t, Provisioning("headroom", margin=0.25)))
    assert answer(snap, fixed, T0 + 10, 600).plan == Provisioning("forecast", 0.5)
    watch = trigger(mode="observe")
    snap = snapshot(watch, provisioning=choice_for(watch, Provisioning("headroom", margin=0.25)))
    assert answer(snap, watch, T0 + 10, 600).value == 40.0


@pytest.mark.parametrize(("matured", "coverage", "basis"), [
    (100, 0.5, "headroom"),  # 0.3 below the replay's 0.8: the forecast is off what the choice assumed
    (100, 0.7, "forecast"),  # 0.1 below: within the guard's allowance
    (10, 0.2, "forecast"),  # too few settled forecasts to judge
])
def test_the_live_guard_serves_headroom_while_the_forecast_is_off_what_the_replay_saw(matured, coverage, basis):
    t = trigger()
    snap = snapshot(t, provisioning=choice_for(t, Provisioning("forecast", 0.9)),
                    forecast_error=ForecastError(matured, 0.1, coverage))
    a = answer(snap, t, T0 + 10, 600)
    assert a.basis == basis
    if basis == "headroom":
        assert a.value == pytest.approx(40.0 * 1.3)  # the replay's headroom plan, +30 %


def test_headroom_needs_no_forecast():
    t = trigger()
    snap = replace(snapshot(t, provisioning=choice_for(t, Provisioning("headroom", margin=0.5))), forecast=None)
    assert answer(snap, t, T0 + 10, 600).value == pytest.approx(60.0)


# --- served -----------------------------------------------------------------------------------------

async def wait_for_choice(app, timeout=60.0):
    for _ in range(int(timeout / 0.1)):
        snaps = app.store.all()
        if snaps and snaps[0].provisioning is not None:
            return snaps[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no provisioning choice within {timeout}s: {[s.provisioning_note for s in app.store.all()]}")


async def test_serve_replays_the_workload_and_shows_the_choice_in_list_explain_and_metrics(
        start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "web.csv", daily_wave(576))  # two days
    app = await start_app()
    client = client_for(app)
    md = {"source": "file", "path": str(path), "targetValue": "10", "targetShortfall": "5%"}
    v = await client.get_metrics(md)
    snap = await wait_for_choice(app)
    choice = snap.provisioning
    assert choice.slo == SLO(0.05, 2.0) and choice.replayed_seconds >= 43200
    # GetMetrics serves the choice, through the same answer rule.
    assert (await client.get_metrics(md)).metricValueFloat == pytest.approx(
        answer(app.store.all()[0], snap.trigger, __import__("time").time(), 7200).value, rel=1e-6)
    ref = pb.WorkloadRef(namespace="shop", name="web", metric_name=v.metricName)
    listed = (await client.admin.ListWorkloads(pb.ListWorkloadsRequest(), timeout=5)).workloads[0].provisioning
    assert (listed.plan, listed.basis) == (choice.plan.label, choice.plan.basis)
    assert listed.target_shortfall == pytest.approx(0.05) and listed.attainable == choice.attainable
    assert listed.chosen.shortfall == pytest.approx(choice.replayed.underprovisioned_fraction)
    assert listed.headroom.plan == choice.headroom.plan.label and listed.reason == choice.reason
    explained = await client.admin.Explain(pb.ExplainRequest(workload=ref), timeout=5)
    assert explained.status.provisioning.plan == choice.plan.label
    assert choice.plan.label.split()[0] in explained.served_value_reason
    text = client.scrape()
    labels = {"namespace": "shop", "scaledobject": "web"}
    assert sample_value(text, "helios_target_shortfall", **labels) == pytest.approx(0.05)
    assert sample_value(text, "helios_expected_shortfall", **labels) == pytest.approx(
        choice.replayed.underprovisioned_fraction)
    assert sample_value(text, "helios_slo_attainable", **labels) == float(choice.attainable)
    assert sample_value(text, "helios_metric_value", basis=choice.plan.basis, **labels) is not None
    # One decision: the recommendation's replica action is told from the served value, not a second rule.
    for _ in range(100):
        rec = app.store.all()[0].recommendation
        if rec is not None:
            break
        await asyncio.sleep(0.1)
    assert rec is not None and "served" in rec.reason


async def test_a_cold_start_serves_the_default_quantile_and_says_why(start_app, client_for, tmp_path):
    path = write_trace(tmp_path / "web.csv", daily_wave(100))  # 8 hours: too little to replay
    app = await start_app()
    client = client_for(app)
    md = {"source": "file", "path": str(path), "targetValue": "10"}
    await client.get_metrics(md)
    for _ in range(300):
        if app.store.all()[0].provisioning_note:
            break
        await asyncio.sleep(0.1)
    listed = (await client.admin.ListWorkloads(pb.ListWorkloadsRequest(), timeout=5)).workloads[0].provisioning
    assert listed.plan == "forecast q0.7" and "cold start" in listed.reason and "default quantile 0.7" in listed.reason
    assert app.store.all()[0].provisioning is None


async def test_an_invalid_target_is_invalid_argument_naming_the_key(start_app, client_for):
    client = client_for(await start_app(fast_settings()))
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await client.get_metrics({"source": "demo", "targetValue": "10", "targetShortfall": "75%"})
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "targetShortfall='75%'" in e.value.details() and "(0, 50%]" in e.value.details()


# --- helios simulate --------------------------------------------------------------------------------

def test_simulate_runs_reactive_with_any_headroom_spelled_as_given(tmp_path, capsys):
    path = write_trace(tmp_path / "t.csv", daily_wave(2 * 288 + 72), end=T0 + 300 * (2 * 288 + 71))
    code = main(["simulate", str(path), "--warmup", "1d", "--format", "json",
                 "--policies", "reactive,reactive+10%,reactive+2.5%,reactive+100%"])
    assert code == 0
    rows = {r["policy"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == ["reactive", "reactive+10%", "reactive+2.5%", "reactive+100%"]
    assert set(rows["reactive+10%"]) == set(rows["reactive"])  # the same fields
    cost = [rows[p]["replica_hours"] for p in ("reactive", "reactive+2.5%", "reactive+10%", "reactive+100%")]
    assert cost == sorted(cost) and cost[-1] > 1.5 * cost[0]
    assert rows["reactive+100%"]["underprovisioned_fraction"] < rows["reactive"]["underprovisioned_fraction"]


@pytest.mark.parametrize("policy", ["reactive+x%", "reactive+-5%", "reactive+10", "reactive10%"])
def test_a_malformed_headroom_policy_is_a_cli_error_naming_the_form(tmp_path, capsys, policy):
    path = write_trace(tmp_path / "t.csv", daily_wave(400))
    assert main(["simulate", str(path), "--warmup", "1d", "--policies", f"reactive,{policy}"]) == 2
    err = capsys.readouterr().err
    assert f"--policies: unknown {policy}" in err and "reactive+N% (N a number >= 0" in err


def test_simulate_takes_the_target_as_a_flag_and_refuses_a_bad_one(tmp_path, capsys):
    path = write_trace(tmp_path / "t.csv", daily_wave(400))
    assert main(["simulate", str(path), "--warmup", "1d", "--target-shortfall", "90%"]) == 2
    err = capsys.readouterr().err
    assert "--target-shortfall='90%'" in err and "(0, 50%]" in err and "Traceback" not in err


def test_the_implied_replicas_follow_the_served_plan():
    t = trigger()
    snap = snapshot(t, provisioning=choice_for(t, Provisioning("headroom", margin=1.0)))
    assert math.ceil(answer(snap, t, T0 + 10, 600).value / t.target_value) == 8
