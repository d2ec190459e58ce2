"""The serve loop every service shares: errors mapped once, auth, metrics, health, reflection,
stop."""

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.auth import Tokens
from common.config import AuthConfig, ClusterConfig, LimitsConfig, TlsConfig
from common.interceptors import AuthInterceptor, ErrorInterceptor, ShedInterceptor, check_roles
from common.logs import configure as configure_logs
from common.logs import name_service
from common.observe import ObserveInterceptor, start_metrics
from common.tls import server_credentials

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = LimitsConfig().max_message_bytes


def channel_options(max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """Message size limits, the same for what is sent and what is received."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


async def serve(
    name: str,
    address: str,
    register: Callable[[grpc.aio.Server], Iterable[str]],
    config: ClusterConfig,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    *,
    roles: Mapping[str, str] | None = None,
    public: bool = False,
) -> None:
    """Serves until SIGTERM or SIGINT, then drains in-flight calls for up to `grace_s`.

    Args:
        name: the service's name in the logs.
        address: host:port to bind.
        register: adds the servicers to the server and returns their full service names;
            everything heavy (models, indexes) is loaded before this is called.
        config: the cluster's; what serving takes of it: `grace_s` (how long in-flight calls
            may run on after a stop signal), `auth` (where the tokens are; without a tokens
            file every call is allowed), `tls` (off: plaintext), `limits` (the largest
            message, the most calls in flight) and `metrics_offset` (the Prometheus metrics
            are served over HTTP on the port of `address` plus this; 0: not served).
        on_stop: closes files and engines once the server has stopped.
        roles: full method name ("/visualsearch.v1.Taxonomy/Edit") to the role a caller's
            token needs for it; methods not named are open.
        public: with TLS on, serve callers without a client certificate (the gateway, whose
            callers present tokens); otherwise only callers with a certificate signed by the
            cluster's CA are served (mutual TLS).

    Raises:
        InvalidArgument: a bad tokens file, or roles naming a method or role that is unknown;
            TLS files missing or unreadable; max_in_flight below 1.
        OSError: the port cannot be bound.
    """
    name_service(name)
    roles = roles or {}
    limits, tls = config.limits, config.tls
    interceptors = _interceptors(name, roles, config.auth)
    interceptors.append(ShedInterceptor(name, limits.max_in_flight))
    # No SO_REUSEPORT (gRPC's default on Linux): a second process on a port in use must fail
    # to start, not share the port's connections with the first without a word.
    options = [*channel_options(limits.max_message_bytes), ("grpc.so_reuseport", 0)]
    server = grpc.aio.server(interceptors=interceptors, options=options)
    services = list(register(server))
    check_roles(roles, [*services, health.SERVICE_NAME, reflection.SERVICE_NAME])
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    _bind(server, address, tls, public, name)
    stop_metrics = start_metrics(address, config.metrics_offset)
    await server.start()
    for service in ["", *services]:
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s serving on %s (%s)", name, address, _security(tls, public))

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()

    log.info("%s draining for up to %.1fs", name, config.grace_s)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(config.grace_s)
    stop_metrics()
    if on_stop is not None:
        await on_stop()
    log.info("%s stopped", name)


def _bind(server: grpc.aio.Server, address: str, tls: TlsConfig, public: bool, name: str) -> None:
    """Raises OSError where the port is taken (gRPC says so with a RuntimeError, or 0)."""
    try:
        if not tls.on:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, server_credentials(tls, public))
    except RuntimeError as error:
        raise OSError(f"{name}: cannot bind {address}: {error}") from error
    if bound == 0:
        raise OSError(f"{name}: cannot bind {address}")


def _security(tls: TlsConfig, public: bool) -> str:
    if not tls.on:
        return "plaintext: no tls.cert_file"
    return "TLS" if public else "mutual TLS: callers need a certificate of the cluster's CA"


def _interceptors(
    name: str, roles: Mapping[str, str], auth: AuthConfig
) -> list[grpc.aio.ServerInterceptor]:
    # The first is the outermost: the observer sees every call's final code, the error
    # mapping turns the refusals of those inside it (auth, shedding) into codes.
    if not auth.tokens_file:
        log.warning("%s: auth is off (no auth.tokens_file): every call is allowed", name)
        return [ObserveInterceptor(), ErrorInterceptor()]
    tokens = Tokens.load(auth.tokens_file)
    log.info("%s: auth on, %d tokens, %d methods need a role", name, len(tokens), len(roles))
    return [ObserveInterceptor(), ErrorInterceptor(), AuthInterceptor(tokens, roles)]


def run(main: Coroutine[object, object, None]) -> None:
    """Runs a service's async main with the cluster's log format (JSON lines, common.logs)."""
    configure_logs()
    asyncio.run(main)
