"""Metric sources, one module each, looked up by the trigger's `source` key in SOURCES.

Adding a source means three things: its module here (a class meeting base.MetricSource: `name`,
`Params`, `fetch`, and, if the operator configures it, a pydantic `Settings` model of its own keys;
a query source subclasses query.QueryAdapter), its test (tests/adapters/, running the contract suite
of tests/adapters/contract.py), and its line in SOURCES below. The `sources:` configuration section
is built from this registry (scaler/config/source_settings.py), one subsection per source with a
`Settings` model, so nothing else changes.

The modules the query sources share: query.py (QueryAdapter: a trigger's own query), frames.py (the
standard-metric frames), grid.py (raw samples onto the step grid), metrics.py (the standard metric
keys and their rules), retry.py (retries of outages); replay.py loops a recorded trace.
"""

from .azure import AzureMonitorSource
from .base import MetricSource
from .cloudwatch import CloudWatchSource
from .demo import DemoSource
from .file import FileSource
from .gcp import GcpMonitoringSource
from .prometheus import PrometheusSource

SOURCES: dict[str, type] = {
    s.name: s
    for s in (
        DemoSource,
        FileSource,
        PrometheusSource,
        GcpMonitoringSource,
        CloudWatchSource,
        AzureMonitorSource,
    )
}

__all__ = ["SOURCES", "MetricSource"]
