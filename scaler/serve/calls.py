"""What every gRPC handler shares: status mapping for Helios errors, and per-call telemetry.

A handler raises; this module turns the exception into a status with a message a user can act on.
Unexpected exceptions become INTERNAL with a generic message (the stack trace goes to the log).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

import grpc

from ..config.metadata import InvalidMetadata
from ..runtime.inquiries import NotReady, NotTracked, Rejected
from ..runtime.state import Answer, Availability
from ..runtime.telemetry import Telemetry

log = logging.getLogger(__name__)


class CallError(Exception):
    """Abort the call with this status and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def invalid(field: str, message: str) -> CallError:
    return CallError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {message}")


def unavailable_answer(answer: Answer, workload: str) -> CallError:
    code = grpc.StatusCode.INVALID_ARGUMENT if answer.availability is Availability.BAD_QUERY else \
        grpc.StatusCode.UNAVAILABLE
    return CallError(code, f"{workload}: {answer.detail}")


def _status_of(error: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(error, CallError):
        return error.code, str(error)
    if isinstance(error, InvalidMetadata | Rejected):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if isinstance(error, NotTracked):
        return grpc.StatusCode.NOT_FOUND, str(error)
    if isinstance(error, NotReady):
        return grpc.StatusCode.UNAVAILABLE, str(error)
    log.exception("unexpected error in a gRPC handler")
    return grpc.StatusCode.INTERNAL, f"internal error ({error.__class__.__name__}); see the Helios logs"


def unary(handler):
    """Decorate an async unary handler of a servicer with a `telemetry` attribute: map errors to
    statuses, count and time the call."""
    method = handler.__name__

    @functools.wraps(handler)
    async def call(self, request, context: grpc.aio.ServicerContext):
        telemetry: Telemetry = self.telemetry
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return await handler(self, request, context)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as e:  # noqa: BLE001 - every error must become a status
            code, message = _status_of(e)
            await context.abort(code, message)
        finally:
            elapsed = time.perf_counter() - started
            requests, seconds = telemetry.call_instruments(method, code.name)
            requests.inc()
            seconds.observe(elapsed)
            _summarise(self, method, request, code, elapsed)

    return call



def _summarise(servicer, method: str, request, code: grpc.StatusCode, elapsed: float) -> None:
    """One log line per call: the rpc, the workload it is about, the status and the time; never the payload.
    KEDA polls every workload several times a minute, so its calls log at DEBUG; the admin API's at INFO."""
    level = getattr(servicer, "call_log_level", logging.DEBUG)
    if not log.isEnabledFor(level):
        return
    log.log(level, "rpc", extra={"rpc": method, "code": code.name, "duration_ms": round(elapsed * 1000, 3),
                                 "workload": _workload_of(request)})


def _workload_of(request) -> str:
    ref = getattr(request, "scaledObjectRef", None) or request
    for field, parts in (("workload", ("namespace", "name", "metric_name")), (None, ("namespace", "name"))):
        message = getattr(ref, field, None) if field else ref
        if message is not None and all(hasattr(message, p) for p in parts):
            name = "/".join(getattr(message, p) for p in parts)
            return name if name.strip("/") else ""
    return ""


def streaming(handler):
    """Decorate an async-generator handler the same way (no duration: streams are long-lived)."""
    method = handler.__name__

    @functools.wraps(handler)
    async def call(self, request, context: grpc.aio.ServicerContext):
        telemetry: Telemetry = self.telemetry
        code = grpc.StatusCode.OK
        streams = telemetry.open_streams(method)
        streams.inc()
        try:
            async for message in handler(self, request, context):
                yield message
        except asyncio.CancelledError:  # the client went away: the normal end of a stream
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as e:  # noqa: BLE001
            code, message = _status_of(e)
            await context.abort(code, message)
        finally:
            streams.dec()
            telemetry.requests.labels(method, code.name).inc()

    return call

