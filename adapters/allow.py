"""What a trigger may point a source at: the operator's allow-lists, checked before anything is fetched.

KEDA passes every key of a ScaledObject's trigger to Helios, so whoever may create a ScaledObject
decides what Helios reads unless the operator's configuration bounds it. Each source checks its own
keys (`admit`, called when the trigger metadata is parsed, and again before each fetch) with these
rules, and refuses with `Refused`, which names the key and what is allowed:

- a file path must resolve (symlinks and `..` followed) inside one of the allowed folders;
- a server URL must be the configured one or match an allowed entry, carry no user info, and its
  host must not resolve to a link-local, unspecified or multicast address, nor to AWS's IPv6
  metadata address (the clouds' metadata servers: 169.254.169.254, fd00:ec2::254);
- a PromQL query may be required to select only one namespace's series: every selector in it,
  inside `or`, `unless`, subqueries and function calls alike, must carry `<label>="<namespace>"`,
  as read by a real PromQL parser (promql-parser, the Rust port of Prometheus' own).

The lists live in the sources' settings (`sources.file.roots`, `sources.prometheus.allowed_servers`,
...). A source built without them (the CLI tools read the operator's own files) admits everything.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import promql_parser

Resolver = Callable[[str], list[str]]  # host name -> its IP addresses
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})  # not link-local, but a metadata server


class Refused(ValueError):
    """A trigger key the operator's allow-lists do not admit. `key` is the source's Params field."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def system_resolver(host: str) -> list[str]:
    """Every address the system resolver gives for `host` (an IP literal gives itself)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as e:
        raise Refused("server_address", f"host {host!r} does not resolve ({e.strerror or e})") from None
    return sorted({str(info[4][0]) for info in infos})


def inside_roots(path: str, roots: Sequence[str] | None, key: str = "path") -> Path:
    """`path` resolved (symlinks and `..` followed, relative to the working folder), when it lies inside
    one of `roots` (resolved too); None admits any path."""
    resolved = Path(os.path.realpath(path))
    if roots is None:
        return resolved
    if not roots:
        raise Refused(key, "source file reads no files here: sources.file.roots lists no folders")
    for root in roots:
        if resolved.is_relative_to(os.path.realpath(root)):
            return resolved
    raise Refused(key, f"outside the folders files may be read from (sources.file.roots: {', '.join(roots)})")


def admit_server(url: str, configured: str, allowed: Sequence[str] | None, resolve: Resolver,
                 key: str = "server_address") -> str:
    """`url` normalised, when it is `configured` or matches an entry of `allowed` (a URL prefix such as
    `https://prom.team-a:9090`, or a host pattern such as `*.monitoring.svc`), has no user info, and
    its host resolves to no link-local, unspecified or multicast address. `allowed` None: any URL
    with those two properties."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a port that is no number raises here, as an unclosed [IPv6 literal does
    except ValueError as e:  # a port that is no number, an unclosed [IPv6 literal
        raise Refused(key, f"not a URL ({e})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Refused(key, "must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise Refused(key, "must not carry user info (user:password@): credentials are the operator's, in "
                           "sources.prometheus")
    normalised = url.rstrip("/")
    if normalised != configured.rstrip("/") and allowed is not None and not _listed(host, normalised, allowed):
        listed = ", ".join(allowed) if allowed else "none besides it"
        raise Refused(key, f"not an allowed server: the configured {configured} (sources.prometheus.url) and "
                           f"sources.prometheus.allowed_servers: {listed}")
    for address in resolve(host):
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip in METADATA_ADDRESSES:
            raise Refused(key, f"host {host!r} resolves to {address}, a link-local, unspecified or multicast "
                               "address (a cloud metadata server lives there): never read")
    return normalised


def _listed(host: str, url: str, allowed: Sequence[str]) -> bool:
    for entry in allowed:
        if "://" in entry:  # a URL: this server, or a path below it
            base = entry.rstrip("/")
            if url == base or url.startswith(base + "/"):
                return True
        elif fnmatch.fnmatchcase(host.lower(), entry.lower()):  # a host pattern, any port and scheme
            return True
    return False


def admit_listed(value: str, configured: str, allowed: Sequence[str] | None, key: str, setting: str) -> None:
    """`value` (a cloud project, a subscription) is the configured one or listed in `allowed` (None:
    any). `setting` names the list, as the refusal quotes it."""
    if allowed is None or value == configured or value in allowed:
        return
    known = ", ".join([configured] * bool(configured) + list(allowed)) or "none"
    raise Refused(key, f"{value!r} is not allowed: {setting} and the configured one admit {known}")


def require_namespace(query: str, label: str, namespace: str, key: str = "query") -> None:
    """Refuse `query` unless every series selector in it matches `label` exactly equal to `namespace`."""
    try:
        tree = promql_parser.parse(query)
    except ValueError as e:
        raise Refused(key, f"not valid PromQL ({e})") from None
    wanting: list[str] = []

    def check(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            groups = node.matchers.or_matchers or [node.matchers.matchers]
            if not all(_pins(group, label, namespace) for group in groups):
                wanting.append(str(node))

    promql_parser.walk(tree, check)
    if wanting:
        raise Refused(key, f"every selector must match {label}=\"{namespace}\" (this ScaledObject's namespace); "
                           f"{', '.join(wanting[:3])} does not")


def _pins(matchers, label: str, value: str) -> bool:
    return any(m.name == label and m.op == promql_parser.MatchOp.Equal and m.value == value for m in matchers)
