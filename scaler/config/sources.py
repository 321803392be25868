"""Builds every registered metric source from the `sources:` settings (one adapter instance each)."""

from __future__ import annotations

from helios.adapters import SOURCES

from .settings import Settings
from .source_settings import SourceSection


def build_sources(settings: Settings) -> dict[str, object]:
    """{name: adapter}: a source with a settings subsection gets its keys as keyword arguments, the
    grid step of `metrics.step`, and retries that stop within `metrics.fetch_timeout`."""
    sources = {}
    for name, cls in SOURCES.items():
        section = getattr(settings.sources, name, None)
        if isinstance(section, SourceSection):
            sources[name] = cls(**section.adapter_kwargs(settings.metrics.step, settings.metrics.fetch_timeout))
        else:
            sources[name] = cls()
    return sources
