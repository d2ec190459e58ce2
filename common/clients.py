"""Outgoing calls: channels with the cluster's retry policy, and status codes back to exceptions."""

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from common import errors
from common.serve import channel_options

Response = TypeVar("Response")

# Retried only where a repeat is harmless: reads, embeddings and idempotent-by-id writes.
_RETRY = {
    "methodConfig": [
        {
            "name": [
                {"service": "visualsearch.v1.Encoder"},
                {"service": "visualsearch.v1.Taxonomy"},
                {"service": "visualsearch.v1.Index"},
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

_BY_CODE: dict[grpc.StatusCode, type[errors.VisualSearchError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.Unavailable,
    grpc.StatusCode.CANCELLED: errors.Unavailable,
}


def channel(address: str) -> grpc.aio.Channel:
    """An insecure loopback channel with the cluster's message limits and retry policy."""
    options: list[tuple[str, Any]] = [
        *channel_options(),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(_RETRY)),
    ]
    return grpc.aio.insecure_channel(address, options=options)


async def call(
    method: Callable[..., Awaitable[Response]], request: Any, timeout: float, target: str
) -> Response:
    """Calls `method` with a deadline; a failed call becomes the matching project exception.

    Raises:
        VisualSearchError: the subclass for the call's status code, naming `target`.
    """
    if timeout <= 0:
        raise errors.Unavailable(f"{target}: deadline already passed")
    try:
        return await method(request, timeout=timeout)
    except grpc.aio.AioRpcError as error:
        kind = _BY_CODE.get(error.code(), errors.VisualSearchError)
        raise kind(f"{target}: {error.details()}") from error
