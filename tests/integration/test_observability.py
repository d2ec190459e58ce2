"""Metrics, request ids and JSON logs, as an operator sees them: on a real taxonomy process
scraped over HTTP, and on two real aio servers where one calls the other."""

import asyncio
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common import observe
from common.clients import channel
from common.errors import InvalidArgument
from common.interceptors import ErrorInterceptor
from infra import process
from protos.visualsearch.v1 import taxonomy_pb2, taxonomy_pb2_grpc
from tests.loopback import SERVICE, refused, serving
from tests.taxonomy_server import READER, TOKENS, bearer, seed

TIMEOUT = 10.0
TAXONOMY = "visualsearch.v1.Taxonomy"
LINES = """101 - Apparel
102 - Apparel > Topwear
103 - Apparel > Topwear > Tshirts
"""
Value = TypeVar("Value")
GRPC_CORE_LINE = re.compile(r"^[DIWEF]\d{4} ")  # grpc's own C++ logging, not ours


@dataclass
class Taxonomy:
    address: str
    metrics: str
    log: Path


@pytest.fixture(scope="module")
def taxonomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Taxonomy]:
    """A taxonomy process with auth on, its metrics on a port chosen here."""
    folder = tmp_path_factory.mktemp("observed")
    seed(folder / "taxonomy.sqlite", LINES)
    (folder / "tokens.toml").write_text(TOKENS)
    (folder / "cluster.toml").write_text("")
    port, metrics_port = process.free_ports(2)
    served = Taxonomy(
        f"127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", folder / "server.log"
    )
    env = {
        "VS_CONFIG": str(folder / "cluster.toml"),
        "VS_TAXONOMY_PORT": str(port),
        "VS_TAXONOMY_DATABASE": str(folder / "taxonomy.sqlite"),
        "VS_AUTH_TOKENS_FILE": str(folder / "tokens.toml"),
        "VS_METRICS_OFFSET": str(metrics_port - port),
    }
    child = process.start("taxonomy_svc.server", [], served.address, served.log, env)
    try:
        yield served
    finally:
        process.stop(child)


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the page: (name, labels) to value."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as page:
        text = page.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _eventually(get: Callable[[], Value], done: Callable[[Value], bool]) -> Value:
    """What `get` returns once `done` holds of it, or after 5 s: the server logs and counts a
    call just after its status has gone to the caller."""
    deadline = time.monotonic() + 5.0
    value = get()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = get()
    return value


def _requests(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], code: str) -> float:
    labels = frozenset({"service": TAXONOMY, "method": "Ancestors", "code": code}.items())
    return samples.get(("visualsearch_requests_total", labels), 0.0)


def _latency_count(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    labels = frozenset({"service": TAXONOMY, "method": "Ancestors"}.items())
    return samples.get(("visualsearch_request_seconds_count", labels), 0.0)


def _ancestors(address: str, path: str, metadata: list[tuple[str, str]]) -> grpc.Call:
    """Calls Ancestors; the call (its code, its trailing metadata) whether it succeeds or not."""
    with grpc.insecure_channel(address) as chan:
        stub = taxonomy_pb2_grpc.TaxonomyStub(chan)
        request = taxonomy_pb2.AncestorsRequest(path=path)
        try:
            _, call = stub.Ancestors.with_call(request, timeout=TIMEOUT, metadata=metadata)
        except grpc.RpcError as error:
            return error  # type: ignore[return-value]  # a failed call is its own grpc.Call
    return call  # type: ignore[no-any-return]


def _id_of(call: grpc.Call) -> str:
    return dict(call.trailing_metadata() or ())[observe.REQUEST_ID]  # type: ignore[no-any-return]


def test_metrics_count_each_call_by_its_final_code_and_time_it(taxonomy: Taxonomy) -> None:
    before = _scrape(taxonomy.metrics)
    good = _ancestors(taxonomy.address, "Apparel/Topwear/Tshirts", bearer(READER))
    bad = _ancestors(taxonomy.address, "", bearer(READER))
    anonymous = _ancestors(taxonomy.address, "Apparel", [])
    # a refusal reaches the caller a moment before the server counts it
    after = _eventually(
        lambda: _scrape(taxonomy.metrics),
        lambda samples: _latency_count(samples) >= _latency_count(before) + 3,
    )

    assert good.code() == grpc.StatusCode.OK
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
    for code in ("OK", "INVALID_ARGUMENT", "UNAUTHENTICATED"):
        assert _requests(after, code) == _requests(before, code) + 1, code
    assert _latency_count(after) == _latency_count(before) + 3


def test_the_caller_gets_its_request_id_back_or_a_new_one(taxonomy: Taxonomy) -> None:
    sent = _ancestors(taxonomy.address, "Apparel", [*bearer(READER), ("x-request-id", "rq-1")])
    refused_call = _ancestors(taxonomy.address, "", [*bearer(READER), ("x-request-id", "rq-2")])
    fresh = _ancestors(taxonomy.address, "Apparel", bearer(READER))
    too_long = _ancestors(
        taxonomy.address, "Apparel", [*bearer(READER), ("x-request-id", "x" * 999)]
    )

    assert _id_of(sent) == "rq-1"
    assert _id_of(refused_call) == "rq-2"  # an error carries it too
    assert re.fullmatch(r"[0-9a-f]{32}", _id_of(fresh))
    assert re.fullmatch(r"[0-9a-f]{32}", _id_of(too_long))  # not copied into every log line


def test_the_log_is_json_lines_and_a_calls_lines_carry_its_request_id(taxonomy: Taxonomy) -> None:
    _ancestors(taxonomy.address, "", [*bearer(READER), ("x-request-id", "find-me-42")])

    text = _eventually(taxonomy.log.read_text, lambda text: "find-me-42" in text)
    ours = [line for line in text.splitlines() if line and not GRPC_CORE_LINE.match(line)]
    records = [json.loads(line) for line in ours]  # fails on any line that is not JSON
    assert any(r["message"].startswith("taxonomy serving on") for r in records)
    assert all(r["service"] == "taxonomy" for r in records if r["logger"] == "common.serve")
    in_call = [r for r in records if r.get("request_id") == "find-me-42"]
    assert in_call, text[-2000:]
    assert "INVALID_ARGUMENT" in in_call[0]["message"]
    assert "path is empty" in in_call[0]["message"]  # why, as the caller was told
    assert {"time", "level", "logger", "pid", "message"} <= set(in_call[0])


async def _chain(sent: str | None) -> tuple[str, str, str, str]:
    """The request id at the front server, at the back server it calls through
    `common.clients.channel()`, and the one the caller got back; and the back's reply."""
    seen: dict[str, str] = {}

    async def back(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        seen["back"] = observe.request_id()
        return b"back"

    interceptors = [observe.ObserveInterceptor(), ErrorInterceptor()]
    back_handlers = {"Back": grpc.unary_unary_rpc_method_handler(back)}
    async with (
        serving(back_handlers, interceptors) as back_address,
        channel(back_address) as onward,
    ):
        call_back = onward.unary_unary(f"/{SERVICE}/Back")

        async def front(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            seen["front"] = observe.request_id()
            return await call_back(b"", timeout=TIMEOUT)  # type: ignore[no-any-return]

        front_handlers = {"Front": grpc.unary_unary_rpc_method_handler(front)}
        async with (
            serving(front_handlers, interceptors) as front_address,
            grpc.aio.insecure_channel(front_address) as chan,
        ):
            metadata = (("x-request-id", sent),) if sent else ()
            call = chan.unary_unary(f"/{SERVICE}/Front")(b"", metadata=metadata, timeout=5)
            reply = await call
            returned = dict(await call.trailing_metadata())[observe.REQUEST_ID]
    return seen["front"], seen["back"], str(returned), reply.decode()


def test_the_request_id_a_caller_sends_follows_the_call_to_the_next_service() -> None:
    front, back, returned, reply = asyncio.run(_chain("chain-7"))
    assert reply == "back"
    assert front == back == returned == "chain-7"


def test_a_request_id_made_by_the_first_service_follows_the_call_too() -> None:
    front, back, returned, _ = asyncio.run(_chain(None))
    assert re.fullmatch(r"[0-9a-f]{32}", front)
    assert front == back == returned


def test_outgoing_calls_are_timed_by_target_method_and_code() -> None:
    labels = {"target": SERVICE, "method": "Back", "code": "OK"}
    before = _client_count(labels)
    asyncio.run(_chain("timed"))
    assert _client_count(labels) == before + 1


def _client_count(labels: dict[str, str]) -> float:
    for family in observe.CLIENT_LATENCY.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels == labels:
                return sample.value
    return 0.0


async def _slow_call(how: str, before: float) -> None:
    """A call refused, or one to a slow handler whose deadline passes ("late") or that the
    client cancels ("cancel"); returns once the server has counted it (past `before`)."""
    started = asyncio.Event()

    async def slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started.set()
        await asyncio.sleep(30)
        return b""

    async def refusing(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise InvalidArgument("k must be positive")

    handlers = {
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Refusing": grpc.unary_unary_rpc_method_handler(refusing),
    }
    interceptors = [observe.ObserveInterceptor(), ErrorInterceptor()]
    async with (
        serving(handlers, interceptors) as address,
        grpc.aio.insecure_channel(address) as chan,
    ):
        if how == "refused":
            await refused(chan.unary_unary(f"/{SERVICE}/Refusing")(b"", timeout=5))
        else:
            call = chan.unary_unary(f"/{SERVICE}/Slow")(b"", timeout=0.5 if how == "late" else 5)
            await started.wait()
            if how == "cancel":
                call.cancel()
            with pytest.raises((grpc.aio.AioRpcError, asyncio.CancelledError)):
                await call
        for _ in range(100):  # the server side ends a moment after the client's
            if _served(_METHODS[how], _CODES[how]) > before:
                return
            await asyncio.sleep(0.05)


_CODES = {"late": "DEADLINE_EXCEEDED", "cancel": "CANCELLED", "refused": "INVALID_ARGUMENT"}
_METHODS = {"late": "Slow", "cancel": "Slow", "refused": "Refusing"}


def _served(method: str, code: str) -> float:
    labels = {"service": SERVICE, "method": method, "code": code}
    for family in observe.REQUESTS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels == labels:
                return sample.value
    return 0.0


@pytest.mark.parametrize("how", ["late", "cancel", "refused"])
def test_a_call_cancelled_late_or_refused_is_counted_under_its_final_code(how: str) -> None:
    before = _served(_METHODS[how], _CODES[how])
    asyncio.run(_slow_call(how, before))
    assert _served(_METHODS[how], _CODES[how]) == before + 1
