"""The index shard server as a real process on loopback: its RPCs, validation and restart."""

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from common.vectors import to_bytes
from infra import process
from protos.visualsearch.v1 import index_pb2, index_pb2_grpc

DIM = 8
TOPS = "Apparel/Topwear"
TIMEOUT_S = 10.0


class Server:
    """`python -m index_svc.server --shard 0` on a free port, with its data under `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        (port,) = process.free_ports()
        env = {
            "VS_CONFIG": str(data_dir / "absent.toml"),
            "VS_INDEX_PORTS": str(port),
            "VS_INDEX_DATA_DIR": str(data_dir),
            "VS_INDEX_MAX_BATCH": "4",
            "VS_GRACE_S": "1",
        }
        address = f"127.0.0.1:{port}"
        log = data_dir / "server.log"
        self.process = process.start("index_svc.server", ["--shard", "0"], address, log, env)
        self.channel = grpc.insecure_channel(address)
        self.stub = index_pb2_grpc.IndexStub(self.channel)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not exit; returns the exit code."""
        self.channel.close()
        return process.stop(self.process)


def _vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _pb(item_id: str, seed: int, partition: str = TOPS) -> index_pb2.Vector:
    return index_pb2.Vector(
        item_id=item_id,
        partition=partition,
        leaf=f"{partition}/Tshirts",
        vector=to_bytes(_vector(seed)),
        model_version="m1",
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_upsert_search_fetch_stats_and_delete(server: Server) -> None:
    stub = server.stub
    upserted = stub.Upsert(
        index_pb2.UpsertRequest(vectors=[_pb("a", 1), _pb("b", 2), _pb("c", 3)]),
        timeout=TIMEOUT_S,
    )
    search = index_pb2.SearchVectorsRequest(
        query=to_bytes(_vector(2)), partitions=[TOPS, "Footwear/Shoes"], k=2, exclude_ids=["x"]
    )
    found = stub.SearchVectors(search, timeout=TIMEOUT_S)
    fetched = stub.Fetch(index_pb2.FetchRequest(item_ids=["a", "zz"]), timeout=TIMEOUT_S)
    stats = stub.Stats(index_pb2.StatsRequest(), timeout=TIMEOUT_S)
    deleted = stub.DeleteVectors(
        index_pb2.DeleteVectorsRequest(item_ids=["a", "zz"]), timeout=TIMEOUT_S
    )

    assert upserted.upserted == 3 and not upserted.errors
    assert [n.item_id for n in found.neighbors[:1]] == ["b"] and len(found.neighbors) == 2
    assert found.neighbors[0].leaf == f"{TOPS}/Tshirts" and found.neighbors[0].partition == TOPS
    assert list(found.missing_partitions) == ["Footwear/Shoes"]
    assert [v.item_id for v in fetched.vectors] == ["a"] and list(fetched.missing_ids) == ["zz"]
    assert np.frombuffer(fetched.vectors[0].vector, "<f4").tolist() == _vector(1).tolist()
    assert [(p.partition, p.count, p.dim, p.model_version) for p in stats.partitions] == [
        (TOPS, 3, DIM, "m1")
    ]
    assert deleted.deleted == 1


def test_bad_records_fail_alone(server: Server) -> None:
    odd = index_pb2.Vector(item_id="odd", partition=TOPS, leaf=TOPS, vector=b"12345")
    request = index_pb2.UpsertRequest(vectors=[_pb("a", 1), odd, _pb("", 2)])

    answer = server.stub.Upsert(request, timeout=TIMEOUT_S)

    assert answer.upserted == 1
    assert [(e.index, e.item_id, e.code) for e in answer.errors] == [
        (1, "odd", "INVALID_ARGUMENT"),
        (2, "", "INVALID_ARGUMENT"),
    ]


@pytest.mark.parametrize(
    "request_",
    [
        index_pb2.SearchVectorsRequest(query=to_bytes(_vector(1)), partitions=[TOPS], k=0),
        index_pb2.SearchVectorsRequest(query=to_bytes(_vector(1)), partitions=[TOPS], k=1001),
        index_pb2.SearchVectorsRequest(query=to_bytes(_vector(1)), k=3),
        index_pb2.SearchVectorsRequest(query=b"12345", partitions=[TOPS], k=3),
    ],
    ids=["k-zero", "k-too-big", "no-partitions", "bad-query"],
)
def test_bad_searches_are_invalid_arguments(
    server: Server, request_: index_pb2.SearchVectorsRequest
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        server.stub.SearchVectors(request_, timeout=TIMEOUT_S)

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_batches_over_the_limit_are_invalid_arguments(server: Server) -> None:
    five = [f"id{i}" for i in range(5)]
    calls = [
        lambda: server.stub.Upsert(
            index_pb2.UpsertRequest(vectors=[_pb(i, 1) for i in five]), timeout=TIMEOUT_S
        ),
        lambda: server.stub.Fetch(index_pb2.FetchRequest(item_ids=five), timeout=TIMEOUT_S),
        lambda: server.stub.DeleteVectors(
            index_pb2.DeleteVectorsRequest(item_ids=five), timeout=TIMEOUT_S
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as error:
            call()
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_stopped_server_restarts_with_its_vectors(tmp_path: Path) -> None:
    first = Server(tmp_path)
    try:
        first.stub.Upsert(index_pb2.UpsertRequest(vectors=[_pb("a", 1)]), timeout=TIMEOUT_S)
    finally:
        code = first.stop()
    assert code == 0
    assert (tmp_path / "shard-0" / "CURRENT").exists()

    second = Server(tmp_path)
    try:
        fetched = second.stub.Fetch(index_pb2.FetchRequest(item_ids=["a"]), timeout=TIMEOUT_S)
    finally:
        second.stop()
    assert [v.item_id for v in fetched.vectors] == ["a"]
