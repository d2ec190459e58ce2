"""The taxonomy server as its own process on a loopback port, called over gRPC."""

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy.orm import sessionmaker

from infra import process
from protos.visualsearch.v1 import common_pb2, taxonomy_pb2, taxonomy_pb2_grpc
from taxonomy_svc import store
from taxonomy_svc.db import make_engine
from taxonomy_svc.store import ItemRecord

TSHIRTS = "Apparel/Topwear/Tshirts"
SHIRTS = "Apparel/Topwear/Shirts"
JEANS = "Apparel/Bottomwear/Jeans"
SHOES = "Footwear/Shoes/Casual Shoes"
TIMEOUT = 5.0


def _seed(database: Path) -> None:
    engine = make_engine(str(database))
    with sessionmaker(engine).begin() as session:
        store.add_paths(session, [TSHIRTS, SHIRTS, JEANS, SHOES])
        store.put_items(
            session,
            [
                ItemRecord("tee", TSHIRTS, "given", "Blue tee", "Blue", "Casual"),
                ItemRecord("shirt", SHIRTS, "predicted", "White shirt", "White", "Formal"),
                ItemRecord("shoe", SHOES, "given", "Sneaker", "Black", "Sports"),
            ],
        )
    engine.dispose()


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Starts the server on a free port; stops it with SIGTERM and expects a clean exit."""
    folder = tmp_path_factory.mktemp("taxonomy")
    _seed(folder / "taxonomy.sqlite")
    (folder / "cluster.toml").write_text("")
    (port,) = process.free_ports()
    env = {
        "VS_CONFIG": str(folder / "cluster.toml"),
        "VS_TAXONOMY_PORT": str(port),
        "VS_TAXONOMY_DATABASE": str(folder / "taxonomy.sqlite"),
        "VS_TAXONOMY_MAX_DISTANCE": "4",
        "VS_TAXONOMY_VISUAL_WEIGHT": "0.5",
    }
    log = folder / "server.log"
    server = process.start("taxonomy_svc.server", [], f"127.0.0.1:{port}", log, env)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        returncode = process.stop(server)
    assert returncode == 0, log.read_text()


@pytest.fixture
def stub(address: str) -> Iterator[taxonomy_pb2_grpc.TaxonomyStub]:
    with grpc.insecure_channel(address) as channel:
        yield taxonomy_pb2_grpc.TaxonomyStub(channel)


def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    return raised.value.code()  # type: ignore[no-any-return]


def test_get_tree_lists_the_nodes_and_the_version(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    tree = stub.GetTree(taxonomy_pb2.GetTreeRequest(), timeout=TIMEOUT)
    assert tree.version == 1
    nodes = {node.path: node for node in tree.nodes}
    assert len(nodes) == 9
    tshirts = nodes[TSHIRTS]
    assert (tshirts.name, tshirts.parent, tshirts.depth, tshirts.is_leaf) == (
        "Tshirts",
        "Apparel/Topwear",
        3,
        True,
    )
    assert (nodes["Apparel"].parent, nodes["Apparel"].is_leaf) == ("", False)


def test_ancestors(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    reply = stub.Ancestors(taxonomy_pb2.AncestorsRequest(path=TSHIRTS), timeout=TIMEOUT)
    assert list(reply.paths) == ["Apparel", "Apparel/Topwear"]
    request = taxonomy_pb2.AncestorsRequest(path="Apparel/Nope")
    assert _code(lambda: stub.Ancestors(request, timeout=TIMEOUT)) == grpc.StatusCode.NOT_FOUND


def test_put_get_delete_items(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    items = [
        taxonomy_pb2.Item(
            id="new", leaf=JEANS, leaf_source=taxonomy_pb2.LEAF_SOURCE_PREDICTED, title="Jeans"
        ),
        taxonomy_pb2.Item(id="bad", leaf="Apparel", leaf_source=taxonomy_pb2.LEAF_SOURCE_GIVEN),
        taxonomy_pb2.Item(id="unspecified", leaf=JEANS),
    ]
    reply = stub.PutItems(taxonomy_pb2.PutItemsRequest(items=items), timeout=TIMEOUT)
    assert reply.stored == 1
    assert [(e.index, e.item_id, e.code) for e in reply.errors] == [
        (1, "bad", "INVALID_ARGUMENT"),
        (2, "unspecified", "INVALID_ARGUMENT"),
    ]
    got = stub.GetItems(taxonomy_pb2.GetItemsRequest(ids=["new", "bad", "tee"]), timeout=TIMEOUT)
    assert [item.id for item in got.items] == ["new", "tee"]
    assert got.items[0] == items[0]
    assert list(got.missing_ids) == ["bad"]
    deleted = stub.DeleteItems(taxonomy_pb2.DeleteItemsRequest(ids=["new"]), timeout=TIMEOUT)
    assert deleted.deleted == 1


def test_empty_ids_are_invalid(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    for request in (taxonomy_pb2.GetItemsRequest(), taxonomy_pb2.GetItemsRequest(ids=[""])):
        code = _code(lambda r=request: stub.GetItems(r, timeout=TIMEOUT))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    code = _code(lambda: stub.DeleteItems(taxonomy_pb2.DeleteItemsRequest(), timeout=TIMEOUT))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def _rerank_request(k: int = 10, prob: float = 1.0) -> taxonomy_pb2.RerankRequest:
    return taxonomy_pb2.RerankRequest(
        query_leaves=[common_pb2.LeafProb(leaf=TSHIRTS, prob=prob)],
        candidates=[
            # The shard's copy of the leaf is stale: the database says Shirts.
            taxonomy_pb2.Candidate(item_id="shirt", score=0.5, leaf=SHOES),
            taxonomy_pb2.Candidate(item_id="shoe", score=0.9, leaf=SHOES),
            taxonomy_pb2.Candidate(item_id="unrecorded", score=0.25, leaf=TSHIRTS),
            taxonomy_pb2.Candidate(item_id="tee", score=0.5, leaf=TSHIRTS),
        ],
        k=k,
    )


def test_rerank_uses_the_databases_leaves_and_attaches_items(
    stub: taxonomy_pb2_grpc.TaxonomyStub,
) -> None:
    reply = stub.Rerank(_rerank_request(), timeout=TIMEOUT)
    assert reply.dropped == 1  # the shoe, 6 edges away
    assert [(r.item.id, r.tree_distance) for r in reply.items] == [
        ("tee", 0),
        ("unrecorded", 0),
        ("shirt", 2),
    ]
    tee, unrecorded, shirt = reply.items
    assert (tee.item.title, tee.item.colour, tee.visual_score) == ("Blue tee", "Blue", 0.5)
    assert tee.score == pytest.approx(0.75)
    assert shirt.item.leaf == SHIRTS
    assert shirt.item.leaf_source == taxonomy_pb2.LEAF_SOURCE_PREDICTED
    assert unrecorded.item == taxonomy_pb2.Item(id="unrecorded", leaf=TSHIRTS)


def test_rerank_refuses_bad_k_and_probabilities(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    for request, word in ((_rerank_request(k=0), "k"), (_rerank_request(prob=1.5), "probab")):
        with pytest.raises(grpc.RpcError) as raised:
            stub.Rerank(request, timeout=TIMEOUT)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert word in raised.value.details()
