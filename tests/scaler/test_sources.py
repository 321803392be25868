"""The `sources:` settings and how the scaler builds its metric sources from them."""

import pytest

from helios.adapters import SOURCES
from helios.adapters.prometheus import PrometheusSource
from helios.adapters.query import QueryAdapter
from helios.scaler.config.settings import ConfigError, load_settings
from helios.scaler.config.source_settings import SourceSection, SourcesSettings
from helios.scaler.config.sources import build_sources

CONFIGURABLE = {name for name, cls in SOURCES.items() if hasattr(cls, "Settings")}


def test_prometheus_is_built_with_its_connection_settings_and_the_grid_step(tmp_path):
    config = tmp_path / "helios.yaml"
    config.write_text(
        "metrics: {step: 1m, fetch_timeout: 7s}\n"
        "sources:\n"
        "  prometheus:\n"
        "    url: https://prometheus.monitoring:9090/\n"
        "    username: helios\n"
        "    ca_file: /etc/helios/ca.pem\n"
        "    attempts: 4\n"
        "    queries: {cpu_utilization: 'sum(rate(my_cpu[5m]))'}\n"
    )
    settings = load_settings(config, sources={"prometheus": {"password": "from-the-command-line"}})
    source = build_sources(settings)["prometheus"]
    assert isinstance(source, PrometheusSource)
    assert source.url == "https://prometheus.monitoring:9090"
    assert source._auth == ("helios", "from-the-command-line") and source._verify == "/etc/helios/ca.pem"
    assert source.step == 60 and source.retry.attempts == 4 and source.retry.deadline == 7
    assert source.queries["cpu_utilization"].query == "sum(rate(my_cpu[5m]))"
    assert "kube_pod_container_status_restarts_total" in source.queries["restart_count"].query  # the rest kept


def test_secrets_come_from_the_environment_and_are_not_printed(monkeypatch):
    monkeypatch.setenv("HELIOS_SOURCES__PROMETHEUS__BEARER_TOKEN", "t0ken")
    settings = load_settings()
    assert "t0ken" not in repr(settings)
    assert build_sources(settings)["prometheus"]._headers() == {"Authorization": "Bearer t0ken"}


def test_every_problem_in_the_section_is_reported_at_once():
    with pytest.raises(ConfigError) as e:
        load_settings(sources={"prometheus": {"url": "prometheus:9090", "queries": {"cpu": "up"}, "attempts": 0,
                                              "bearer_token": "x", "username": "u", "colour": "red"}})
    problems = "\n".join(e.value.problems)
    assert "sources.prometheus.url: must be an http:// or https:// URL" in problems
    assert "sources.prometheus.queries: unknown metric 'cpu'; allowed: cpu_utilization" in problems
    assert "sources.prometheus.attempts" in problems and "sources.prometheus.colour: unknown key" in problems


def test_auth_kinds_are_exclusive():
    with pytest.raises(ConfigError, match="either bearer_token"):
        load_settings(sources={"prometheus": {"bearer_token": "x", "username": "u"}})


def test_sources_without_a_section_are_built_as_before():
    sources = build_sources(load_settings())
    assert {"demo", "file", "prometheus"} <= set(sources)


def test_the_sources_section_is_the_registry_one_subsection_per_source_with_settings():
    assert {"prometheus", "gcp", "cloudwatch", "azure"} <= CONFIGURABLE
    assert set(SourcesSettings.model_fields) == CONFIGURABLE
    for name in CONFIGURABLE:
        section = SourcesSettings.model_fields[name].annotation
        # the shared keys, and exactly the source's own beside them
        assert set(section.model_fields) == set(SourceSection.model_fields) | set(SOURCES[name].Settings.model_fields)
    for name in SOURCES.keys() - CONFIGURABLE:
        with pytest.raises(ConfigError, match=f"sources.{name}: unknown key"):
            load_settings(sources={name: {}})


def test_every_registered_source_is_built_under_its_trigger_name_with_its_sections_keys():
    shared = {"timeout": "2s", "attempts": 4, "backoff_max": "3s", "max_gap_steps": 1}
    settings = load_settings(metrics={"step": "1m", "fetch_timeout": "9s"},
                             sources={name: shared for name in CONFIGURABLE})
    sources = build_sources(settings)
    assert set(sources) == set(SOURCES)
    for name, source in sources.items():
        assert type(source) is SOURCES[name] and source.name == name
        if name in CONFIGURABLE and isinstance(source, QueryAdapter):  # a local file: no retries, no grid
            assert (source.retry.timeout, source.retry.attempts, source.retry.backoff_max) == (2, 4, 3), name
            assert (source.retry.deadline, source.step, source.max_gap_steps) == (9, 60, 1), name
