"""Tenants cannot point Helios at what is not theirs (adapters/allow.py, and each source's `admit`):
files outside the allowed folders, servers off the allow-list or resolving to a metadata address,
PromQL that reads another namespace, sources a namespace may not use. Every refusal names the key and
what is allowed, and comes before any connection: the resolver is stubbed, and a connector that
records every connection attempt proves that nothing but loopback is ever dialled."""

from __future__ import annotations

import http.server
import os
import threading

import grpc
import pytest
import urllib3.util.connection
from hypothesis import given, settings
from hypothesis import strategies as st

from helios.adapters import SOURCES
from helios.adapters.allow import Refused, admit_server, inside_roots, require_namespace
from helios.adapters.azure import AzureMonitorSource, AzureParams
from helios.adapters.file import FileParams, FileSource
from helios.adapters.gcp import GcpMonitoringSource, GcpParams
from helios.adapters.prometheus import PrometheusParams, PrometheusSource
from helios.adapters.retry import RetryPolicy
from helios.engine.errors import BadQuery
from helios.engine.models import MODELS
from helios.scaler.config.metadata import InvalidMetadata, MetadataParser
from helios.scaler.config.settings import load_settings

from ..helpers import daily_wave, fast_settings, write_trace

CONFIGURED = "http://127.0.0.1:9"
ALLOWED = ["https://prom.team-a.example:9090", "*.monitoring.svc"]
DNS = {  # the stub resolver: what each name resolves to
    "prom.team-a.example": ["10.0.0.5"],
    "prom.monitoring.svc": ["10.0.0.6"],
    "evil.monitoring.svc": ["169.254.169.254"],  # e.g. an ExternalName Service pointing at a metadata server
    "sixes.monitoring.svc": ["10.0.0.7", "fe80::1"],
    "aws6.monitoring.svc": ["fd00:ec2::254"],
}


def stub_resolve(host: str) -> list[str]:
    if host in DNS:
        return DNS[host]
    try:
        import ipaddress

        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        raise Refused("server_address", f"host {host!r} does not resolve") from None


@pytest.fixture
def dialled(monkeypatch):
    """Every (host, port) urllib3 tries to connect to; any address beyond loopback is refused here, so a
    test that would reach one fails instead of sending traffic."""
    seen: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def recording(address, *args, **kwargs):
        seen.append(address)
        if address[0] not in ("127.0.0.1", "localhost", "::1"):
            raise OSError(f"test connector: {address[0]} is not loopback")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", recording)
    return seen


def prometheus(allowed=ALLOWED, label=None) -> PrometheusSource:
    return PrometheusSource(CONFIGURED, allowed_servers=allowed, namespace_label=label, resolve=stub_resolve,
                            retry=RetryPolicy(attempts=1))


def parser(**sources) -> MetadataParser:
    return MetadataParser(sources, load_settings().models, MODELS)


# --- files ------------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "traces"
    (root / "team").mkdir(parents=True)
    good = write_trace(root / "team" / "web.csv", daily_wave(20))
    outside = write_trace(tmp_path / "secret.csv", daily_wave(20))
    (root / "escape").symlink_to(outside)  # a symlink inside the root to a file outside it
    (root / "inner").symlink_to(good)
    return root, good, outside


def test_paths_must_resolve_inside_the_roots(tree, monkeypatch):
    root, good, outside = tree
    roots = [str(root)]
    assert inside_roots(str(good), roots) == good
    assert inside_roots(str(root / "inner"), roots) == good  # a symlink that stays inside
    assert inside_roots(str(root / "team" / ".." / "team" / "web.csv"), roots) == good
    monkeypatch.chdir(root)
    assert inside_roots("team/web.csv", roots) == good  # relative: from the working folder, still inside
    for path in (str(outside), str(root / "escape"), str(root / "team" / ".." / ".." / "secret.csv"),
                 "/etc/passwd", "/proc/self/environ", "../../../etc/shadow", str(root) + "-other/x.csv"):
        with pytest.raises(Refused, match="outside the folders files may be read from") as e:
            inside_roots(path, roots)
        assert e.value.key == "path" and str(root) in e.value.reason
    with pytest.raises(Refused, match="sources.file.roots lists no folders"):
        inside_roots(str(good), [])
    assert inside_roots("/etc/passwd", None) == __import__("pathlib").Path("/etc/passwd")  # the CLI tools


def test_a_refused_path_is_invalid_argument_naming_the_key_and_the_roots(tree):
    root, good, _ = tree
    parse = parser(file=FileSource(roots=[str(root)]))
    admitted = parse("shop", "web", {"source": "file", "path": str(good), "targetValue": "1"})
    assert admitted.source_params.path == str(good)
    with pytest.raises(InvalidMetadata) as e:
        parse("shop", "web", {"source": "file", "path": "/proc/self/environ", "targetValue": "1"})
    assert e.value.problems == [f"path='/proc/self/environ': outside the folders files may be read from "
                                f"(sources.file.roots: {root})"]


def test_a_symlink_swapped_in_after_admission_is_not_read(tree):
    root, good, outside = tree
    source = FileSource(roots=[str(root)])
    params = FileParams(path=str(root / "team" / "web.csv"))
    source.admit(params, "shop")
    good.unlink()
    good.symlink_to(outside)  # after the trigger was admitted
    with pytest.raises(BadQuery, match="outside the folders"):
        source.fetch(params, 0, 2**31, 300)


# --- servers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "fragment"), [
    ("http://169.254.169.254", "not an allowed server"),
    ("http://metadata.google.internal/computeMetadata/v1", "not an allowed server"),
    ("http://evil.monitoring.svc:9090", "resolves to 169.254.169.254"),
    ("http://sixes.monitoring.svc", "resolves to fe80::1"),
    ("http://aws6.monitoring.svc", "resolves to fd00:ec2::254"),
    ("http://prom.monitoring.svc@169.254.169.254/", "user info"),
    ("https://user:secret@prom.team-a.example:9090", "user info"),
    ("https://prom.team-a.example:9091", "not an allowed server"),  # another port than the listed URL
    ("https://prom.team-a.example.evil.com:9090", "not an allowed server"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://prom.monitoring.svc", "http:// or https://"),
    ("http://[::1", "not a URL"),
])
def test_server_addresses_off_the_list_or_resolving_to_metadata_are_refused(url, fragment, dialled):
    with pytest.raises(Refused, match=fragment.replace(".", r"\.").replace("/", "/")) as e:
        prometheus().admit(PrometheusParams(query="up", server_address=url), "shop")
    assert e.value.key == "server_address"
    assert dialled == []


@pytest.mark.parametrize("url", [
    "http://[::ffff:169.254.169.254]:9090", "http://[fe80::1%25eth0]:9090", "http://0.0.0.0:9090", "http://[::]:9090",
    "http://224.0.0.1",
])
def test_address_literals_of_metadata_unspecified_and_multicast_are_refused_even_unrestricted(url):
    with pytest.raises(Refused, match="link-local, unspecified or multicast"):
        admit_server(url, CONFIGURED, None, stub_resolve)


def test_listed_servers_and_the_configured_one_are_admitted():
    source = prometheus()
    for url in (CONFIGURED, CONFIGURED + "/", "https://prom.team-a.example:9090", "https://prom.team-a.example:9090/x",
                "http://prom.monitoring.svc:9090"):
        source.admit(PrometheusParams(query="up", server_address=url), "shop")
    with pytest.raises(Refused, match="none besides it"):
        prometheus(allowed=[]).admit(PrometheusParams(query="up", server_address="http://prom.monitoring.svc"), "x")


class Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the standard library's name
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_redirect_is_not_followed(dialled):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        source = PrometheusSource(url, allowed_servers=[], resolve=stub_resolve, retry=RetryPolicy(attempts=1))
        with pytest.raises(BadQuery, match="answered with a redirect; Helios follows none"):
            source.fetch(PrometheusParams(query="up"), 0, 600, 300)
    finally:
        server.shutdown()
    assert [host for host, _ in dialled] == ["127.0.0.1"]  # the metadata address was never dialled


# --- PromQL namespaces --------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    'sum(rate(http_requests_total{namespace="shop"}[5m]))',
    'max_over_time(up{namespace="shop", job="web"}[30m:1m]) > bool 0',
    'vector(1)',  # reads no series at all
    'up{namespace="shop"} or on() absent(up{namespace="shop"})',
])
def test_queries_that_select_only_their_namespace_are_admitted(query):
    require_namespace(query, "namespace", "shop")


@pytest.mark.parametrize("query", [
    'up',
    'up{namespace="shop"} or up{namespace="bank"}',
    'up{namespace="shop"} unless on() up',
    'max_over_time(up[5m:1m])',
    'up{namespace=~"shop|bank"}',
    'up{namespace!="bank"}',
    'up{namespace="shop" or job="web"}',
    'label_replace(up{namespace="bank"}, "namespace", "shop", "", "")',
    'sum by (namespace) (rate({__name__=~".+"}[5m]))',
    'up{namespace="shop"} + on() group_left count(up{namespace="bank"} offset 1h)',
])
def test_queries_that_reach_other_namespaces_are_refused(query):
    with pytest.raises(Refused, match='every selector must match namespace="shop"') as e:
        require_namespace(query, "namespace", "shop")
    assert e.value.key == "query"


def test_a_query_that_does_not_parse_is_refused_naming_the_key():
    parse = parser(prometheus=prometheus(label="namespace"))
    with pytest.raises(InvalidMetadata, match=r"query='sum\(up': not valid PromQL"):
        parse("shop", "web", {"source": "prometheus", "query": "sum(up", "targetValue": "1"})


# --- sources by namespace, projects, subscriptions ------------------------------------------------------


def test_namespaces_use_only_the_sources_the_policy_gives_them():
    sources = {name: cls() for name, cls in SOURCES.items()}
    parse = MetadataParser(sources, load_settings().models, MODELS,
                           namespace_sources={"team-*": ["prometheus"], "sandbox": ["demo"]})
    assert parse("sandbox", "web", {"source": "demo", "targetValue": "1"}).source == "demo"
    with pytest.raises(InvalidMetadata, match=r"source='demo': namespace 'team-a' may use prometheus \(security"):
        parse("team-a", "web", {"source": "demo", "targetValue": "1"})
    with pytest.raises(InvalidMetadata, match="namespace 'other' may use no source"):
        parse("other", "web", {"source": "demo", "targetValue": "1"})


def test_cloud_projects_and_subscriptions_beyond_the_configured_ones_are_refused():
    gcp = GcpMonitoringSource(project="mine", allowed_projects=["shared"])
    gcp.admit(GcpParams(filter="x", project="shared"), "shop")
    with pytest.raises(Refused, match="'theirs' is not allowed: sources.gcp.allowed_projects"):
        gcp.admit(GcpParams(filter="x", project="theirs"), "shop")
    azure = AzureMonitorSource(subscription_id="AAAA-1", allowed_subscriptions=[])
    azure.admit(AzureParams(resource_uri="/subscriptions/aaaa-1/resourceGroups/rg/providers/x/y", metric="m"), "s")
    azure.admit(AzureParams(resource_uri="my-cluster", metric="m"), "s")  # a name: the configured subscription
    with pytest.raises(Refused, match="'bbbb-2' is not allowed"):
        azure.admit(AzureParams(resource_uri="/subscriptions/BBBB-2/resourceGroups/rg/providers/x/y", metric="m"), "s")


# --- through the server, and fuzzed ---------------------------------------------------------------------


async def test_refusals_reach_keda_as_invalid_argument_and_register_nothing(start_app, client_for, dialled):
    app = await start_app(fast_settings(sources={"prometheus": {"url": CONFIGURED}}))
    client = client_for(app)
    for metadata, fragment in (
        ({"source": "file", "path": "/etc/passwd"}, "path='/etc/passwd': outside the folders"),
        ({"source": "prometheus", "query": "up", "serverAddress": "http://169.254.169.254"},
         "serverAddress='http://169.254.169.254': not an allowed server"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await client.get_metrics({**metadata, "targetValue": "1"}, metric_name="m")
        assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT and fragment in e.value.details()
    assert app.store.all() == [] and dialled == []


SEGMENTS = st.sampled_from(["..", ".", "team", "web.csv", "escape", "inner", "etc", "passwd", "proc", "self", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=6), st.booleans())
def test_fuzzed_paths_are_admitted_only_inside_the_roots(tmp_path_factory, parts, absolute):
    base = tmp_path_factory.getbasetemp() / "fuzzroot"
    root = base / "traces"
    if not root.exists():
        (root / "team").mkdir(parents=True)
        write_trace(root / "team" / "web.csv", daily_wave(5))
        (root / "escape").symlink_to("/etc")
        (root / "inner").symlink_to(root / "team")
    path = ("/" if absolute else str(root) + "/") + "/".join(parts)
    try:
        resolved = inside_roots(path, [str(root)])
    except Refused:
        return
    assert os.path.realpath(path) == str(resolved) and resolved.is_relative_to(os.path.realpath(root))


HOSTS = st.sampled_from([*DNS, "127.0.0.1", "169.254.169.254", "[::ffff:169.254.169.254]", "[fe80::1]",
                         "prom.team-a.example", "prom.team-a.example.evil.com", "0.0.0.0", "[::1]"])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["http", "https", "ftp"]), st.sampled_from(["", "u@", "u:p@", "prom.monitoring.svc@"]), HOSTS,
       st.sampled_from(["", ":9", ":9090"]), st.sampled_from(["", "/", "/api"]))
def test_fuzzed_server_addresses_are_admitted_only_when_listed_and_not_metadata(scheme, userinfo, host, port, path):
    url = f"{scheme}://{userinfo}{host}{port}{path}"
    try:
        admitted = admit_server(url, CONFIGURED, ALLOWED, stub_resolve)
    except Refused:
        return
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(admitted)
    assert parts.scheme in ("http", "https") and parts.username is None
    assert admitted == CONFIGURED or any(admitted.startswith(a) for a in ALLOWED if "://" in a) \
        or parts.hostname.endswith(".monitoring.svc")
    for address in stub_resolve(parts.hostname):
        assert not ipaddress.ip_address(address).is_link_local
