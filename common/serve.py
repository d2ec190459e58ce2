"""The serve loop every service shares: errors mapped once, health, reflection, graceful stop."""

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.errors import VisualSearchError

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps the project's exceptions to their status codes; anything else becomes INTERNAL."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        inner: Any = handler.unary_unary  # an async handler on an aio server

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await inner(request, context)
            except VisualSearchError as error:
                await context.abort(grpc.StatusCode[error.code], str(error))
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("unhandled error in %s", method)
                await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}")

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def channel_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]


async def serve(
    name: str,
    address: str,
    register: Callable[[grpc.aio.Server], Iterable[str]],
    grace_s: float,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serves until SIGTERM or SIGINT, then drains in-flight calls for up to `grace_s`.

    Args:
        name: the service's name in the logs.
        address: host:port to bind.
        register: adds the servicers to the server and returns their full service names;
            everything heavy (models, indexes) is loaded before this is called.
        grace_s: how long in-flight calls may run on after a stop signal.
        on_stop: closes files and engines once the server has stopped.
    """
    server = grpc.aio.server(interceptors=[ErrorInterceptor()], options=channel_options())
    services = list(register(server))
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    if server.add_insecure_port(address) == 0:
        raise OSError(f"{name}: cannot bind {address}")
    await server.start()
    for service in ["", *services]:
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s serving on %s", name, address)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()

    log.info("%s draining for up to %.1fs", name, grace_s)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace_s)
    if on_stop is not None:
        await on_stop()
    log.info("%s stopped", name)


def run(main: Coroutine[object, object, None]) -> None:
    """Runs a service's async main with the cluster's log format."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(main)
