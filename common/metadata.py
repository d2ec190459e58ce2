"""What every outgoing call carries: the bearer token, the request id; and how long it took."""

import time
from typing import Any

import grpc

from common.observe import REQUEST_ID, request_id, time_client_call


class _Outgoing:
    """Adds `authorization: Bearer <token>` (with a token) and the current request id (inside a
    call or a command that set one) to the metadata of each call, and times the call."""

    def __init__(self, token: str) -> None:
        self._headers = [("authorization", f"Bearer {token}")] if token else []

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        rid = request_id()
        added = [*self._headers, (REQUEST_ID, rid)] if rid else self._headers
        if not added:
            return details
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *added)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def _call(self, continuation: Any, details: Any, request: Any) -> Any:
        started = time.perf_counter()
        call = await continuation(self._details(details), request)
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        time_client_call(call, method, started)
        return call


# An aio channel files each interceptor under one kind of call only, hence one class per kind.
class _UnaryUnary(_Outgoing, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._call(continuation, details, request)


class _UnaryStream(_Outgoing, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._call(continuation, details, request)


class _StreamUnary(_Outgoing, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._call(continuation, details, requests)


class _StreamStream(_Outgoing, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._call(continuation, details, requests)


def outgoing(token: str) -> list[Any]:
    """The interceptors of a channel whose calls present `token` ("": none) and the request id.

    Each call's seconds and code are recorded in `common.observe.CLIENT_LATENCY`.
    """
    kinds = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    return [kind(token) for kind in kinds]
