"""A real redis-server (Debian's package) on a loopback port, in memory only, stopped and started at will;
with `tls`, it speaks TLS only (rediss://) with that certificate, and the URL names the CA to trust."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from .pki import Pem
from .prometheus_server import free_port


class RedisServer:
    def __init__(self, workdir: Path, tls: Pem | None = None, ca: Path | None = None) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is needed: apt-get install redis-server (see .ci/run)")
        if (tls is None) != (ca is None):
            raise ValueError("tls needs the CA that issued its certificate, and the other way round")
        self.workdir, self.tls, self.ca = workdir, tls, ca
        self.port = free_port()
        self.url = (f"redis://127.0.0.1:{self.port}/0" if tls is None else
                    f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={ca}")
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        listen = ["--port", str(self.port)]
        if self.tls is not None:  # no plaintext port at all; clients need no certificate of their own
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert),
                      "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.ca),
                      "--tls-auth-clients", "no"]
        self.process = subprocess.Popen(
            ["redis-server", *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._pong():
                    return
            except OSError:  # not listening yet (ssl.SSLError is an OSError too)
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server not ready within {timeout}s")

    def _pong(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as raw:
            s = raw
            if self.tls is not None:
                s = ssl.create_default_context(cafile=str(self.ca)).wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
