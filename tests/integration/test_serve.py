"""The shared serve loop's error mapping, on a real aio server on loopback."""

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from common.config import ClusterConfig
from common.errors import InvalidArgument, NotFound
from common.serve import ErrorInterceptor, serve
from tests.loopback import SERVICE, raising, refused, serving
from tests.served import served


async def _yields_then_raises(
    request: bytes, context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    yield b"first"
    raise NotFound("item 8 is unknown")


async def _writes_then_raises(request: bytes, context: grpc.aio.ServicerContext) -> None:
    await context.write(b"first")
    raise InvalidArgument("k must be positive")


_HANDLERS = {
    "NotFound": grpc.unary_unary_rpc_method_handler(raising(NotFound("item 7 is unknown"))),
    "Bug": grpc.unary_unary_rpc_method_handler(raising(KeyError("secret detail"))),
    "StreamNotFound": grpc.unary_stream_rpc_method_handler(_yields_then_raises),
    "WrittenInvalid": grpc.unary_stream_rpc_method_handler(_writes_then_raises),
}


async def _call(method: str) -> grpc.aio.AioRpcError:
    async with (
        serving(_HANDLERS, [ErrorInterceptor()]) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        return await refused(channel.unary_unary(f"/{SERVICE}/{method}")(b"", timeout=5))


async def _stream(method: str) -> tuple[list[bytes], grpc.aio.AioRpcError]:
    received: list[bytes] = []
    async with (
        serving(_HANDLERS, [ErrorInterceptor()]) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        responses = channel.unary_stream(f"/{SERVICE}/{method}")(b"", timeout=5)
        error = await refused(_collect(responses, received))
    return received, error


async def _collect(responses: grpc.aio.UnaryStreamCall, into: list[bytes]) -> None:
    async for response in responses:
        into.append(response)


def test_a_domain_error_keeps_its_status_and_message() -> None:
    error = asyncio.run(_call("NotFound"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "item 7 is unknown"


def test_an_unexpected_error_is_internal_without_its_details() -> None:
    error = asyncio.run(_call("Bug"))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "secret detail" not in (error.details() or "")
    assert "/t.T/Bug" in (error.details() or "")


def test_a_domain_error_in_a_server_stream_ends_it_with_its_status() -> None:
    received, error = asyncio.run(_stream("StreamNotFound"))
    assert received == [b"first"]
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "item 8 is unknown"


def test_a_stream_written_with_context_write_is_mapped_too() -> None:
    received, error = asyncio.run(_stream("WrittenInvalid"))
    assert received == [b"first"]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_second_server_on_a_port_in_use_fails_to_start_instead_of_sharing_it() -> None:
    async def run() -> None:
        async with served({}) as address:
            with pytest.raises(OSError, match="cannot bind"):
                await serve("second", address, lambda server: [], ClusterConfig(metrics_offset=0))

    asyncio.run(run())
