"""A real Prometheus (the Debian package) on a loopback port, preloaded with known samples.

The samples are written as OpenMetrics and turned into TSDB blocks by `promtool tsdb
create-blocks-from openmetrics` before the server starts, so queries see exactly those samples and
nothing scraped. `--query.lookback-delta` is set below the samples' spacing so that a missing sample
is a gap in the answer instead of being bridged by Prometheus (which, with its default of 5 minutes,
bridges short gaps in production before Helios sees them).
"""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import requests

Sample = tuple[str, dict[str, str], int, float]

LOOKBACK = "30s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_openmetrics(path: Path, samples: Iterable[Sample]) -> Path:
    """Samples as an OpenMetrics text file: families grouped, each series in time order."""
    families: dict[str, list[Sample]] = {}
    for sample in samples:
        families.setdefault(sample[0], []).append(sample)
    lines = []
    for name, rows in families.items():
        lines.append(f"# TYPE {name} unknown")
        rows.sort(key=lambda r: (sorted(r[1].items()), r[2]))
        for _, labels, ts, value in rows:
            label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            text = "NaN" if math.isnan(value) else repr(float(value))
            lines.append(f"{name}{{{label_text}}} {text} {ts}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return path


class PrometheusServer:
    """prometheus on 127.0.0.1:<free port>; stop() and start() again keep the port and the data."""

    def __init__(self, workdir: Path, samples: Iterable[Sample], web_config: Path | None = None,
                 scheme: str = "http", **ready_request) -> None:
        """`web_config`: Prometheus' --web.config.file (TLS, basic auth); `ready_request`: the requests
        keywords (auth, verify) the readiness probe needs to pass it."""
        if shutil.which("prometheus") is None or shutil.which("promtool") is None:
            raise RuntimeError("prometheus and promtool are needed: apt-get install prometheus (see .ci/run)")
        self.workdir = workdir
        self.data = workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        openmetrics = write_openmetrics(workdir / "samples.om", samples)
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(self.data)],
                       check=True, capture_output=True, timeout=60)
        (workdir / "prometheus.yml").write_text("global: {}\n")  # no scrape jobs: the blocks are the data
        self.web_config = web_config
        self.ready_request = ready_request
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = workdir / "prometheus.log"

    def start(self, ready_timeout: float = 20.0) -> None:
        args = [
            "prometheus", f"--config.file={self.workdir / 'prometheus.yml'}", f"--storage.tsdb.path={self.data}",
            "--storage.tsdb.retention.time=3650d",
            f"--web.listen-address=127.0.0.1:{self.port}", f"--query.lookback-delta={LOOKBACK}",
        ]
        if self.web_config:
            args.append(f"--web.config.file={self.web_config}")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                if requests.get(f"{self.url}/-/ready", timeout=1, **self.ready_request).ok:
                    return
            except (OSError, requests.RequestException):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"prometheus not ready within {ready_timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
