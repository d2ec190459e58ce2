"""Bearer-token roles on a real aio server on loopback, through the client channel's token."""

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager

import grpc
import pytest
from grpc_health.v1 import health

from common import clients
from common.auth import Caller, Tokens, current_caller
from common.errors import Aborted, InvalidArgument, PermissionDenied
from common.interceptors import AuthInterceptor, ErrorInterceptor, check_roles
from tests.loopback import SERVICE, drain, refused, serving

READER, EDITOR = "reader-secret", "editor-secret"
_TOKENS = Tokens(
    [
        (READER, Caller("search-ui", frozenset({"reader"}))),
        (EDITOR, Caller("curator", frozenset({"reader", "editor"}))),
    ]
)
_ROLES = {f"/{SERVICE}/Edit": "editor", f"/{SERVICE}/Watch": "reader"}


async def _who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    caller = current_caller()
    return f"{caller.name} {sorted(caller.roles)}".encode()


async def _watch(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield current_caller().name.encode()
    if request == b"stale":
        raise Aborted("version 3 was replaced by version 4")
    yield b"done"


_HANDLERS = {
    "Edit": grpc.unary_unary_rpc_method_handler(_who),
    "Watch": grpc.unary_stream_rpc_method_handler(_watch),
    "Open": grpc.unary_unary_rpc_method_handler(_who),
}


def _server() -> AbstractAsyncContextManager[str]:
    return serving(_HANDLERS, [ErrorInterceptor(), AuthInterceptor(_TOKENS, _ROLES)])


async def _unary(method: str, token: str = "", header: str = "") -> bytes:
    metadata = (("authorization", header),) if header else None
    async with (
        _server() as address,
        clients.channel(address, token) as channel,
    ):
        return await channel.unary_unary(f"/{SERVICE}/{method}")(b"", timeout=5, metadata=metadata)


async def _stream(request: bytes, token: str = "") -> list[bytes]:
    async with (
        _server() as address,
        clients.channel(address, token) as channel,
    ):
        return await drain(channel.unary_stream(f"/{SERVICE}/Watch")(request, timeout=5))


def _refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    return asyncio.run(refused(call))


def test_a_call_without_a_token_is_unauthenticated() -> None:
    error = _refused(_unary("Edit"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no authorization metadata" in (error.details() or "")


def test_a_wrong_or_malformed_token_is_unauthenticated() -> None:
    assert _refused(_unary("Edit", "not-a-token")).code() == grpc.StatusCode.UNAUTHENTICATED
    error = _refused(_unary("Edit", header=f"Basic {EDITOR}"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "malformed" in (error.details() or "")


def test_a_reader_calling_an_editor_method_is_refused_by_name() -> None:
    error = _refused(_unary("Edit", READER))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'editor' role" in (error.details() or "")
    assert "'search-ui'" in (error.details() or "")


def test_an_editor_is_let_through_and_the_handler_sees_who() -> None:
    assert asyncio.run(_unary("Edit", EDITOR)) == b"curator ['editor', 'reader']"


def test_an_open_method_needs_no_token_and_grants_no_role() -> None:
    assert asyncio.run(_unary("Open")) == b"anonymous []"


def test_a_server_stream_is_checked_and_sees_its_caller() -> None:
    assert _refused(_stream(b"")).code() == grpc.StatusCode.UNAUTHENTICATED
    assert asyncio.run(_stream(b"", READER)) == [b"search-ui", b"done"]


def test_a_project_error_in_a_checked_stream_keeps_its_status() -> None:
    error = _refused(_stream(b"stale", READER))
    assert error.code() == grpc.StatusCode.ABORTED
    assert error.details() == "version 3 was replaced by version 4"


def test_a_refusal_becomes_the_project_exception_on_the_client() -> None:
    async def edit_as_reader() -> bytes:
        async with (
            _server() as address,
            clients.channel(address, READER) as channel,
        ):
            method = channel.unary_unary(f"/{SERVICE}/Edit")
            return await clients.call(method, b"", timeout=5, target="t")

    with pytest.raises(PermissionDenied, match=r"^t: "):
        asyncio.run(edit_as_reader())


def test_roles_for_methods_not_served_or_unknown_roles_are_refused() -> None:
    served = [health.SERVICE_NAME]
    check_roles({"/grpc.health.v1.Health/Check": "reader"}, served)
    with pytest.raises(InvalidArgument, match="Chek"):
        check_roles({"/grpc.health.v1.Health/Chek": "reader"}, served)
    with pytest.raises(InvalidArgument, match="admin"):
        check_roles({"/grpc.health.v1.Health/Check": "admin"}, served)
    with pytest.raises(InvalidArgument, match="admin"):
        AuthInterceptor(_TOKENS, {"/t.T/Edit": "admin"})
