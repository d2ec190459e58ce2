"""The gateway as a process in front of a real taxonomy and shard and two shards that are stuck,
one too slow, one refusing every query: what `partial` means on the wire, the caller's deadline,
and the work below a call cancelled with it."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest

from infra import process
from protos.visualsearch.v1 import gateway_pb2, gateway_pb2_grpc
from tests.shard_server import Service, fetch, item, put, running
from tests.stuck_shard import CANCELLED
from tests.taxonomy_server import READER, WRITER, bearer

# Partitions hash to the three shards (crc32 of the node id): 102 Apparel/Topwear to the real
# shard, 302 Accessories/Bags to the slow one, 202 Footwear/Shoes to the refusing one.
ITEMS = [("t1", "Apparel/Topwear/Tshirts", 1), ("t2", "Apparel/Topwear/Shirts", 2)]
WITH_SLOW = ["Apparel", "Accessories"]
WITH_REFUSING = ["Apparel", "Footwear"]
IMAGE_LIMIT = 1000
AS_READER, AS_WRITER = bearer(READER), bearer(WRITER)


@dataclass
class Front:
    gateway: gateway_pb2_grpc.VisualSearchStub
    slow: Service
    refusing: Service
    seq: int


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    folder = tmp_path_factory.mktemp("gateway")
    settings = {"VS_METRICS_OFFSET": "0"}
    # One draw of ports for every process: ports drawn apart could be drawn twice.
    with running(folder, more_shards=2, **settings) as cluster:
        slow_port, refusing_port = cluster.more_ports
        stuck = {
            mode: Service("tests.stuck_shard", [f"127.0.0.1:{port}", mode], f"127.0.0.1:{port}",
                          folder / f"{mode}.log", {})
            for mode, port in (("slow", slow_port), ("refuse", refusing_port))
        }  # fmt: skip
        gateway = Service("gateway.server", [], "", folder / "gateway.log", {})
        try:
            for service in stuck.values():
                service.start()
            gateway_port, encoder_port = process.free_ports(2)  # the others are bound by now
            seq = put(cluster.record(), [item(i, leaf, seed) for i, leaf, seed in ITEMS])
            fetch(cluster.index(), ["t1"], seq)  # the real shard has applied the commit
            env = {
                **cluster.taxonomy.env,
                **settings,
                "VS_GATEWAY_PORT": str(gateway_port),
                "VS_ENCODER_PORTS": str(encoder_port),  # nothing there: these searches need none
                "VS_AUTH_TOKEN": READER,
                "VS_AUTH_TOKENS_FILE": str(folder / "tokens.toml"),  # the callers of tests/
                "VS_GATEWAY_DEADLINE_S": "30",  # the caller's deadline decides
                "VS_GATEWAY_EJECT_AFTER": "1000",  # always ask the stuck shards
                "VS_GATEWAY_MAX_BATCH": "4",
                "VS_ENCODER_MAX_IMAGE_BYTES": str(IMAGE_LIMIT),
            }
            gateway.address, gateway.env = f"127.0.0.1:{gateway_port}", env
            gateway.start()
            with grpc.insecure_channel(gateway.address) as channel:
                stub = gateway_pb2_grpc.VisualSearchStub(channel)
                yield Front(stub, stuck["slow"], stuck["refuse"], seq)
        finally:
            for service in (gateway, *stuck.values()):
                if service.child is not None:
                    process.stop(service.child)


def similar(front: Front, categories: list[str]) -> gateway_pb2.SimilarProductsRequest:
    return gateway_pb2.SimilarProductsRequest(
        product_id="t1", k=5, categories=categories, min_seq=front.seq
    )


def test_shards_that_answer_give_a_whole_answer(front: Front) -> None:
    response = front.gateway.SimilarProducts(
        similar(front, ["Apparel"]), timeout=10, metadata=AS_READER
    )

    assert not response.partial and list(response.failed_shards) == []
    assert [r.item_id for r in response.results] == ["t2"]


def test_a_slow_shard_leaves_a_partial_answer_inside_the_callers_deadline(front: Front) -> None:
    started = time.monotonic()
    response = front.gateway.SimilarProducts(
        similar(front, WITH_SLOW), timeout=1.5, metadata=AS_READER
    )
    took = time.monotonic() - started

    assert took < 1.5
    assert response.partial and list(response.failed_shards) == [front.slow.address]
    assert [r.item_id for r in response.results] == ["t2"]  # the real shard's answer stands
    _wait_for(lambda: CANCELLED in front.slow.output())  # its search did not run on


def test_a_cancelled_call_cancels_the_slow_shards_work(front: Front) -> None:
    before = front.slow.output().count(CANCELLED)
    call = front.gateway.SimilarProducts.future(
        similar(front, WITH_SLOW), timeout=30, metadata=AS_READER
    )
    time.sleep(1.0)  # the search is waiting on the slow shard

    assert call.cancel()

    _wait_for(lambda: front.slow.output().count(CANCELLED) > before)
    line = [line for line in front.slow.output().splitlines() if CANCELLED in line][-1]
    assert float(line.split()[-1].rstrip("s")) < 10  # called off, not run out at 60 s


def test_a_shard_that_refuses_the_query_is_an_error_with_its_code_not_partial(
    front: Front,
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        front.gateway.SimilarProducts(similar(front, WITH_REFUSING), timeout=10, metadata=AS_READER)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "16" in (refused.value.details() or "")  # the shard's own reason


def test_search_many_answers_each_query_in_order(front: Front) -> None:
    request = gateway_pb2.SearchManyRequest(
        queries=[
            gateway_pb2.Query(product_id="t1"),
            gateway_pb2.Query(product_id="missing"),
            gateway_pb2.Query(),
            gateway_pb2.Query(product_id="t2"),
        ],
        k=5,
        categories=["Apparel"],
        min_seq=front.seq,
    )

    answers = front.gateway.SearchMany(request, timeout=10, metadata=AS_READER).answers

    assert [a.WhichOneof("outcome") for a in answers] == ["response", "error", "error", "response"]
    assert [r.item_id for r in answers[0].response.results] == ["t2"]
    assert [r.item_id for r in answers[3].response.results] == ["t1"]
    assert (answers[1].error.index, answers[1].error.code) == (1, "NOT_FOUND")
    assert answers[1].error.item_id == "missing"
    assert (answers[2].error.index, answers[2].error.code) == (2, "INVALID_ARGUMENT")


def _refused(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refused.value.code(), refused.value.details() or ""


def test_each_limit_is_refused_naming_it(front: Front) -> None:
    search = front.gateway.SearchByImage
    many = gateway_pb2.SearchManyRequest(queries=[gateway_pb2.Query(product_id="t1")] * 5)
    big = gateway_pb2.SearchByImageRequest(image=b"x" * (IMAGE_LIMIT + 1))

    assert _refused(lambda: search(big, timeout=10, metadata=AS_READER)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"image is {IMAGE_LIMIT + 1:,} bytes; the limit is encoder.max_image_bytes={IMAGE_LIMIT:,}",
    )
    code, message = _refused(lambda: front.gateway.SearchMany(many, metadata=AS_READER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "gateway.max_batch=4" in message
    request = gateway_pb2.SearchByImageRequest(image=b"x", k=101)
    code, message = _refused(lambda: search(request, timeout=10, metadata=AS_READER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "k=101" in message


def test_an_ingest_refuses_an_image_over_the_limit_alone_and_records_the_rest(front: Front) -> None:
    request = gateway_pb2.IngestRequest(
        items=[gateway_pb2.IngestItem(id="big", image=b"x" * (IMAGE_LIMIT + 1))]
    )

    response = front.gateway.Ingest(request, timeout=10, metadata=AS_WRITER)

    assert response.ingested == 0 and response.seq == 0
    assert [(e.index, e.item_id, e.code) for e in response.errors] == [
        (0, "big", "INVALID_ARGUMENT")
    ]


def test_callers_need_a_known_token_with_the_methods_role(front: Front) -> None:
    request = similar(front, ["Apparel"])
    ingest = gateway_pb2.IngestRequest(items=[gateway_pb2.IngestItem(id="a", image=b"x")])

    code, _ = _refused(lambda: front.gateway.SimilarProducts(request, timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = _refused(
        lambda: front.gateway.SimilarProducts(request, timeout=10, metadata=bearer("nope"))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, message = _refused(lambda: front.gateway.Ingest(ingest, timeout=10, metadata=AS_READER))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "'writer'" in message


def _wait_for(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
