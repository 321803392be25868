import pytest

from helios.adapters import SOURCES
from helios.engine.models import MODELS
from helios.scaler.config.metadata import METRIC_NAME, InvalidMetadata, MetadataParser
from helios.scaler.config.settings import load_settings


@pytest.fixture
def parse():
    return MetadataParser({name: cls() for name, cls in SOURCES.items()}, load_settings().models, MODELS)


def test_minimal_demo_trigger_gets_the_defaults(parse):
    t = parse("shop", "web", {"source": "demo", "targetValue": "100", "scalerAddress": "helios:6000"})
    assert (t.target_value, t.activation_value, t.horizon, t.lead_time) == (100, 0, 1800, 300)
    assert (t.model, t.quantile, t.mode) == ("ets", 0.7, "act")
    assert METRIC_NAME.match(t.metric_name) and t.metric_name.startswith("helios-demo-")


def test_every_key_is_read(parse):
    t = parse("shop", "web", {
        "source": "file", "path": "/data/web.csv", "replay": "true", "targetValue": "12.5",
        "activationValue": "3", "horizon": "1h", "leadTime": "10m", "model": "baseline",
        "quantile": "0.95", "mode": "observe", "metricName": "web-rps", "enableTLS": "false", "unsafeSsl": "true",
    })
    assert t.source_params.path == "/data/web.csv" and t.source_params.replay is True
    assert (t.target_value, t.activation_value, t.horizon, t.lead_time) == (12.5, 3, 3600, 600)
    assert (t.quantile, t.mode, t.metric_name) == (0.95, "observe", "web-rps")
    assert t.key == ("shop", "web", "web-rps")


def test_metric_name_is_stable_and_depends_only_on_the_signal(parse):
    a = parse("shop", "web", {"source": "file", "path": "/a.csv", "targetValue": "1"})
    b = parse("other", "api", {"source": "file", "path": "/a.csv", "targetValue": "9", "quantile": "0.6"})
    c = parse("shop", "web", {"source": "file", "path": "/b.csv", "targetValue": "1"})
    assert a.metric_name == b.metric_name != c.metric_name


BAD = [  # metadata, the fragments the one error message must contain
    ({"targetValue": "1"}, ["source: required, one of azure, cloudwatch, demo, file, gcp, prometheus"]),
    ({"source": "kafka", "targetValue": "1"},
     ["source='kafka': unknown source; allowed: azure, cloudwatch, demo, file, gcp, prometheus"]),
    ({"source": "demo"}, ["targetValue: required"]),
    ({"source": "demo", "targetValue": "-1"}, ["targetValue='-1'", "greater than 0"]),
    ({"source": "demo", "targetValue": "0"}, ["targetValue='0'"]),
    ({"source": "demo", "targetValue": "many"}, ["targetValue='many'", "valid number"]),
    ({"source": "demo", "targetValue": "NaN"}, ["targetValue='NaN'"]),
    ({"source": "demo", "targetValue": "1", "activationValue": "-2"}, ["activationValue='-2'"]),
    ({"source": "demo", "targetValue": "1", "horizon": "soon"}, ["horizon='soon'", "e.g. '30s', '5m'"]),
    ({"source": "demo", "targetValue": "1", "horizon": "30d"}, ["horizon='30d'"]),
    ({"source": "demo", "targetValue": "1", "leadTime": "1h"}, ["leadTime='1h': must not exceed horizon (30m)"]),
    ({"source": "demo", "targetValue": "1", "model": "arima"},
     ["model='arima': unknown model; allowed: auto, baseline, ets, mstl, naive, prophet, seasonal_naive, ses, theta"]),
    ({"source": "demo", "targetValue": "1", "quantile": "0.3"}, ["quantile='0.3'", "greater than or equal to 0.5"]),
    ({"source": "demo", "targetValue": "1", "mode": "auto"}, ["mode='auto'", "'act' or 'observe'"]),
    ({"source": "demo", "targetValue": "1", "metricName": "Web/RPS"}, ["metricName='Web/RPS'"]),
    ({"source": "demo", "targetValue": "1", "targetvalue": "2"}, ["targetvalue='2': unknown key; allowed keys:"]),
    ({"source": "demo", "targetValue": "1", "path": "/x.csv"}, ["path='/x.csv': unknown key"]),
    ({"source": "file", "targetValue": "1"}, ["path: required"]),
    ({"source": "file", "path": "/x", "replay": "sometimes", "targetValue": "1"}, ["replay='sometimes'"]),
]


@pytest.mark.parametrize("metadata, fragments", BAD)
def test_bad_metadata_names_the_key_its_value_and_what_is_allowed(parse, metadata, fragments):
    with pytest.raises(InvalidMetadata) as e:
        parse("shop", "web", metadata)
    for fragment in fragments:
        assert fragment in str(e.value)


def test_all_problems_are_reported_together(parse):
    with pytest.raises(InvalidMetadata) as e:
        parse("shop", "web", {"source": "demo", "targetValue": "-1", "quantile": "2", "mode": "x",
                              "horizon": "10m", "leadTime": "1h", "bogus": "1"})
    keys = sorted(p.split("=")[0] for p in e.value.problems)
    assert keys == ["bogus", "leadTime", "mode", "quantile", "targetValue"]


def test_the_context_keys_name_whose_pods_are_read_and_default_to_the_scaledobject(parse):
    t = parse("shop", "web", {"source": "prometheus", "query": "up", "targetValue": "1"})
    assert (t.context.namespace, t.context.workload, t.context.database, t.context.cache) == ("shop", "web", None, None)
    named = parse("shop", "web", {"source": "prometheus", "query": "up", "targetValue": "1", "workload": "web-v2",
                                  "namespace": "shop-prod", "database": "orders-db", "cache": "sessions"})
    assert (named.context.namespace, named.context.workload) == ("shop-prod", "web-v2")
    assert (named.context.database, named.context.cache) == ("orders-db", "sessions")
    assert named.metric_name == t.metric_name  # context keys do not rename the HPA's metric
    assert parse("shop", "web", {"source": "demo", "targetValue": "1", "context": "off"}).context is None
    # CloudWatch's own `namespace` is its metric namespace: the pods are the ScaledObject's namespace's.
    cw = parse("shop", "web", {"source": "cloudwatch", "namespace": "AWS/ApplicationELB", "metric": "RequestCount",
                               "targetValue": "1"})
    assert cw.source_params.namespace == "AWS/ApplicationELB" and cw.context.namespace == "shop"


@pytest.mark.parametrize(("metadata", "fragment"), [
    ({"workload": "Web_App"}, "workload='Web_App'"),
    ({"namespace": "-shop"}, "namespace='-shop'"),
    ({"database": ""}, "database=''"),
    ({"context": "maybe"}, "context='maybe'"),
])
def test_bad_context_keys_are_named(parse, metadata, fragment):
    with pytest.raises(InvalidMetadata) as e:
        parse("shop", "web", {"source": "demo", "targetValue": "1", **metadata})
    assert fragment in str(e.value)


def test_a_key_from_env_is_the_key_keda_already_resolved(parse):
    plain = parse("shop", "web", {"source": "prometheus", "query": "up", "targetValue": "50"})
    resolved = parse("shop", "web", {"sourceFromEnv": "prometheus", "queryFromEnv": "up", "targetValueFromEnv": "50"})
    assert (resolved.source, resolved.source_params.query, resolved.target_value) == ("prometheus", "up", 50)
    assert resolved.metric_name == plain.metric_name and resolved.key == plain.key  # the HPA's metric stays put
    assert parse("shop", "web", {"source": "demo", "targetValue": "1", "scalerAddressFromEnv": "helios:6000"})


@pytest.mark.parametrize(("metadata", "problem"), [
    ({"source": "demo", "targetValue": "5", "targetValueFromEnv": "6"},
     "targetValue='5' and targetValueFromEnv='6': the same key twice; give one of them"),
    ({"source": "demo", "targetValueFromEnv": "-5"}, "targetValueFromEnv='-5': Input should be greater than 0"),
    ({"source": "demo", "targetValue": "1", "modelFromEnv": "nope"}, "modelFromEnv='nope': unknown model"),
    ({"source": "demo", "targetValue": "1", "colourFromEnv": "red"}, "colourFromEnv='red': unknown key"),
])
def test_errors_name_the_key_as_it_was_written(parse, metadata, problem):
    with pytest.raises(InvalidMetadata) as e:
        parse("shop", "web", metadata)
    assert any(p.startswith(problem) for p in e.value.problems), e.value.problems
