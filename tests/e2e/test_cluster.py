"""The whole search path through the real cluster: what a caller of the gateway relies on.

The tests run in file order; the last one kills a shard, so it stays last.
"""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from catalog.split import is_held_out
from common.paths import partition_of
from infra import cluster, process
from protos.visualsearch.v1 import (
    gateway_pb2,
    index_pb2,
    index_pb2_grpc,
    taxonomy_pb2,
    taxonomy_pb2_grpc,
)
from tests.e2e.conftest import Running

pytestmark = pytest.mark.slow


def _search(
    running: Running, image: bytes, k: int = 10, min_seq: int = 0
) -> gateway_pb2.SearchResponse:
    request = gateway_pb2.SearchByImageRequest(image=image, k=k, min_seq=min_seq)
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


def test_a_leaf_filter_below_the_partitions_is_searched_inside_the_index_so_k_come_back(
    running: Running,
) -> None:
    item = running.catalog.items[0]
    counts = Counter(i.leaf for i in running.catalog.items)
    leaf = next(  # a leaf of another top node, deeper than the partitions, with k items
        leaf
        for leaf, count in counts.most_common()
        if count >= 10 and leaf.split("/")[0] != item.leaf.split("/")[0]
        and len(leaf.split("/")) > running.config.partition_level
    )  # fmt: skip
    request = gateway_pb2.SearchByImageRequest(
        image=running.catalog.image_bytes(item.id), k=10, categories=[leaf]
    )

    response = running.stub.SearchByImage(request, timeout=10)

    assert [r.leaf for r in response.results] == [leaf] * 10


def test_a_deleted_item_stops_appearing_and_comes_back_when_ingested(running: Running) -> None:
    item = running.catalog.items[42]
    image = running.catalog.image_bytes(item.id)
    assert _search(running, image).results[0].item_id == item.id
    deleted = running.stub.DeleteProducts(
        gateway_pb2.DeleteProductsRequest(ids=[item.id]), timeout=10
    )
    assert deleted.deleted == 1
    seen = _search(running, image, k=50, min_seq=deleted.seq).results
    assert item.id not in [r.item_id for r in seen]
    with pytest.raises(grpc.RpcError) as raised:
        running.stub.SimilarProducts(
            gateway_pb2.SimilarProductsRequest(product_id=item.id), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    again = gateway_pb2.IngestItem(id=item.id, image=image, leaf=item.leaf, title=item.title)
    response = running.stub.Ingest(gateway_pb2.IngestRequest(items=[again]), timeout=30)
    assert (response.ingested, list(response.errors)) == (1, [])
    assert _search(running, image, min_seq=response.seq).results[0].item_id == item.id


def _ingest(running: Running, item_id: str, image: bytes, leaf: str) -> None:
    request = gateway_pb2.IngestRequest(
        items=[gateway_pb2.IngestItem(id=item_id, image=image, leaf=leaf)], wait_visible=True
    )
    response = running.stub.Ingest(request, timeout=30)
    assert (response.ingested, list(response.errors)) == (1, [])


def _ids_within(running: Running, image: bytes, category: str) -> list[str]:
    request = gateway_pb2.SearchByImageRequest(image=image, k=50, categories=[category])
    return [r.item_id for r in running.stub.SearchByImage(request, timeout=10).results]


def test_an_item_given_a_leaf_in_another_partition_moves_there(running: Running) -> None:
    level = running.config.partition_level
    item = running.catalog.items[20]
    image = running.catalog.image_bytes(item.id)
    old = partition_of(item.leaf, level)
    new_leaf = next(leaf for leaf in running.catalog.leaves() if partition_of(leaf, level) != old)
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


def _edit(taxonomy: taxonomy_pb2_grpc.TaxonomyStub, op: taxonomy_pb2.EditOp) -> int:
    """Applies an edit; returns the feed position of its commit."""
    version = taxonomy.GetTree(taxonomy_pb2.GetTreeRequest(), timeout=10).version
    request = taxonomy_pb2.EditRequest(base_version=version, op=op)
    response: taxonomy_pb2.EditResponse = taxonomy.Edit(request, timeout=10)
    return response.seq


def _rename(taxonomy: taxonomy_pb2_grpc.TaxonomyStub, path: str, name: str) -> int:
    ref = taxonomy_pb2.NodeRef(path=path)
    return _edit(taxonomy, taxonomy_pb2.EditOp(rename=taxonomy_pb2.Rename(node=ref, name=name)))


def _move(taxonomy: taxonomy_pb2_grpc.TaxonomyStub, path: str, parent: str) -> int:
    node, to = taxonomy_pb2.NodeRef(path=path), taxonomy_pb2.NodeRef(path=parent)
    return _edit(taxonomy, taxonomy_pb2.EditOp(move=taxonomy_pb2.Move(node=node, parent=to)))


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
    """Partitions are named by node id: a rename moves nothing, and old paths resolve."""
    config = running.config
    item = running.catalog.items[30]
    partition = partition_of(item.leaf, config.partition_level)
    parent, name = partition.rsplit("/", 1)
    with _taxonomy(running) as taxonomy:
        seq = _rename(taxonomy, partition, f"{name} renamed")
        try:
            request = gateway_pb2.SimilarProductsRequest(product_id=item.id, k=5, min_seq=seq)
            response = running.stub.SimilarProducts(request, timeout=10)
            assert len(response.results) == 5
            assert all(r.item_id != item.id for r in response.results)
            # The model predicts the old path; it resolves, and results carry the new one.
            top = _search(running, running.catalog.image_bytes(item.id)).results[0]
            prefix = f"{parent}/{name} renamed/"
            assert (top.item_id, top.leaf.startswith(prefix)) == (item.id, True)
        finally:
            _rename(taxonomy, f"{parent}/{name} renamed", name)


def test_a_leaf_moved_to_another_partition_takes_its_vectors_along(running: Running) -> None:
    """The shards follow the edit on the feed: no restart, no re-ingest."""
    level = running.config.partition_level
    item = running.catalog.items[11]
    image = running.catalog.image_bytes(item.id)
    old_parent, name = item.leaf.rsplit("/", 1)
    new_parent = next(
        partition_of(leaf, level)
        for leaf in running.catalog.leaves()
        if partition_of(leaf, level) != partition_of(item.leaf, level)
        and not leaf.endswith(f"/{name}")
    )
    with _taxonomy(running) as taxonomy:
        seq = _move(taxonomy, item.leaf, new_parent)
        try:
            request = gateway_pb2.SearchByImageRequest(
                image=image, k=10, categories=[new_parent], min_seq=seq
            )
            moved = running.stub.SearchByImage(request, timeout=10)
            assert moved.results[0].item_id == item.id
            assert moved.results[0].leaf == f"{new_parent}/{name}"
            request = gateway_pb2.SearchByImageRequest(
                image=image, k=50, categories=[partition_of(item.leaf, level)], min_seq=seq
            )
            left = running.stub.SearchByImage(request, timeout=10)
            assert item.id not in [r.item_id for r in left.results]
        finally:
            _move(taxonomy, f"{new_parent}/{name}", old_parent)


def _serving(taxonomy: taxonomy_pb2_grpc.TaxonomyStub, node: int) -> list[str] | None:
    """The shards serving a partition by the routing table (None: the configured rule)."""
    tree = taxonomy.GetTree(taxonomy_pb2.GetTreeRequest(), timeout=10)
    rows = [route for route in tree.routes if route.partition_id == node]
    return sorted(rows[0].serving) if rows and not rows[0].target else None


def _held(running: Running, shard: str) -> dict[str, int]:
    with grpc.insecure_channel(shard) as channel:
        stats = index_pb2_grpc.IndexStub(channel).Stats(index_pb2.StatsRequest(), timeout=10)
    return {p.partition: p.count for p in stats.partitions}


def test_a_partition_moved_away_and_back_loses_and_duplicates_nothing(running: Running) -> None:
    """MovePartition: the target builds, the routing flips, the shard left drops it; searches
    run all along."""
    config = running.config
    shard_a, shard_b = config.shard_addresses
    item = running.catalog.items[5]
    image = running.catalog.image_bytes(item.id)
    partition = partition_of(item.leaf, config.partition_level)
    with _taxonomy(running) as taxonomy:
        tree = taxonomy.GetTree(taxonomy_pb2.GetTreeRequest(), timeout=10)
        (node,) = [n.id for n in tree.nodes if n.path == partition]
        answers: list[list[str]] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                request = gateway_pb2.SearchByImageRequest(
                    image=image, k=10, categories=[partition]
                )
                response = running.stub.SearchByImage(request, timeout=5)
                answers.append(
                    ["partial"] if response.partial else [r.item_id for r in response.results]
                )

        searching = threading.Thread(target=load)
        searching.start()
        try:
            ref = taxonomy_pb2.NodeRef(path=partition)
            for to, expected in (([shard_b], [shard_b]), ([shard_a, shard_b], [shard_a, shard_b])):
                taxonomy.MovePartition(
                    taxonomy_pb2.MovePartitionRequest(partition=ref, to=to), timeout=10
                )
                deadline = time.monotonic() + 20
                while _serving(taxonomy, node) != sorted(expected) and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert _serving(taxonomy, node) == sorted(expected)
                if to == [shard_b]:
                    time.sleep(config.index.drain_grace_s + 1.5)
                    assert str(node) not in _held(running, shard_a)
            time.sleep(0.5)
        finally:
            stop.set()
            searching.join()
    assert _held(running, shard_a)[str(node)] == _held(running, shard_b)[str(node)]
    assert len(answers) >= 10
    for ids in answers:
        assert ids[0] == item.id, ids
        assert len(ids) == len(set(ids))


LOAD_CALLS = 30


def test_shoppers_photos_through_the_cluster_are_scored_as_its_answers_say(
    running: Running, tmp_path: Path
) -> None:
    gateway = running.config.address(running.config.gateway.port)
    command = [sys.executable, "-m", "evaluation.served", "--catalog", str(running.catalog.root)]
    command += ["--gateway", gateway, "--queries", "28", "--out", str(tmp_path)]
    run = subprocess.run(command, cwd=process.ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "served.json").read_text())
    assert result["queries"] == 28 and result["failed"] == {"changed": 0, "clean": 0}
    changed = result["changed"]
    assert {"crop", "mirror", "light", "pad", "rotate", "rescale", "jpeg"} < set(changed)
    assert sum(row["queries"] for group, row in changed.items() if group != "all") == 28
    assert "changed: pad" in run.stdout and "clean (own left out)" in run.stdout
    # the clean figure is what SearchByImage answers for the same 28 photos, own item left out,
    # judged by the catalog's leaves (earlier tests edited the taxonomy's)
    leaves = {item.id: item.leaf for item in running.catalog.items}
    queries = [item for item in running.catalog.items if is_held_out(item.id)][:28]
    shares = []
    for item in queries:
        results = _search(running, running.catalog.image_bytes(item.id), k=11).results
        neighbours = [r for r in results if r.item_id != item.id][:10]
        shares.append(sum(leaves.get(r.item_id) == item.leaf for r in neighbours) / 10)
    assert result["clean"]["p_at_10_leaf"] == pytest.approx(sum(shares) / 28, abs=1e-4)


def test_the_load_generator_runs_a_fixed_count_of_the_mix_and_reports_it(
    running: Running, tmp_path: Path
) -> None:
    gateway = running.config.address(running.config.gateway.port)
    out = tmp_path / "load"
    command = [sys.executable, "-m", "infra.load", "--target", gateway]
    # equal weights: each kind is drawn at least once in 30 calls but for a chance of 1e-5
    command += ["--mix", "search=1,similar=1,ingest=1", "--users", "4", "--count", str(LOAD_CALLS)]
    command += ["--out", str(out), "--catalog", str(running.catalog.root), "--items", "50"]
    run = subprocess.run(command, cwd=process.ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "summary.json").read_text())
    kinds = report["kinds"]
    assert set(kinds) == {"SearchByImage", "SimilarProducts", "Ingest"}
    assert sum(kind["calls"] for kind in kinds.values()) == report["total"]["calls"] == LOAD_CALLS
    assert report["total"]["errors"] == {}
    assert report["total"]["answered"] == LOAD_CALLS
    for figures in kinds.values():
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
        assert figures["per_s"] > 0
    html = (out / "report.html").read_text()
    assert all(name in html for name in kinds)
    assert "SearchByImage" in run.stdout


def test_one_replica_killed_under_load_costs_no_answer_both_make_it_partial(
    running: Running,
) -> None:
    """Every partition has two replicas here. Kills one shard while searches run: no answer
    after the kill is partial or an error. Then kills the other: answers are partial and in
    time. Stays the last test of the file."""
    config = running.config
    assert config.index.replicas == 2 == len(config.shard_addresses)
    images = [running.catalog.image_bytes(item.id) for item in running.catalog.items[:20]]
    pids = json.loads((Path(config.run_dir) / cluster.PID_FILE).read_text())
    killed_at: list[float] = []
    answers: list[tuple[float, float, str]] = []  # (start, end, "ok" | "partial" | error)
    stop = threading.Event()

    def load() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            started = time.monotonic()
            try:
                request = gateway_pb2.SearchByImageRequest(image=images[n % len(images)], k=10)
                response = running.stub.SearchByImage(request, timeout=5)
                outcome = "partial" if response.partial else "ok"
            except grpc.RpcError as error:
                outcome = str(error.code())
            answers.append((started, time.monotonic(), outcome))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    killed_at.append(time.monotonic())
    os.kill(pids["shard-0"], signal.SIGKILL)
    time.sleep(3.0)
    stop.set()
    for thread in threads:
        thread.join()
    after = [outcome for started, _, outcome in answers if started > killed_at[0]]
    before = [outcome for _, ended, outcome in answers if ended < killed_at[0]]
    assert before and set(before) == {"ok"}
    assert len(after) >= 10 and set(after) == {"ok"}, after

    os.kill(pids["shard-1"], signal.SIGKILL)
    # The call's own deadline is the check: it fails with DEADLINE_EXCEEDED if the gateway waits.
    response = running.stub.SearchByImage(
        gateway_pb2.SearchByImageRequest(image=images[0], k=10),
        timeout=config.gateway.deadline_s + 1.0,
    )
    assert response.partial
    assert sorted(response.failed_shards) == sorted(config.shard_addresses)
