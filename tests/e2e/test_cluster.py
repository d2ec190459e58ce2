"""The whole search path through the real cluster: what a caller of the gateway relies on.

The tests run in file order; the last one kills a shard, so it stays last.
"""

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from catalog.split import is_held_out
from common.paths import partition_of
from common.routing import shard_of
from infra import cluster
from protos.visualsearch.v1 import gateway_pb2, taxonomy_pb2, taxonomy_pb2_grpc
from tests.e2e.conftest import Running

pytestmark = pytest.mark.slow


def _search(running: Running, image: bytes, k: int = 10) -> gateway_pb2.SearchResponse:
    request = gateway_pb2.SearchByImageRequest(image=image, k=k)
    response: gateway_pb2.SearchResponse = running.stub.SearchByImage(request, timeout=10)
    return response


def test_a_catalog_image_finds_its_own_item_first(running: Running) -> None:
    items = running.catalog.items[::97][:20]
    for item in items:
        response = _search(running, running.catalog.image_bytes(item.id))
        assert response.results[0].item_id == item.id, (item, response.results[:3])
        assert not response.partial


def test_most_of_the_top_ten_share_the_query_leaf(running: Running) -> None:
    queries = [item for item in running.catalog.items if is_held_out(item.id)][:60]
    shares = []
    for item in queries:
        results = _search(running, running.catalog.image_bytes(item.id), k=11).results
        neighbours = [r for r in results if r.item_id != item.id][:10]
        assert len(neighbours) == 10
        shares.append(sum(r.leaf == item.leaf for r in neighbours) / 10)
    assert sum(shares) / len(shares) >= 0.8


def test_results_carry_the_taxonomy_record(running: Running) -> None:
    item = running.catalog.items[5]
    top = _search(running, running.catalog.image_bytes(item.id)).results[0]
    assert (top.leaf, top.title, top.colour) == (item.leaf, item.title, item.colour)


def test_similar_products_leaves_the_product_out(running: Running) -> None:
    item = running.catalog.items[11]
    request = gateway_pb2.SimilarProductsRequest(product_id=item.id, k=10)
    response = running.stub.SimilarProducts(request, timeout=10)
    ids = [r.item_id for r in response.results]
    assert len(ids) == 10 and item.id not in ids
    assert sum(r.leaf == item.leaf for r in response.results) >= 8


def test_category_filter_keeps_results_inside_it(running: Running) -> None:
    item = running.catalog.items[0]
    other = next(
        i for i in running.catalog.items if i.leaf.split("/")[0] != item.leaf.split("/")[0]
    )
    category = other.leaf.rsplit("/", 1)[0]
    request = gateway_pb2.SearchByImageRequest(
        image=running.catalog.image_bytes(item.id), k=10, categories=[category]
    )
    response = running.stub.SearchByImage(request, timeout=10)
    assert response.results
    assert all(r.leaf.startswith(category + "/") for r in response.results)


def test_a_deleted_item_stops_appearing_and_comes_back_when_ingested(running: Running) -> None:
    item = running.catalog.items[42]
    image = running.catalog.image_bytes(item.id)
    assert _search(running, image).results[0].item_id == item.id
    deleted = running.stub.DeleteProducts(
        gateway_pb2.DeleteProductsRequest(ids=[item.id]), timeout=10
    )
    assert deleted.deleted == 1
    assert item.id not in [r.item_id for r in _search(running, image, k=50).results]
    with pytest.raises(grpc.RpcError) as raised:
        running.stub.SimilarProducts(
            gateway_pb2.SimilarProductsRequest(product_id=item.id), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    again = gateway_pb2.IngestItem(id=item.id, image=image, leaf=item.leaf, title=item.title)
    response = running.stub.Ingest(gateway_pb2.IngestRequest(items=[again]), timeout=30)
    assert (response.ingested, list(response.errors)) == (1, [])
    assert _search(running, image).results[0].item_id == item.id


def _ingest(running: Running, item_id: str, image: bytes, leaf: str) -> None:
    request = gateway_pb2.IngestRequest(
        items=[gateway_pb2.IngestItem(id=item_id, image=image, leaf=leaf)]
    )
    response = running.stub.Ingest(request, timeout=30)
    assert (response.ingested, list(response.errors)) == (1, [])


def _ids_within(running: Running, image: bytes, category: str) -> list[str]:
    request = gateway_pb2.SearchByImageRequest(image=image, k=50, categories=[category])
    return [r.item_id for r in running.stub.SearchByImage(request, timeout=10).results]


def test_an_item_given_a_leaf_on_another_shard_moves_there(running: Running) -> None:
    level, shards = running.config.partition_level, running.config.shard_addresses
    item = running.catalog.items[20]
    image = running.catalog.image_bytes(item.id)
    old = partition_of(item.leaf, level)
    new_leaf = next(
        leaf
        for leaf in running.catalog.leaves()
        if shard_of(partition_of(leaf, level), shards) != shard_of(old, shards)
    )
    _ingest(running, item.id, image, new_leaf)
    assert item.id not in _ids_within(running, image, old)
    assert _ids_within(running, image, partition_of(new_leaf, level))[0] == item.id

    _ingest(running, item.id, image, item.leaf)
    assert item.id not in _ids_within(running, image, partition_of(new_leaf, level))
    top = _search(running, image).results[0]
    assert (top.item_id, top.leaf) == (item.id, item.leaf)


def test_undecodable_image_is_invalid_argument_saying_why(running: Running) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        _search(running, b"this is not an image")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "image" in raised.value.details().lower()


def test_empty_image_and_bad_k_are_invalid_argument(running: Running) -> None:
    for request in (
        gateway_pb2.SearchByImageRequest(image=b""),
        gateway_pb2.SearchByImageRequest(
            image=running.catalog.image_bytes(running.catalog.items[0].id), k=-1
        ),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            running.stub.SearchByImage(request, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_product_is_not_found(running: Running) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        running.stub.SimilarProducts(
            gateway_pb2.SimilarProductsRequest(product_id="no-such-id"), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-id" in raised.value.details()


def test_a_bad_item_in_an_ingest_batch_does_not_sink_the_good_ones(running: Running) -> None:
    good = running.catalog.items[7]
    items = [
        gateway_pb2.IngestItem(id="broken-1", image=b"\x89PNG garbage", title="broken"),
        gateway_pb2.IngestItem(
            id=good.id, image=running.catalog.image_bytes(good.id), leaf=good.leaf
        ),
        gateway_pb2.IngestItem(
            id="unknown-leaf", image=running.catalog.image_bytes(good.id), leaf="No/Such/Leaf"
        ),
    ]
    response = running.stub.Ingest(gateway_pb2.IngestRequest(items=items), timeout=30)
    assert response.ingested == 2
    assert [(e.index, e.item_id, e.code) for e in response.errors] == [
        (0, "broken-1", "INVALID_ARGUMENT")
    ]
    with _taxonomy(running) as taxonomy:
        stored = taxonomy.GetItems(taxonomy_pb2.GetItemsRequest(ids=["unknown-leaf"]), timeout=10)
        listed = taxonomy.ListSuggestions(taxonomy_pb2.ListSuggestionsRequest(), timeout=10)
    # A seller's path the tree lacks: the item waits in the classifier's leaf, the path is proposed.
    assert stored.items[0].leaf_source == taxonomy_pb2.LEAF_SOURCE_PREDICTED
    assert ("No/Such/Leaf", "new_path", ["unknown-leaf"]) in [
        (g.path, g.kind, list(g.example_items)) for g in listed.suggestions
    ]


@contextmanager
def _taxonomy(running: Running) -> Iterator[taxonomy_pb2_grpc.TaxonomyStub]:
    address = running.config.address(running.config.taxonomy.port)
    with grpc.insecure_channel(address) as channel:
        yield taxonomy_pb2_grpc.TaxonomyStub(channel)


def _rename(taxonomy: taxonomy_pb2_grpc.TaxonomyStub, path: str, name: str) -> None:
    version = taxonomy.GetTree(taxonomy_pb2.GetTreeRequest(), timeout=10).version
    op = taxonomy_pb2.EditOp(
        rename=taxonomy_pb2.Rename(node=taxonomy_pb2.NodeRef(path=path), name=name)
    )
    taxonomy.Edit(taxonomy_pb2.EditRequest(base_version=version, op=op), timeout=10)


def test_search_follows_a_taxonomy_edit_without_a_restart(running: Running) -> None:
    item = running.catalog.items[20]
    parent, old_name = item.leaf.rsplit("/", 1)
    renamed = f"{parent}/{old_name} (curated)"
    image = running.catalog.image_bytes(item.id)
    with _taxonomy(running) as taxonomy:
        _rename(taxonomy, item.leaf, f"{old_name} (curated)")
        try:
            time.sleep(1.0)  # the gateway hears of the edit through the change stream
            request = gateway_pb2.SearchByImageRequest(image=image, k=5, categories=[renamed])
            response = running.stub.SearchByImage(request, timeout=10)
            assert response.results[0].item_id == item.id
            assert all(r.leaf == renamed for r in response.results)
        finally:
            _rename(taxonomy, renamed, old_name)


def test_search_finds_an_item_whose_partition_an_edit_renamed(running: Running) -> None:
    """Its vector stays in the partition it was indexed in until shards follow the edits."""
    config = running.config
    item = running.catalog.items[30]
    partition = partition_of(item.leaf, config.partition_level)
    parent, name = partition.rsplit("/", 1)
    renamed = next(
        f"{name} {n}"
        for n in range(1, 100)
        if shard_of(f"{parent}/{name} {n}", config.shard_addresses)
        != shard_of(partition, config.shard_addresses)
    )
    with _taxonomy(running) as taxonomy:
        _rename(taxonomy, partition, renamed)
        try:
            request = gateway_pb2.SimilarProductsRequest(product_id=item.id, k=5)
            response = running.stub.SimilarProducts(request, timeout=10)
            assert len(response.results) == 5
            assert all(r.item_id != item.id for r in response.results)
            # The model predicts the old path; it resolves, and results carry the new one.
            top = _search(running, running.catalog.image_bytes(item.id)).results[0]
            assert (top.item_id, top.leaf.startswith(f"{parent}/{renamed}/")) == (item.id, True)
        finally:
            _rename(taxonomy, f"{parent}/{renamed}", name)


def test_with_a_shard_killed_the_answer_is_partial_and_in_time(running: Running) -> None:
    """Kills the shard that holds the query's partition; stays the last test of the file."""
    config = running.config
    item = running.catalog.items[3]
    image = running.catalog.image_bytes(item.id)
    shard = shard_of(partition_of(item.leaf, config.partition_level), config.shard_addresses)
    name = f"shard-{config.shard_addresses.index(shard)}"
    pids = json.loads((Path(config.run_dir) / cluster.PID_FILE).read_text())
    os.kill(pids[name], signal.SIGKILL)

    # The call's own deadline is the check: it fails with DEADLINE_EXCEEDED if the gateway waits.
    response = running.stub.SearchByImage(
        gateway_pb2.SearchByImageRequest(image=image, k=10), timeout=config.gateway.deadline_s + 1.0
    )
    assert response.partial
    assert list(response.failed_shards) == [shard]
    assert item.id not in [r.item_id for r in response.results]
