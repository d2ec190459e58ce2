"""The services' own serve() inside the test's process, on a free loopback port, stopped by
SIGTERM as a service is."""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.config import ClusterConfig, LimitsConfig, TlsConfig
from common.serve import serve
from infra.process import free_ports
from tests.loopback import SERVICE

START_S = 10.0


@contextlib.asynccontextmanager
async def served(
    handlers: Mapping[str, grpc.RpcMethodHandler],
    limits: LimitsConfig | None = None,
    tls: TlsConfig | None = None,
    public: bool = False,
    credentials: grpc.ChannelCredentials | None = None,
) -> AsyncIterator[str]:
    """Runs serve() with `handlers` under "/t.T/<name>"; yields the address once it serves.

    With `credentials` (TLS) it is asked whether it serves over TLS, otherwise in plaintext.
    """
    (port,) = free_ports()
    address = f"127.0.0.1:{port}"

    def register(server: grpc.aio.Server) -> list[str]:
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, dict(handlers))]
        )
        return [SERVICE]

    # A SIGTERM before serve() has taken it over must not end the test run.
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    config = ClusterConfig(
        grace_s=1.0, tls=tls or TlsConfig(), limits=limits or LimitsConfig(), metrics_offset=0
    )
    task = asyncio.create_task(serve("test", address, register, config, public=public))
    try:
        await _serving(address, task, credentials)
        yield address
    finally:
        if not task.done():
            os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, START_S)
        loop = asyncio.get_running_loop()
        for taken in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(taken)
        signal.signal(signal.SIGTERM, previous)


async def _serving(
    address: str, task: asyncio.Task[None], credentials: grpc.ChannelCredentials | None
) -> None:
    if credentials is None:
        channel = grpc.aio.insecure_channel(address)
    else:
        channel = grpc.aio.secure_channel(address, credentials)
    async with channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        request = health_pb2.HealthCheckRequest(service=SERVICE)
        await check(request, timeout=START_S, wait_for_ready=True)
    for _ in range(100):  # serve() takes SIGTERM over a few steps after it reports SERVING
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
