"""How a query adapter retries: only outages (SourceUnavailable), with exponential backoff and full
jitter, within a number of attempts and a deadline. Refused credentials, bad queries and empty
answers are final at once; each attempt's own timeout is the adapter's to pass to its client library,
whose own retries are turned off so that these are the only ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_random_exponential

from helios.engine.errors import SourceUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Per-attempt timeout and retries of SourceUnavailable with exponential backoff (seconds)."""

    timeout: float = 10.0
    attempts: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 5.0
    deadline: float = 30.0  # no new attempt starts after this long

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, tried again after each SourceUnavailable while the policy allows."""
        retrying = Retrying(
            retry=retry_if_exception_type(SourceUnavailable),
            stop=stop_after_attempt(max(1, self.attempts)) | stop_after_delay(self.deadline),
            wait=wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max),
            reraise=True,
        )
        return retrying(fn, *args)
