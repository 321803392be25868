"""The `security:` settings: TLS/mTLS files for the main gRPC port, the Admin API's keys and tokens.
(serve/tls.py turns them into gRPC credentials.)

Every file is read and checked when the settings load, so a wrong path or a key that does not match
its certificate stops `helios serve` with a message naming the key, before any port opens. The TLS
files are read again whenever they change (a renewed certificate needs no restart). File contents
never appear in an error or a log line.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .durations import parse_duration

MIN_HMAC_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash output
MIN_API_KEY_CHARS = 16
_HASHED_KEY = re.compile(r"sha256:([0-9a-fA-F]{64})")


def read_secret_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read the file: {e.strerror}") from None


def load_certificates(path: str) -> list[x509.Certificate]:
    data = read_secret_file(path)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError("not a PEM certificate (expected -----BEGIN CERTIFICATE-----)") from None
    return certs


def load_private_key(path: str):
    data = read_secret_file(path)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ValueError("the private key is encrypted; mount it unencrypted, as cert-manager writes tls.key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a PEM private key (expected -----BEGIN ... PRIVATE KEY-----)") from None


def load_rsa_public_key(path: str) -> RSAPublicKey:
    data = read_secret_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("not a PEM public key (expected -----BEGIN PUBLIC KEY-----)") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError("RS256 needs an RSA public key")
    return key


def load_hmac_secret(path: str) -> bytes:
    # The trailing newline an editor or `echo` leaves is not part of the secret.
    secret = read_secret_file(path).rstrip(b"\r\n")
    if len(secret) < MIN_HMAC_BYTES:
        raise ValueError(f"the HS256 secret must be at least {MIN_HMAC_BYTES} bytes long")
    return secret


def load_api_key_digests(path: str) -> list[bytes]:
    """SHA-256 digests of the keys in the file: one key per line, plain or as `sha256:<64 hex digits>`;
    blank lines and `#` comments are skipped. Comparing digests keeps every comparison the same length."""
    try:
        text = read_secret_file(path).decode()
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    digests = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if hashed := _HASHED_KEY.fullmatch(line):
            digests.append(bytes.fromhex(hashed.group(1)))
        elif line.startswith("sha256:"):
            raise ValueError(f"line {number}: a hashed key is `sha256:` and 64 hex digits")
        elif len(line) < MIN_API_KEY_CHARS or any(c.isspace() for c in line):
            raise ValueError(f"line {number}: a key needs at least {MIN_API_KEY_CHARS} characters and no spaces")
        else:
            digests.append(hashlib.sha256(line.encode()).digest())
    if not digests:
        raise ValueError("the file holds no keys")
    return digests


def _checked(loader):
    def check(path: str | None) -> str | None:
        if path is not None:
            loader(path)
        return path
    return AfterValidator(check)


CertFile = Annotated[str | None, _checked(load_certificates)]
KeyFile = Annotated[str | None, _checked(load_private_key)]
Leeway = Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=300)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JwtSettings(_Section):
    """Bearer tokens for the Admin API. Every token must carry `exp`."""

    hs256_secret_file: Annotated[str | None, _checked(load_hmac_secret)] = None
    rs256_public_key_file: Annotated[str | None, _checked(load_rsa_public_key)] = None
    audience: str | None = None  # set: `aud` must hold it; unset: a token with `aud` is refused
    issuer: str | None = None  # set: `iss` must equal it
    leeway: Leeway = 30.0  # clock skew allowed on exp/nbf/iat

    @property
    def enabled(self) -> bool:
        return bool(self.hs256_secret_file or self.rs256_public_key_file)


class SecuritySettings(_Section):
    tls_cert_file: CertFile = None  # PEM chain served on the gRPC port (tls.crt of a mounted Secret)
    tls_key_file: KeyFile = None  # its unencrypted PEM key (tls.key)
    tls_client_ca_file: CertFile = None  # set: mTLS, clients must present a certificate this CA signed
    health_port: Annotated[int, Field(ge=0, le=65535)] = 6001  # plaintext, grpc.health.v1 only; 0: any free
    api_keys_file: Annotated[str | None, _checked(load_api_key_digests)] = None
    jwt: JwtSettings = JwtSettings()
    # Which sources the ScaledObjects of a namespace may use, by namespace glob, e.g. {"team-*":
    # ["prometheus"], "sandbox": ["demo"]}: the first pattern that matches decides, and a namespace no
    # pattern matches may use none. Empty (the default): every namespace may use every source.
    namespace_sources: dict[str, list[str]] = {}

    @model_validator(mode="after")
    def _consistent(self):
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            given, missing = ("tls_cert_file", "tls_key_file") if self.tls_key_file is None else (
                "tls_key_file", "tls_cert_file")
            raise ValueError(f"tls_cert_file and tls_key_file go together: {given} is set, {missing} is not")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mTLS) needs TLS: set tls_cert_file and tls_key_file too")
        if self.tls_cert_file is not None and not key_matches(self.tls_cert_file, self.tls_key_file):
            raise ValueError(f"tls_key_file ({self.tls_key_file}) is not the key of the first certificate "
                             f"in tls_cert_file ({self.tls_cert_file})")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def mtls(self) -> bool:
        return self.tls_client_ca_file is not None

    @property
    def admin_auth(self) -> bool:
        return self.api_keys_file is not None or self.jwt.enabled


def key_matches(cert_file: str, key_file: str) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    cert_key = load_certificates(cert_file)[0].public_key().public_bytes(*spki)
    return load_private_key(key_file).public_key().public_bytes(*spki) == cert_key
