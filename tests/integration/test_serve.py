"""The shared serve loop's error mapping, on a real aio server on loopback."""

import asyncio
from collections.abc import Callable

import grpc
import pytest

from common.errors import NotFound
from common.serve import ErrorInterceptor


def _raising(error: Exception) -> Callable[[bytes, grpc.aio.ServicerContext], object]:
    async def handler(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise error

    return handler


async def _call(method: str) -> grpc.aio.AioRpcError:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    handlers = {
        "NotFound": grpc.unary_unary_rpc_method_handler(_raising(NotFound("item 7 is unknown"))),
        "Bug": grpc.unary_unary_rpc_method_handler(_raising(KeyError("secret detail"))),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.T", handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await channel.unary_unary(f"/t.T/{method}")(b"", timeout=5)
            return raised.value
    finally:
        await server.stop(None)


def test_a_domain_error_keeps_its_status_and_message() -> None:
    error = asyncio.run(_call("NotFound"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "item 7 is unknown"


def test_an_unexpected_error_is_internal_without_its_details() -> None:
    error = asyncio.run(_call("Bug"))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "secret detail" not in (error.details() or "")
    assert "/t.T/Bug" in (error.details() or "")
