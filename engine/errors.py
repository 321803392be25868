"""Errors the engine and the metric sources raise. The scaler maps each kind to a gRPC status."""


class HeliosError(Exception):
    """Base of every error Helios raises on purpose."""


class InvalidSeries(HeliosError, ValueError):
    """A series that breaks the contract of engine.types.Series (unsorted, mismatched, non-finite)."""


class InsufficientData(HeliosError):
    """Too little history to fit or forecast."""


class SourceError(HeliosError):
    """A metric source failed. Subclasses say whether retrying later can help."""

    retryable = True


class SourceUnavailable(SourceError):
    """The source could not be reached, timed out or answered with a server error: an outage."""


class SourceUnauthorized(SourceError):
    """The source refused the credentials. Retrying will not help until configuration changes."""

    retryable = False


class BadQuery(SourceError):
    """The source rejected the query itself (syntax, unknown metric, missing file)."""

    retryable = False


class NoData(SourceError):
    """The query is valid but returned no samples in the requested window."""


class ArtifactError(HeliosError):
    """A stored model that cannot be used: incomplete, corrupt, or written by an incompatible version."""
