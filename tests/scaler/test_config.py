import pytest

from helios.scaler.cli import main
from helios.scaler.config.durations import format_duration, parse_duration
from helios.scaler.config.settings import ConfigError, load_settings


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800),
                                            ("250ms", 0.25), ("90", 90), (45, 45)])
def test_durations_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "m5", "5 m", "1h-30m", True])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_durations_format_shortest():
    assert [format_duration(s) for s in (5400, 300, 30, 0)] == ["1h30m", "5m", "30s", "0s"]


def test_defaults_are_the_documented_ones():
    s = load_settings()
    assert (s.server.grpc_port, s.server.metrics_port) == (6000, 8080)
    assert s.models.default == "ets" and s.models.params_for("baseline") == {
        "window": 12, "trend_window": 24, "calibration_window": 2016}
    assert (s.metrics.step, s.models.horizon, s.models.lead_time) == (300, 1800, 300)


def test_file_then_environment_then_flags(tmp_path, monkeypatch):
    cfg = tmp_path / "helios.yaml"
    cfg.write_text("server:\n  grpc_port: 7000\n  metrics_port: 7001\nmodels:\n  quantile: 0.8\n  horizon: 1h\n")
    monkeypatch.setenv("HELIOS_MODELS__QUANTILE", "0.95")
    monkeypatch.setenv("HELIOS_SERVER__METRICS_PORT", "7002")
    s = load_settings(cfg, server={"grpc_port": 7100})
    assert s.server.grpc_port == 7100  # flag beats file
    assert s.server.metrics_port == 7002  # environment beats file
    assert s.models.quantile == 0.95 and s.models.horizon == 3600


def test_every_problem_is_listed_at_once(tmp_path):
    cfg = tmp_path / "helios.yaml"
    cfg.write_text(
        "server:\n  grpc_port: 70000\nmetrics:\n  step: soon\n  colour: blue\n"
        "models:\n  default: arima\n  quantile: 1.5\n  lead_time: 2h\n"
    )
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    text = str(e.value)
    for expected in ("server.grpc_port", "metrics.step", "metrics.colour: unknown key",
                     "models.default: unknown model 'arima'", "models.quantile"):
        assert expected in text
    assert len(e.value.problems) == 5


def test_cross_field_rules(tmp_path):
    with pytest.raises(ConfigError, match="lead_time .* must not exceed horizon"):
        load_settings(models={"lead_time": "2h", "horizon": "1h"})
    with pytest.raises(ConfigError, match="history .* must cover at least 2 steps"):
        load_settings(metrics={"history": "5m", "step": "5m"})


@pytest.mark.parametrize("content, message", [(None, "No such file"), ("- a\n- b\n", "must be a mapping"),
                                              ("server: [\n", "not valid YAML")])
def test_unreadable_config_files_are_reported(tmp_path, content, message):
    cfg = tmp_path / "helios.yaml"
    if content is not None:
        cfg.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg)


def test_serve_exits_2_with_every_problem_before_starting(tmp_path, capsys):
    cfg = tmp_path / "helios.yaml"
    cfg.write_text("models:\n  quantile: 2\n  workers: 0\n")
    assert main(["serve", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "models.quantile" in err and "models.workers" in err and "Traceback" not in err


def test_scaling_section_takes_the_engines_defaults_and_rules():
    from helios.engine.recommend import ScalingPolicy

    assert load_settings().scaling.policy() == ScalingPolicy()
    with pytest.raises(ConfigError) as e:
        load_settings(scaling={"min_replicas": 5, "max_replicas": 2, "cooldown_seconds": "2m"})
    assert e.value.problems == ["scaling: max_replicas must be >= 1 and >= min_replicas=5, got 2"]
    assert load_settings(scaling={"cooldown_seconds": "2m"}).scaling.policy().cooldown_seconds == 120


def test_model_and_provisioning_sections_take_the_engines_defaults():
    from helios.engine.models import MODELS
    from helios.engine.replay.loop import Cluster
    from helios.engine.replay.provision import SLO

    settings = load_settings()
    for name in ("baseline", "auto"):  # each key of the model's section defaults to the model's own default
        section, own = getattr(settings.models, name), MODELS[name]().params
        assert section.model_dump() == {k: own[k] for k in type(section).model_fields}, name
    p, slo, cluster = settings.provisioning, SLO(), Cluster()
    assert (p.target_shortfall, p.cost_cap) == (slo.target_shortfall, slo.cost_cap)
    assert (p.polling_interval, p.tolerance) == (cluster.polling_interval, cluster.tolerance)
    behavior = cluster.behavior
    assert (p.scale_up_stabilization, p.scale_down_stabilization) == (
        behavior.scale_up.stabilization_window_seconds, behavior.scale_down.stabilization_window_seconds)
