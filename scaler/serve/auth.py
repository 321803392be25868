"""Credentials for the Admin API: API keys (`x-api-key`) and JWT bearer tokens (`authorization`).

Only helios.admin.v1.Admin is guarded. KEDA cannot send headers to an external scaler, so the
ExternalScaler service, health and reflection stay open; mTLS and the NetworkPolicy protect them.
A refused call gets one generic message whatever failed; the log says why, never with the credential.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable

import grpc
import jwt
from prometheus_client import CollectorRegistry, Counter

from ..config.security import SecuritySettings, load_api_key_digests, load_hmac_secret, load_rsa_public_key
from ..pb import admin_pb2

log = logging.getLogger(__name__)

ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name
REFUSED = "missing or invalid credentials"


class AdminCredentials:
    """Checks the metadata of one call against the configured API keys and JWT keys."""

    def __init__(self, api_key_digests: list[bytes], jwt_keys: dict[str, object], audience: str | None = None,
                 issuer: str | None = None, leeway: float = 0.0) -> None:
        self._digests = api_key_digests
        self._jwt_keys = jwt_keys  # algorithm -> key: a token is checked only with the key of its own kind
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway

    @classmethod
    def from_settings(cls, section: SecuritySettings) -> AdminCredentials | None:
        """None when no credential is configured: the Admin API is then open."""
        if not section.admin_auth:
            return None
        digests = load_api_key_digests(section.api_keys_file) if section.api_keys_file else []
        cfg = section.jwt
        keys: dict[str, object] = {}
        if cfg.hs256_secret_file:
            keys["HS256"] = load_hmac_secret(cfg.hs256_secret_file)
        if cfg.rs256_public_key_file:
            keys["RS256"] = load_rsa_public_key(cfg.rs256_public_key_file)
        return cls(digests, keys, cfg.audience, cfg.issuer, cfg.leeway)

    def refusal(self, metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
        """Why the call is refused (for the log only), or None when one credential it carries is valid."""
        reason = "no credential"
        for key, value in metadata:
            if key == "x-api-key" and isinstance(value, str):
                if self._known_key(value):
                    return None
                reason = "unknown API key" if self._digests else "API keys are not enabled"
            elif key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    reason = "authorization is not `Bearer <token>`"
                    continue
                reason = self._token_refusal(token.strip())
                if reason is None:
                    return None
        return reason

    def _known_key(self, key: str) -> bool:
        digest = hashlib.sha256(key.encode()).digest()
        found = False
        for known in self._digests:  # no early exit: the time taken does not tell which key matched
            found |= hmac.compare_digest(digest, known)
        return found

    def _token_refusal(self, token: str) -> str | None:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            key = self._jwt_keys.get(algorithm)
            if key is None:
                return f"token algorithm {algorithm!r} is not accepted"
            jwt.decode(token, key, algorithms=[algorithm], audience=self._audience, issuer=self._issuer,
                       leeway=self._leeway, options={"require": ["exp"]})
        except jwt.PyJWTError as e:
            return f"invalid token: {type(e).__name__}"
        return None


class AdminAuthInterceptor(grpc.aio.ServerInterceptor):
    """Lets an Admin call through only with valid credentials; every other service passes untouched."""

    def __init__(self, credentials: AdminCredentials, registry: CollectorRegistry) -> None:
        self._credentials = credentials
        self._failures = Counter("helios_admin_auth_failures", "Admin API calls refused for missing or invalid "
                                 "credentials, by rpc", ["rpc"], registry=registry)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        service, _, rpc = handler_call_details.method.lstrip("/").partition("/")
        if handler is None or service != ADMIN_SERVICE:
            return handler
        reason = self._credentials.refusal(handler_call_details.invocation_metadata or ())
        if reason is None:
            return handler
        self._failures.labels(rpc).inc()
        log.warning("admin call refused", extra={"rpc": rpc, "reason": reason})
        return _refusing(handler)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that ends the call with UNAUTHENTICATED."""
    async def refuse(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSED)

    async def refuse_stream(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSED)
        yield  # pragma: no cover - makes this an async generator; abort raises first

    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[handler.request_streaming, handler.response_streaming]
    return make(refuse_stream if handler.response_streaming else refuse)


def admin_interceptors(section: SecuritySettings, registry: CollectorRegistry) -> list[grpc.aio.ServerInterceptor]:
    credentials = AdminCredentials.from_settings(section)
    return [AdminAuthInterceptor(credentials, registry)] if credentials else []
