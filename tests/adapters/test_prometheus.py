"""source: prometheus against a real Prometheus server behind TLS (a CA made here) and basic auth.

The shared contract runs through that server, so every contract assertion also proves that basic
auth and the custom CA work; the error tests then take one thing away at a time.
"""

from __future__ import annotations

import base64
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import bcrypt
import pytest
import requests
import trustme
import yaml

from helios.adapters.prometheus import PrometheusParams, PrometheusSource, promql_string
from helios.adapters.retry import RetryPolicy
from helios.engine.errors import BadQuery, SourceUnauthorized, SourceUnavailable

from ..prometheus_server import PrometheusServer
from .contract import (
    LOAD,
    NAN,
    STEP,
    AdapterContract,
    ContractTarget,
    assert_values,
    canonical_samples,
    last_second,
    recent_origin,
)

USER, PASSWORD = "helios", "s3cret-for-tests"
FAST = RetryPolicy(timeout=5, attempts=2, backoff_initial=0.01, backoff_max=0.02)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1, made for this run (nothing is committed)."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(folder / "server.pem")
    cert.private_key_pem.write_to_path(folder / "server.key")
    return folder


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, tls):
    folder = tmp_path_factory.mktemp("prometheus")
    web = folder / "web.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()  # cheap rounds: a test
    web.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(tls / "server.pem"), "key_file": str(tls / "server.key")},
        "basic_auth_users": {USER: hashed},
    }))
    origin = recent_origin()
    server = PrometheusServer(folder, canonical_samples(origin), web_config=web, scheme="https",
                              auth=(USER, PASSWORD), verify=str(tls / "ca.pem"))
    server.origin = origin
    with server:
        yield server


def source(prometheus, tls, **kwargs) -> PrometheusSource:
    settings = {"username": USER, "password": PASSWORD, "ca_file": str(tls / "ca.pem"), "retry": FAST, **kwargs}
    return PrometheusSource(prometheus.url, **settings)


@pytest.fixture(scope="module")
def contract(prometheus, tls):
    return ContractTarget(source(prometheus, tls), prometheus.origin, lambda m: PrometheusParams(query=m),
                          lambda m: m)


class TestPrometheusContract(AdapterContract):
    pass


def window(prometheus):
    return prometheus.origin, last_second(prometheus.origin), STEP


def test_a_promql_expression_is_evaluated_by_the_server(prometheus, tls):
    s = source(prometheus, tls).fetch(PrometheusParams(query=f"2 * {LOAD} + 1"), *window(prometheus))
    assert_values(s.values[:2], [5, 25])  # 2 * 2 + 1, 2 * 12 + 1


def test_a_wrong_password_is_unauthorised_and_not_retried(prometheus, tls):
    with pytest.raises(SourceUnauthorized, match="HTTP 401"):
        source(prometheus, tls, password="wrong").fetch(PrometheusParams(query=LOAD), *window(prometheus))


def test_an_unknown_ca_is_refused_and_names_the_setting(prometheus, tls):
    with pytest.raises(SourceUnauthorized, match="ca_file"):
        source(prometheus, tls, ca_file=None).fetch(PrometheusParams(query=LOAD), *window(prometheus))


def test_a_syntax_error_is_a_bad_query_with_prometheus_reason(prometheus, tls):
    with pytest.raises(BadQuery, match="parse error"):
        source(prometheus, tls).fetch(PrometheusParams(query="sum(rate(x[5m])"), *window(prometheus))


def test_a_refused_connection_is_an_outage_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(SourceUnavailable, match="cannot connect"):
            PrometheusSource(f"http://127.0.0.1:{port}", retry=FAST).fetch(PrometheusParams(query="up"), 0, 600, 300)


def test_a_server_that_never_answers_times_out_as_an_outage():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts the connection in the kernel, never answers
        port = s.getsockname()[1]
        policy = RetryPolicy(timeout=0.3, attempts=1)
        with pytest.raises(SourceUnavailable, match="no answer within 0.3s"):
            PrometheusSource(f"http://127.0.0.1:{port}", retry=policy).fetch(PrometheusParams(query="up"), 0, 600, 300)


def test_a_long_window_uses_a_coarser_resolution_instead_of_hitting_the_point_limit(prometheus, tls):
    adapter = source(prometheus, tls, resolution=60)
    t0, end, step = window(prometheus)
    assert adapter._resolution(t0, end, step) == 60
    assert adapter._resolution(t0 - 30 * 86400, end, step) == 300  # 236 s needed: the next divisor of 300
    # At 60 s this window is 43,000 points, which Prometheus refuses; at 300 s each step is read once,
    # at its start: 10k in step k (the gaps are handled as ever).
    s = adapter.fetch(PrometheusParams(query=LOAD), t0 - 30 * 86400, end, step)
    assert_values(s.values, [0, 10, 20, 30, 40, 50, 60, NAN, NAN, NAN, NAN, 110])


@pytest.fixture
def recorder():
    """A loopback HTTP server that answers every request with an empty Prometheus matrix and records the
    request line's target and its Authorization header."""
    seen: list[tuple[str, str | None]] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server hook's name)
            seen.append((self.path, self.headers.get("Authorization")))
            body = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = seen
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_credentials_go_only_to_the_configured_server(prometheus, tls, recorder):
    adapter = source(prometheus, tls)
    with pytest.raises(Exception, match="no samples"):
        adapter.fetch(PrometheusParams(query=LOAD, server_address=f"http://127.0.0.1:{recorder.server_port}"),
                      *window(prometheus))
    token_adapter = PrometheusSource(f"http://127.0.0.1:{recorder.server_port}", bearer_token="t0ken", retry=FAST)
    with pytest.raises(Exception, match="no samples"):
        token_adapter.fetch(PrometheusParams(query=LOAD), *window(prometheus))
    assert [auth for _, auth in recorder.seen] == [None, "Bearer t0ken"]


def test_a_proxy_named_by_the_environment_carries_the_queries(monkeypatch, prometheus, recorder):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "all_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{recorder.server_port}")
    # A name that resolves nowhere: only the proxy (the recorder, on loopback) is ever connected to.
    adapter = PrometheusSource("http://prometheus.helios-test.invalid:9090", retry=FAST)
    for _ in range(2):  # the environment is read once per server, and holds for every query after
        with pytest.raises(Exception, match="no samples"):
            adapter.fetch(PrometheusParams(query=LOAD), *window(prometheus))
    assert [target.split("?")[0] for target, _ in recorder.seen] == \
        ["http://prometheus.helios-test.invalid:9090/api/v1/query_range"] * 2


def test_credentials_in_netrc_are_sent_when_none_are_configured(monkeypatch, tmp_path, prometheus, recorder):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    adapter = PrometheusSource(f"http://127.0.0.1:{recorder.server_port}", retry=FAST)
    with pytest.raises(Exception, match="no samples"):
        adapter.fetch(PrometheusParams(query=LOAD), *window(prometheus))
    configured = PrometheusSource(f"http://127.0.0.1:{recorder.server_port}", username="bob", password="pw",
                                  retry=FAST)
    with pytest.raises(Exception, match="no samples"):
        configured.fetch(PrometheusParams(query=LOAD), *window(prometheus))
    assert [auth for _, auth in recorder.seen] == [f"Basic {base64.b64encode(pair).decode()}"
                                                   for pair in (b"alice:from-netrc", b"bob:pw")]


def test_a_bearer_token_file_is_read_at_each_query(tmp_path, prometheus, tls):
    token = tmp_path / "token"
    token.write_text("first\n")
    adapter = PrometheusSource(prometheus.url, bearer_token_file=str(token), retry=FAST)
    assert adapter._headers() == {"Authorization": "Bearer first"}
    token.write_text("rotated")
    assert adapter._headers() == {"Authorization": "Bearer rotated"}
    token.unlink()
    with pytest.raises(SourceUnauthorized, match="bearer token file"):
        adapter._headers()


def test_standard_metric_templates_escape_names_into_valid_promql(prometheus, tls):
    adapter = source(prometheus, tls)
    query = adapter._render(adapter.queries["restart_count"].query, {"namespace": 'a"b', "workload": "web.v2"})
    assert query.expr == r'kube_pod_container_status_restarts_total{namespace="a\"b", pod=~"web\\.v2-.+"}'
    # Prometheus parses every default query once filled in (an empty answer, not a syntax error).
    for key, spec in adapter.queries.items():
        rendered = adapter._render(spec.query, {"namespace": "shop", "workload": "web", "instance": "pg-main"})
        answer = requests.get(f"{prometheus.url}/api/v1/query", params={"query": rendered.expr},
                              auth=(USER, PASSWORD), verify=str(tls / "ca.pem"), timeout=5)
        assert answer.status_code == 200, (key, answer.text)


def test_promql_string_escapes_quotes_and_backslashes():
    assert promql_string('a\\b"c') == 'a\\\\b\\"c'
