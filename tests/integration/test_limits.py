"""Every service's limits, through the services' own serve(): message size and calls in flight."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.config import LimitsConfig
from tests.loopback import SERVICE, refused
from tests.served import served

LIMIT = 3
CALL_S = 10.0  # a call queued instead of refused would wait this long, then fail otherwise


class Slow:
    """A handler that holds its call open until released; counts the calls it has begun."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.begun = 0
        self.cancelled = 0

    async def __call__(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.begun += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return b"done"

    async def begun_at_least(self, n: int) -> None:
        while self.begun < n:
            await asyncio.sleep(0.01)


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _large(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b"x" * 5000


async def _stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for part in (b"a", b"b"):
        yield part


def _handlers(slow: Slow) -> dict[str, grpc.RpcMethodHandler]:
    return {
        "Stream": grpc.unary_stream_rpc_method_handler(_stream),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Echo": grpc.unary_unary_rpc_method_handler(_echo),
        "Large": grpc.unary_unary_rpc_method_handler(_large),
    }


Scenario = Callable[[grpc.aio.Channel, list[asyncio.Task[bytes]], Slow], Awaitable[None]]


def _while_full(scenario: Scenario) -> None:
    """Runs `scenario` on a server with max_in_flight LIMIT and LIMIT slow calls in flight."""

    async def run() -> None:
        slow = Slow()
        async with (
            served(_handlers(slow), LimitsConfig(max_in_flight=LIMIT)) as address,
            grpc.aio.insecure_channel(address) as channel,
        ):
            calls = [asyncio.create_task(_slow(channel)) for _ in range(LIMIT)]
            try:
                await asyncio.wait_for(slow.begun_at_least(LIMIT), CALL_S)
                await scenario(channel, calls, slow)
            finally:
                slow.release.set()
                await asyncio.gather(*calls, return_exceptions=True)

    asyncio.run(run())


async def _slow(channel: grpc.aio.Channel) -> bytes:
    answer: bytes = await channel.unary_unary(f"/{SERVICE}/Slow")(b"", timeout=CALL_S)
    return answer


async def _echo_call(channel: grpc.aio.Channel, payload: bytes = b"hi") -> bytes:
    answer: bytes = await channel.unary_unary(f"/{SERVICE}/Echo")(payload, timeout=CALL_S)
    return answer


def test_a_call_past_the_limit_is_refused_at_once_naming_the_limit() -> None:
    async def scenario(
        channel: grpc.aio.Channel, calls: list[asyncio.Task[bytes]], _: Slow
    ) -> None:
        error = await refused(_echo_call(channel))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"is {LIMIT}" in (error.details() or "")
        assert "limits.max_in_flight" in (error.details() or "")
        assert not any(call.done() for call in calls)  # refused while the slow calls still wait

    _while_full(scenario)


def test_health_is_served_while_full() -> None:
    async def scenario(channel: grpc.aio.Channel, _: list[asyncio.Task[bytes]], __: Slow) -> None:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=CALL_S
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    _while_full(scenario)


def test_a_stream_is_neither_refused_nor_counted_while_full() -> None:
    async def scenario(channel: grpc.aio.Channel, _: list[asyncio.Task[bytes]], __: Slow) -> None:
        stream = channel.unary_stream(f"/{SERVICE}/Stream")(b"", timeout=CALL_S)
        assert [part async for part in stream] == [b"a", b"b"]

    _while_full(scenario)


def test_calls_are_served_again_once_the_slow_ones_end() -> None:
    async def scenario(
        channel: grpc.aio.Channel, calls: list[asyncio.Task[bytes]], slow: Slow
    ) -> None:
        slow.release.set()
        assert await asyncio.gather(*calls) == [b"done"] * LIMIT
        assert [await _echo_call(channel) for _ in range(2 * LIMIT)] == [b"hi"] * (2 * LIMIT)

    _while_full(scenario)


def test_a_cancelled_call_gives_its_place_back() -> None:
    async def scenario(
        channel: grpc.aio.Channel, calls: list[asyncio.Task[bytes]], slow: Slow
    ) -> None:
        calls[0].cancel()
        await asyncio.wait_for(_until(lambda: slow.cancelled == 1), CALL_S)
        calls.append(asyncio.create_task(_slow(channel)))  # takes the place given back
        await asyncio.wait_for(slow.begun_at_least(LIMIT + 1), CALL_S)
        error = await refused(_echo_call(channel))  # and no more than that one place
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    _while_full(scenario)


def test_of_many_calls_at_once_exactly_the_limit_are_let_in() -> None:
    async def run() -> list[bytes | BaseException]:
        slow = Slow()
        async with (
            served(_handlers(slow), LimitsConfig(max_in_flight=LIMIT)) as address,
            grpc.aio.insecure_channel(address) as channel,
        ):
            calls = [asyncio.create_task(_slow(channel)) for _ in range(4 * LIMIT)]
            await asyncio.wait_for(
                _until(lambda: sum(c.done() for c in calls) == 3 * LIMIT), CALL_S
            )
            assert slow.begun == LIMIT
            slow.release.set()
            return await asyncio.gather(*calls, return_exceptions=True)

    answers = asyncio.run(run())
    assert answers.count(b"done") == LIMIT
    codes = {answer.code() for answer in answers if isinstance(answer, grpc.aio.AioRpcError)}
    assert codes == {grpc.StatusCode.RESOURCE_EXHAUSTED}


def test_a_message_over_the_limit_is_refused_naming_its_size() -> None:
    async def run() -> None:
        async with (
            served(_handlers(Slow()), LimitsConfig(max_message_bytes=1000)) as address,
            grpc.aio.insecure_channel(address) as channel,
        ):
            assert await _echo_call(channel, b"x" * 900) == b"x" * 900
            error = await refused(_echo_call(channel, b"x" * 2000))
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "2000" in (error.details() or "") and "1000" in (error.details() or "")
            large = channel.unary_unary(f"/{SERVICE}/Large")
            error = await refused(large(b"", timeout=CALL_S))  # a reply too large, too
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "5000" in (error.details() or "") and "1000" in (error.details() or "")

    asyncio.run(run())


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)
