"""What every service shows of its calls: Prometheus metrics, a request id, a line per failure.

Metrics are named `visualsearch_<service>_<thing>` with the unit last where there is one
(`_seconds`, `_bytes`, `_total` for counters), as Prometheus advises. The ones defined here
are shared by every service and so drop the service part: `visualsearch_requests_total` and
`visualsearch_request_seconds` (calls served, labelled by gRPC service, method and final
status code) and `visualsearch_client_seconds` (calls made through `common.clients`). A
module with metrics of its own defines them at import with prometheus_client directly, in
the process's default registry, which the process serves:

    FANOUT = prometheus_client.Histogram(
        "visualsearch_gateway_fanout_width", "Shards one search asked.", buckets=(1, 2, 4, 8)
    )

Each process serves its metrics over HTTP at /metrics on its gRPC port plus the cluster's
`metrics_offset` (1000 by default: a taxonomy on 50053 is scraped on 51053).

A request id follows a call through every service: the server takes `x-request-id` from the
call's metadata (or makes one), returns it in the trailing metadata, keeps it for the call
(`request_id()`), and the channels of `common.clients` pass it on; the log lines of the call
carry it (`common.logs`).
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextvars import ContextVar

import grpc
import prometheus_client

from common.interceptors import Around, AroundInterceptor

log = logging.getLogger(__name__)

REQUEST_ID = "x-request-id"
MAX_ID_CHARS = 128  # a longer one is replaced: it would bloat every log line of the call

# Half a millisecond (a health check on loopback) to ten seconds (a slow scan), about x2.5.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = prometheus_client.Counter(
    "visualsearch_requests",
    "Calls served, by gRPC service, method and final status code.",
    ["service", "method", "code"],
)
LATENCY = prometheus_client.Histogram(
    "visualsearch_request_seconds",
    "Seconds from a call's arrival to its last response or error, by service and method.",
    ["service", "method"],
    buckets=BUCKETS,
)
CLIENT_LATENCY = prometheus_client.Histogram(
    "visualsearch_client_seconds",
    "Seconds of the calls this process made to other services, by target service, method "
    "and status code.",
    ["target", "method", "code"],
    buckets=BUCKETS,
)

# Shed calls are only counted: a line for each would add to the load that made them shed.
_UNLOGGED = frozenset({grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED})

_request_id: ContextVar[str] = ContextVar("request_id", default="")
_pending: set["asyncio.Task[None]"] = set()  # client timings being recorded, kept alive


def request_id() -> str:
    """The id of the call being served (or made by a command that set one); "" outside any."""
    return _request_id.get()


@contextlib.contextmanager
def requested_as(rid: str) -> Iterator[None]:
    """Makes `rid` the `request_id()` of the code run inside the block."""
    reset = _request_id.set(rid)
    try:
        yield
    finally:
        _request_id.reset(reset)


class ObserveInterceptor(AroundInterceptor):
    """Counts and times each call by its final code, and gives it a request id.

    It must be the outermost interceptor (first in the server's list): it then sees the code
    of a call refused by an inner one (auth) or aborted by the error mapping. A call whose
    handler is cancelled counts as DEADLINE_EXCEEDED once its deadline has passed, else as
    CANCELLED (the client went away). A call ending in any code but OK (or RESOURCE_EXHAUSTED,
    shed) is logged.
    """

    def around(self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler) -> Around:
        _, service, method = details.method.split("/", 2)
        rid = _given_id(details.invocation_metadata) or uuid.uuid4().hex
        return lambda context: _observed(context, service, method, rid)


def start_metrics(address: str, offset: int) -> Callable[[], None]:
    """Serves this process's metrics over HTTP on the port of `address` plus `offset`.

    A metrics port that cannot be bound is logged as an error, and the service serves on
    without metrics: its callers matter more than its scrapers.

    Args:
        address: the gRPC host:port the process serves on.
        offset: added to the port; 0 serves no metrics.

    Returns:
        What stops serving them.
    """
    host, _, port = address.rpartition(":")
    if not offset:
        return lambda: None
    metrics_port = int(port) + offset
    try:
        server, thread = prometheus_client.start_http_server(metrics_port, addr=host.strip("[]"))
    except (OSError, OverflowError) as error:
        log.error("no metrics: cannot serve them on %s:%d: %s", host, metrics_port, error)
        return lambda: None
    log.info("metrics on http://%s:%d/metrics", host, metrics_port)

    def stop() -> None:
        server.shutdown()
        thread.join()

    return stop


def time_client_call(call: grpc.aio.Call, method: str, started: float) -> None:
    """Records an outgoing call's seconds and code in `CLIENT_LATENCY` once it is done.

    Args:
        call: the call as a client interceptor's continuation returns it.
        method: its full name, "/visualsearch.v1.Index/Search".
        started: `time.perf_counter()` when it was made.
    """
    _, target, name = method.split("/", 2)

    async def record(call: grpc.aio.Call) -> None:
        code = (await call.code()).name
        CLIENT_LATENCY.labels(target, name, code).observe(time.perf_counter() - started)

    def done(call: grpc.aio.Call) -> None:
        task = asyncio.ensure_future(record(call))
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    call.add_done_callback(done)


@contextlib.asynccontextmanager
async def _observed(
    context: grpc.aio.ServicerContext, service: str, method: str, rid: str
) -> AsyncIterator[None]:
    started = time.perf_counter()
    context.set_trailing_metadata(((REQUEST_ID, rid),))
    code = grpc.StatusCode.UNKNOWN  # what grpc answers for an exception no one mapped
    with requested_as(rid):
        try:
            yield
            code = context.code() or grpc.StatusCode.OK
        except asyncio.CancelledError:
            remaining = context.time_remaining()
            expired = remaining is not None and remaining <= 0
            code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
            raise
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        finally:
            seconds = time.perf_counter() - started
            REQUESTS.labels(service, method, code.name).inc()
            LATENCY.labels(service, method).observe(seconds)
            if code not in _UNLOGGED:
                why, ms = context.details() or "", seconds * 1e3
                log.info("/%s/%s ended %s after %.1f ms: %s", service, method, code.name, ms, why)


def _given_id(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The caller's request id, if it sent one short enough to be an id, else ""."""
    for key, value in metadata or ():
        if key == REQUEST_ID and isinstance(value, str) and len(value) <= MAX_ID_CHARS:
            return value
    return ""
