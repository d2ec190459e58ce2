"""Server interceptors every service shares: errors mapped once, bearer-token roles, shedding."""

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import grpc
from google.protobuf import descriptor_pool

from common.auth import UNIDENTIFIED, Tokens, acting_as, known_roles, require
from common.errors import InvalidArgument, VisualSearchError

log = logging.getLogger(__name__)

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]
# Services a full server is never too busy to answer: health checks and reflection.
_NEVER_SHED = ("/grpc.health.", "/grpc.reflection.")
# Runs around one call of a handler, given the call's context.
Around = Callable[[grpc.aio.ServicerContext], contextlib.AbstractAsyncContextManager[None]]


class AroundInterceptor(grpc.aio.ServerInterceptor):
    """Runs each call of a method inside what `around` gives for the method (any of the four
    kinds of call); a method it gives None for is served as it is."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        around = self.around(handler_call_details, handler)
        return handler if around is None else _wrapped(handler, around)

    def around(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler
    ) -> Around | None:
        raise NotImplementedError


class ErrorInterceptor(AroundInterceptor):
    """Maps the project's exceptions to their status codes; anything else becomes INTERNAL."""

    def around(self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler) -> Around:
        method = details.method
        return lambda context: _mapped_errors(context, method)


class AuthInterceptor(AroundInterceptor):
    """Lets a call of a method in `roles` through only with a token that has the method's role.

    `roles` maps a full method name ("/visualsearch.v1.Taxonomy/Edit") to the role it needs;
    methods not in it (health, reflection) are open. The handler finds its caller with
    `common.auth.current_caller()`. Refusals are raised as project exceptions, so an
    `ErrorInterceptor` must run outside this one (before it in the server's list) to turn
    them into status codes.
    """

    def __init__(self, tokens: Tokens, roles: Mapping[str, str]) -> None:
        known_roles(roles.values(), "the roles of the methods")
        self._tokens = tokens
        self._roles = dict(roles)

    def around(self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler) -> Around:
        method = details.method
        role = self._roles.get(method)
        header = _authorization(details.invocation_metadata)
        return lambda context: self._as_caller(header, role, method)

    @contextlib.asynccontextmanager
    async def _as_caller(
        self, header: str | None, role: str | None, method: str
    ) -> AsyncIterator[None]:
        caller = UNIDENTIFIED
        if role is not None:
            caller = self._tokens.identify(header)
            require(caller, role, method)
        with acting_as(caller):
            yield


def check_roles(roles: Mapping[str, str], services: Iterable[str]) -> None:
    """Refuses a roles map that names a method no service has, or a role no token can have.

    A misspelt method would otherwise stay open without a word.

    Args:
        roles: full method name to the role it needs.
        services: full names of the services served, whose descriptors are imported.

    Raises:
        InvalidArgument: naming the unknown methods or roles.
    """
    if not roles:
        return
    pool = descriptor_pool.Default()
    methods = {
        f"/{service}/{method.name}"
        for service in services
        for method in pool.FindServiceByName(service).methods
    }
    unknown = set(roles) - methods
    if unknown:
        raise InvalidArgument(f"roles given for methods not served: {sorted(unknown)}")
    known_roles(roles.values(), "the roles of the methods")


@contextlib.asynccontextmanager
async def _mapped_errors(context: grpc.aio.ServicerContext, method: str) -> AsyncIterator[None]:
    try:
        yield
    except VisualSearchError as error:
        await context.abort(grpc.StatusCode[error.code], str(error))
    except grpc.aio.AbortError:
        raise
    except Exception:
        log.exception("unhandled error in %s", method)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}")


def _authorization(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    values = [value for key, value in metadata or () if key == "authorization"]
    return values[0] if values and isinstance(values[0], str) else None


def _wrapped(handler: grpc.RpcMethodHandler, around: Around) -> grpc.RpcMethodHandler:
    """The same handler, each call run inside `around(context)`; any of the four kinds."""
    serial = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_call(handler.unary_unary, around), **serial)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_call(handler.stream_unary, around), **serial)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_stream(handler.unary_stream, around), **serial)
    return grpc.stream_stream_rpc_method_handler(_stream(handler.stream_stream, around), **serial)


def _call(inner: Any, around: Around) -> Any:
    """An async handler that returns its response (or writes its stream with context.write)."""

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with around(context):
            return await inner(request, context)

    return call


def _stream(inner: Any, around: Around) -> Any:
    """A streaming handler: an async generator's responses are passed on inside `around`."""
    if not inspect.isasyncgenfunction(inner):
        return _call(inner, around)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async with around(context):
            async for response in inner(request, context):
                yield response

    return stream


class ShedInterceptor(AroundInterceptor):
    """Refuses a call at once with RESOURCE_EXHAUSTED while `limit` calls are in flight,
    instead of queueing it without bound; health checks, reflection and streams (a follower's
    Watch, a Scan: few, and open for long) are neither refused nor counted.

    (grpc.aio.server's own maximum_concurrent_rpcs would refuse health checks too, and
    without saying which limit.) The aio server runs every handler on one event loop and the
    count changes only between awaits, so it is exact without a lock; a call gives its place
    back however it ends (answered, failed, cancelled).
    """

    def __init__(self, name: str, limit: int) -> None:
        if limit < 1:
            raise InvalidArgument(f"limits.max_in_flight is {limit}; it must be at least 1")
        self._name = name
        self._limit = limit
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def around(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler
    ) -> Around | None:
        if details.method.startswith(_NEVER_SHED) or handler.unary_unary is None:
            return None  # a stream (a follower's Watch) lives long: not shed
        return self._counted

    @contextlib.asynccontextmanager
    async def _counted(self, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        if self._in_flight >= self._limit:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self._name}: {self._in_flight} calls in flight, the limit "
                f"(limits.max_in_flight, VS_LIMITS_MAX_IN_FLIGHT) is {self._limit}; "
                "retry later",
            )
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
