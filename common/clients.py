"""Outgoing calls: channels with the cluster's retry policy, and status codes back to exceptions."""

import contextlib
import ipaddress
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc

from common import errors
from common.config import TlsConfig
from common.metadata import outgoing
from common.serve import channel_options
from common.tls import channel_credentials

Response = TypeVar("Response")

# Retried only where a repeat is harmless: reads, embeddings and idempotent-by-id writes. A
# taxonomy edit, partition move or split is not: its caller decides (it may have landed).
_IDEMPOTENT_TAXONOMY = [
    "GetTree", "Ancestors", "GetNode", "GetItems", "PutItems", "DeleteItems", "Rerank",
    "History", "Diff", "ListSuggestions", "Export", "Watch", "Scan", "PartitionReady",
]  # fmt: skip
_RETRY = {
    "methodConfig": [
        {
            "name": [
                {"service": "visualsearch.v1.Encoder"},
                {"service": "visualsearch.v1.Index"},
                *(
                    {"service": "visualsearch.v1.Taxonomy", "method": method}
                    for method in _IDEMPOTENT_TAXONOMY
                ),
            ],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}

_BALANCED = {**_RETRY, "loadBalancingConfig": [{"round_robin": {}}]}

_BY_CODE: dict[grpc.StatusCode, type[errors.VisualSearchError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.ABORTED: errors.Aborted,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.CANCELLED: errors.Cancelled,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
}


def channel(
    address: str, token: str = "", balanced: bool = False, tls: TlsConfig | None = None
) -> grpc.aio.Channel:
    """A channel with the cluster's message limits and retry policy; TLS where `tls` is on.

    Args:
        address: host:port of the service, or a target naming several (`balanced_target`).
        token: a bearer token every call on the channel presents; "" presents none.
        balanced: spread calls over every address of the target in turn (round_robin)
            instead of sending them all to the first that connects.
        tls: the cluster's TLS files: with them the channel trusts the cluster's CA and
            presents the cluster's certificate (config.tls); None or off: plaintext.
    """
    options: list[tuple[str, Any]] = [
        *channel_options(),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(_BALANCED if balanced else _RETRY)),
    ]
    if tls is not None and tls.on:
        options.extend(_tls_name(address))
        credentials = channel_credentials(tls)
        return grpc.aio.secure_channel(address, credentials, options, interceptors=outgoing(token))
    return grpc.aio.insecure_channel(address, options=options, interceptors=outgoing(token))


def balanced_target(addresses: Sequence[str]) -> str:
    """One channel target for several host:port addresses, for a `balanced` channel: gRPC's
    static list ("ipv4:h:p,h:p"), or the one address as it is.

    Raises:
        InvalidArgument: several addresses, one of whose hosts is not an IPv4 address.
    """
    if len(addresses) == 1:
        return addresses[0]
    for address in addresses:
        host = address.rsplit(":", 1)[0]
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).version == 4:
                continue
        raise errors.InvalidArgument(
            f"{address}: several replicas need IPv4 addresses (the cluster's host) to balance over"
        )
    return "ipv4:" + ",".join(addresses)


def _tls_name(address: str) -> list[tuple[str, str]]:
    """A target naming several addresses ("ipv4:h:p,h:p") checks the certificate against the
    first one's host; a plain host:port is checked against its host already."""
    if not address.startswith("ipv4:"):
        return []
    host = address.removeprefix("ipv4:").split(",")[0].rsplit(":", 1)[0]
    return [("grpc.ssl_target_name_override", host)]


async def call(
    method: Callable[..., Awaitable[Response]],
    request: Any,
    timeout: float,
    target: str,
    wait_for_ready: bool = False,
) -> Response:
    """Calls `method` with a deadline; a failed call becomes the matching project exception.

    With `wait_for_ready`, a call to a server not yet reachable waits (within the deadline)
    instead of failing at once: for a process waiting on another at start.

    Raises:
        VisualSearchError: the subclass for the call's status code, naming `target`.
    """
    if timeout <= 0:
        raise errors.DeadlineExceeded(f"{target}: the deadline passed before the call")
    try:
        return await method(request, timeout=timeout, wait_for_ready=wait_for_ready)
    except grpc.aio.AioRpcError as error:
        raise errors_for(error, target) from error


def errors_for(error: grpc.aio.AioRpcError, target: str) -> errors.VisualSearchError:
    """The project exception for a failed call's status code, naming `target`; a code with no
    class of its own (INTERNAL, UNIMPLEMENTED, ...) is kept on the exception."""
    kind = _BY_CODE.get(error.code(), errors.VisualSearchError)
    found = kind(f"{target}: {error.details()}")
    if kind is errors.VisualSearchError:
        found.code = error.code().name
    return found
