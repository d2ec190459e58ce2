"""A real grpc.aio server inside the test's process on a free loopback port, for interceptors."""

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence

import grpc
import pytest

SERVICE = "t.T"  # the service the handlers are served under: "/t.T/<name>"


@contextlib.asynccontextmanager
async def serving(
    handlers: Mapping[str, grpc.RpcMethodHandler],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> AsyncIterator[str]:
    """Serves `handlers` (method name to handler, bytes in and out); yields the address."""
    server = grpc.aio.server(interceptors=interceptors)
    generic = grpc.method_handlers_generic_handler(SERVICE, dict(handlers))
    server.add_generic_rpc_handlers([generic])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


def raising(error: Exception) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
    """A unary handler that raises `error`."""

    async def handler(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise error

    return handler


async def drain(responses: AsyncIterable[bytes]) -> list[bytes]:
    """Every response of a server stream."""
    return [response async for response in responses]


async def refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    """The error `call` fails with; the test fails if it succeeds."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value
