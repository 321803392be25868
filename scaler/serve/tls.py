"""TLS/mTLS on the main gRPC port, following the files as they are renewed, and the plaintext
health-only port that Kubernetes gRPC probes (which cannot speak TLS) keep using. File contents never
appear in an error or a log line.
"""

from __future__ import annotations

import logging
import os
import threading

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from ..config.security import SecuritySettings, key_matches, load_certificates, read_secret_file

log = logging.getLogger(__name__)


def server_credentials(section: SecuritySettings) -> grpc.ServerCredentials | None:
    """TLS credentials for the main port, requiring a client certificate under mTLS; None: plaintext.
    They follow the files: see ReloadingCertificates."""
    if not section.tls:
        return None
    certificates = ReloadingCertificates(section)
    return grpc.dynamic_ssl_server_credentials(certificates.current, certificates,
                                               require_client_authentication=section.mtls)


class ReloadingCertificates:
    """The certificate configuration in the TLS files as they are now. When cert-manager renews a
    certificate, kubelet swaps the mounted Secret's files in place; gRPC calls this before every new
    handshake, so a stat of the files is all a connection costs until they change. Files that changed
    into something unusable are reported once and the previous certificate is kept."""

    def __init__(self, section: SecuritySettings) -> None:
        self._section = section
        self._files = [f for f in (section.tls_cert_file, section.tls_key_file, section.tls_client_ca_file) if f]
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self.current = self._configuration()

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            try:
                stamp = self._stat()
            except OSError:
                return None  # between the steps of a swap: look again at the next connection
            if stamp == self._stamp:
                return None
            self._stamp = stamp
            try:
                configuration = self._configuration()
            except (ValueError, OSError) as e:
                log.error("TLS files changed but cannot be used; serving the previous certificate",
                          extra={"reason": str(e), "files": self._files})
                return None
            self.current = configuration
            log.info("TLS certificate reloaded", extra={"files": self._files})
            return configuration

    def _stat(self) -> tuple:
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in map(os.stat, self._files))

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        section = self._section
        load_certificates(section.tls_cert_file)  # the same checks as at start, each naming its file
        if not key_matches(section.tls_cert_file, section.tls_key_file):
            raise ValueError(f"{section.tls_key_file} is not the key of {section.tls_cert_file}")
        pair = (read_secret_file(section.tls_key_file), read_secret_file(section.tls_cert_file))
        client_ca = None
        if section.mtls:
            load_certificates(section.tls_client_ca_file)
            client_ca = read_secret_file(section.tls_client_ca_file)
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=client_ca)


def add_main_port(server: grpc.aio.Server, address: str, section: SecuritySettings) -> int:
    credentials = server_credentials(section)
    if credentials is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)


def health_only_server(servicer: health.aio.HealthServicer) -> grpc.aio.Server:
    """A server with nothing but grpc.health.v1, sharing the main server's health states. Without
    SO_REUSEPORT, so a port already taken fails loudly instead of splitting probes between processes."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return server
