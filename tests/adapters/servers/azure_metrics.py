"""A loopback HTTPS server speaking Azure Monitor's ARM metrics API.

`GET /{resourceUri}/providers/Microsoft.Insights/metrics?api-version=&metricnames=&timespan=&interval=
&aggregation=&$filter=&top=` answers from raw samples loaded in memory, each with dimension values. Each
requested metric gets one time series per combination of the dimensions `$filter` splits by
(`name eq '*'`; `name eq 'x'` keeps only x; at most `top`, default 10), or one over all samples
without a filter. Points start every `interval` from the timespan's start and carry the requested
aggregations of the samples in [point, point + interval) before the timespan's end; a point with no
samples carries only its timeStamp, as Azure's do. A missing or wrong bearer token is a 401, an
unknown metric or a malformed parameter a 400, with ARM's error body.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import isodate

from ...pki import self_signed

TOKEN = "helios-test-token"
_AGGREGATIONS = {
    "average": lambda vs: sum(vs) / len(vs),
    "total": sum,
    "maximum": max,
    "minimum": min,
    "count": len,
}


@dataclass
class Request:
    path: str
    query: dict[str, str]
    authorization: str | None


@dataclass
class AzureMetricsServer:
    directory: Path  # where the throwaway certificate goes
    samples: dict[tuple[str, str], list[tuple[dict[str, str], int, float]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    fail_with: tuple[int, str, str] | None = None  # (status, ARM error code, message) for every call
    delay: float = 0.0  # seconds every call waits before answering
    # Microsoft Entra's token endpoint for workload identity: {tenant: (client_id, federated token)}.
    federated: dict[str, tuple[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    ca_file: str = ""

    def add(self, resource_uri: str, metric: str, points: list[tuple[int, float]],
            dimensions: dict[str, str] | None = None) -> None:
        stored = self.samples.setdefault((resource_uri.strip("/").lower(), metric.lower()), [])
        stored += [(dict(dimensions or {}), t, v) for t, v in points]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> AzureMetricsServer:
        cert, key = self_signed(self.directory)
        self.ca_file = str(cert)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                time.sleep(owner.delay)
                status, body = owner._answer(self.path, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = owner._token(urlsplit(self.path).path, form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # keep test output quiet
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _token(self, path: str, form: dict[str, str]) -> tuple[int, dict]:
        """`POST /{tenant}/oauth2/v2.0/token`: a client-credentials grant whose client assertion is the
        federated token AKS projects into the pod, exchanged for an access token."""
        self.token_requests.append(form)
        tenant = path.strip("/").split("/")[0]
        expected = self.federated.get(tenant)
        if not path.endswith("/oauth2/v2.0/token") or expected is None:
            return 400, {"error": "invalid_request", "error_description": f"unknown tenant or path {path}"}
        if (form.get("grant_type") != "client_credentials" or (form.get("client_id"), form.get("client_assertion"))
                != expected or form.get("client_assertion_type") !=
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
            return 401, {"error": "invalid_client", "error_description": "AADSTS700016: assertion refused"}
        return 200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": TOKEN}

    def _answer(self, raw_path: str, authorization: str | None) -> tuple[int, dict]:
        parts = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = unquote(parts.path)
        self.requests.append(Request(path, query, authorization))
        if authorization != f"Bearer {TOKEN}":
            return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if self.fail_with:
            return _error(*self.fail_with)
        suffix = "/providers/microsoft.insights/metrics"
        if not path.lower().endswith(suffix) or "api-version" not in query:
            return _error(404, "NotFound", f"No route for {path}")
        resource = path[: -len(suffix)].strip("/")
        try:
            start_text, end_text = query["timespan"].split("/")
            start, end = _parse_time(start_text), _parse_time(end_text)
            step = int(isodate.parse_duration(query.get("interval", "PT1M")).total_seconds())
        except (KeyError, ValueError, isodate.ISO8601Error) as e:
            return _error(400, "BadRequest", f"Invalid timespan or interval: {e}")
        aggregations = [a.strip().lower() for a in query.get("aggregation", "average").split(",")]
        if unknown := [a for a in aggregations if a not in _AGGREGATIONS]:
            return _error(400, "BadRequest", f"Unknown aggregation {unknown[0]!r}")
        try:
            split, keep = _parse_filter(query.get("$filter", ""))
        except ValueError as e:
            return _error(400, "BadRequest", str(e))
        top = int(query.get("top", 10))
        value = []
        for name in query.get("metricnames", "").split(","):
            samples = self.samples.get((resource.lower(), name.lower()))
            if samples is None:
                return _error(400, "BadRequest", f"Failed to find metric configuration for {resource}, name {name}")
            groups: dict[tuple, list[tuple[int, float]]] = {}
            for dims, t, v in samples:
                if start <= t < end and all(dims.get(k) == want for k, want in keep.items()):
                    groups.setdefault(tuple((k, dims.get(k, "")) for k in split), []).append((t, v))
            series = [_timeseries(key, points, start, end, step, aggregations) for key, points in
                      sorted(groups.items())[:top]]
            value.append(_metric(resource, name, series))
        return 200, {
            "cost": 0,
            "timespan": query["timespan"],
            "interval": query.get("interval", "PT1M"),
            "namespace": query.get("metricnamespace", ""),
            "resourceregion": "westeurope",
            "value": value,
        }


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client that gave up (a timeout test) is expected
        pass


def _parse_filter(text: str) -> tuple[list[str], dict[str, str]]:
    """`a eq '*' and b eq 'x'` -> (["a"], {"b": "x"}): the dimensions to split by and to keep."""
    split, keep = [], {}
    for clause in filter(None, (c.strip() for c in re.split(r"\s+and\s+", text.strip()))):
        m = re.fullmatch(r"(\w+)\s+eq\s+'([^']*)'", clause)
        if not m:
            raise ValueError(f"Invalid $filter clause {clause!r}")
        if m.group(2) == "*":
            split.append(m.group(1))
        else:
            keep[m.group(1)] = m.group(2)
    return split, keep


def _timeseries(key, samples, start, end, step, aggregations) -> dict:
    data = []
    for t in range(start, end, step):
        vs = [v for ts, v in samples if t <= ts < t + step]
        point = {"timeStamp": dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if vs:
            point |= {a: float(_AGGREGATIONS[a](vs)) for a in aggregations}
        data.append(point)
    return {"metadatavalues": [{"name": {"value": k, "localizedValue": k}, "value": v} for k, v in key],
            "data": data}


def _metric(resource, name, series) -> dict:
    return {
        "id": f"/{resource}/providers/Microsoft.Insights/metrics/{name}",
        "type": "Microsoft.Insights/metrics",
        "name": {"value": name, "localizedValue": name},
        "unit": "Unspecified",
        "timeseries": series,
        "errorCode": "Success",
    }


def _parse_time(text: str) -> int:
    return int(isodate.parse_datetime(text).timestamp())


def _error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}
