"""The taxonomy server as its own process on a loopback port, called over gRPC with tokens."""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from protos.visualsearch.v1 import common_pb2, taxonomy_pb2, taxonomy_pb2_grpc
from taxonomy_svc import formats
from taxonomy_svc.items import Incoming
from tests.taxonomy_server import (
    EDITOR,
    READER,
    TIMEOUT,
    WRITER,
    Server,
    bearer,
    edit,
    ref,
    running,
    seed,
    version,
)

TSHIRTS = "Apparel/Topwear/Tshirts"
SHIRTS = "Apparel/Topwear/Shirts"
JEANS = "Apparel/Bottomwear/Jeans"
SHOES = "Footwear/Shoes/Casual Shoes"
SANDALS = "Footwear/Sandal/Sandals"
FLIPS = "Footwear/Flip Flops/Flip Flops"
LINES = """101 - Apparel
102 - Apparel > Bottomwear
103 - Apparel > Bottomwear > Jeans
104 - Apparel > Topwear
105 - Apparel > Topwear > Shirts
106 - Apparel > Topwear > Tshirts
201 - Footwear
202 - Footwear > Flip Flops
203 - Footwear > Flip Flops > Flip Flops
204 - Footwear > Sandal
205 - Footwear > Sandal > Sandals
206 - Footwear > Shoes
207 - Footwear > Shoes > Casual Shoes
"""
GIVEN = taxonomy_pb2.LEAF_SOURCE_GIVEN
ITEMS = [
    Incoming("tee", TSHIRTS, "given", "Blue tee", "Blue", "Casual"),
    Incoming("shirt", SHIRTS, "predicted", "White shirt", "White", "Formal"),
    Incoming("shoe", SHOES, "given", "Sneaker", "Black", "Sports"),
    Incoming("flop", FLIPS, "given", "Beach flip flop", "Red", "Casual"),
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    seed(tmp_path / "taxonomy.sqlite", LINES, ITEMS)
    with running(tmp_path, {"VS_TAXONOMY_FEED_KEEP": "5"}) as started:
        yield started


@pytest.fixture
def stub(server: Server) -> Iterator[taxonomy_pb2_grpc.TaxonomyStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield taxonomy_pb2_grpc.TaxonomyStub(channel)


def _code(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def _tree(stub: taxonomy_pb2_grpc.TaxonomyStub, **fields: object) -> taxonomy_pb2.Tree:
    request = taxonomy_pb2.GetTreeRequest(**fields)  # type: ignore[arg-type]
    return stub.GetTree(request, timeout=TIMEOUT, metadata=bearer(READER))


def test_get_tree_lists_nodes_with_ids_counts_and_the_version(
    stub: taxonomy_pb2_grpc.TaxonomyStub,
) -> None:
    tree = _tree(stub, with_counts=True)
    assert tree.version == 1
    nodes = {node.path: node for node in tree.nodes}
    tshirts = nodes[TSHIRTS]
    assert (tshirts.id, tshirts.name, tshirts.parent, tshirts.parent_id) == (
        106,
        "Tshirts",
        "Apparel/Topwear",
        104,
    )
    assert (tshirts.depth, tshirts.is_leaf, tshirts.items) == (3, True, 1)
    assert (nodes["Apparel"].items, nodes["Footwear"].items) == (2, 2)


def test_every_call_needs_a_token_and_editing_needs_the_editor_role(
    stub: taxonomy_pb2_grpc.TaxonomyStub,
) -> None:
    request = taxonomy_pb2.GetTreeRequest()
    missing = _code(lambda: stub.GetTree(request, timeout=TIMEOUT))
    assert missing.code() == grpc.StatusCode.UNAUTHENTICATED
    wrong = _code(lambda: stub.GetTree(request, timeout=TIMEOUT, metadata=bearer("nope")))
    assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED
    op = taxonomy_pb2.EditOp(rename=taxonomy_pb2.Rename(node=ref("Footwear"), name="Shoes"))
    denied = _code(lambda: edit(stub, op, token=READER))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "editor" in denied.details()
    writer = _code(lambda: edit(stub, op, token=WRITER))
    assert writer.code() == grpc.StatusCode.PERMISSION_DENIED
    put = taxonomy_pb2.PutItemsRequest(items=[taxonomy_pb2.Item(id="x", leaf=JEANS)])
    assert _code(lambda: stub.PutItems(put, timeout=TIMEOUT, metadata=bearer(READER))).code() == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert edit(stub, op, token=EDITOR).applied


def test_a_dry_run_says_what_would_change_and_changes_nothing(
    stub: taxonomy_pb2_grpc.TaxonomyStub,
) -> None:
    op = taxonomy_pb2.EditOp(merge=taxonomy_pb2.Merge(node=ref(SANDALS), into=ref(FLIPS)))
    dry = edit(stub, op, dry_run=True)
    assert (dry.applied, dry.version) == (False, 1)
    assert [(c.before.path, c.after.archived) for c in dry.effect.nodes] == [(SANDALS, True)]
    assert sorted(dry.effect.partitions) == []  # no items move between partitions
    move = taxonomy_pb2.EditOp(
        move=taxonomy_pb2.Move(node=ref("Footwear/Shoes"), parent=ref("Apparel"))
    )
    moved = edit(stub, move, dry_run=True)
    assert sorted(moved.effect.partitions) == ["Apparel/Shoes", "Footwear/Shoes"]
    assert version(stub) == 1


def test_a_stale_edit_is_aborted_naming_the_current_version(
    stub: taxonomy_pb2_grpc.TaxonomyStub,
) -> None:
    first = taxonomy_pb2.EditOp(rename=taxonomy_pb2.Rename(node=ref("Footwear"), name="Shoes"))
    assert edit(stub, first, base=1).version == 2
    second = taxonomy_pb2.EditOp(
        rename=taxonomy_pb2.Rename(node=taxonomy_pb2.NodeRef(id=201), name="Feet")
    )
    stale = _code(lambda: edit(stub, second, base=1))
    assert stale.code() == grpc.StatusCode.ABORTED
    assert "version 2" in stale.details()


def test_invalid_edits_say_what_is_wrong(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    cases = [
        (
            taxonomy_pb2.EditOp(move=taxonomy_pb2.Move(node=ref("Apparel"), parent=ref(TSHIRTS))),
            grpc.StatusCode.FAILED_PRECONDITION,
            "under itself",
        ),
        (
            taxonomy_pb2.EditOp(rename=taxonomy_pb2.Rename(node=ref(SHIRTS), name="Tshirts")),
            grpc.StatusCode.FAILED_PRECONDITION,
            "sibling",
        ),
        (
            taxonomy_pb2.EditOp(add=taxonomy_pb2.AddNode(parent=ref(TSHIRTS), name="V-neck")),
            grpc.StatusCode.FAILED_PRECONDITION,
            "leaf",
        ),
        (
            taxonomy_pb2.EditOp(retire=taxonomy_pb2.Retire(node=ref("Apparel/Topwear"))),
            grpc.StatusCode.FAILED_PRECONDITION,
            "items_to",
        ),
        (
            taxonomy_pb2.EditOp(rename=taxonomy_pb2.Rename(node=ref("Nope"), name="x")),
            grpc.StatusCode.NOT_FOUND,
            "Nope",
        ),
        (taxonomy_pb2.EditOp(), grpc.StatusCode.INVALID_ARGUMENT, "no operation"),
    ]
    for op, code, words in cases:
        error = _code(lambda op=op: edit(stub, op))
        assert (error.code(), words in error.details()) == (code, True), error.details()
    assert version(stub) == 1


def test_negative_limits_and_versions_are_invalid(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    calls = [
        lambda: stub.History(taxonomy_pb2.HistoryRequest(limit=-1), timeout=TIMEOUT,
                             metadata=bearer(READER)),
        lambda: stub.ListSuggestions(taxonomy_pb2.ListSuggestionsRequest(limit=-2),
                                     timeout=TIMEOUT, metadata=bearer(READER)),
        lambda: next(stub.Watch(taxonomy_pb2.WatchRequest(from_seq=-3),
                                metadata=bearer(READER))),
        lambda: stub.Diff(taxonomy_pb2.DiffRequest(from_version=0), timeout=TIMEOUT,
                          metadata=bearer(READER)),
    ]  # fmt: skip
    for call in calls:
        error = _code(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()


def test_history_revert_and_diff(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    merge = taxonomy_pb2.EditOp(merge=taxonomy_pb2.Merge(node=ref(TSHIRTS), into=ref(SHIRTS)))
    assert edit(stub, merge).effect.items_moved == 1
    move = taxonomy_pb2.EditOp(
        move=taxonomy_pb2.Move(node=ref("Apparel/Bottomwear"), parent=ref("Footwear"))
    )
    edit(stub, move)
    history = stub.History(taxonomy_pb2.HistoryRequest(), timeout=TIMEOUT, metadata=bearer(READER))
    assert [(e.version, e.actor, e.kind) for e in history.entries] == [
        (1, "seed", "import"),
        (2, "ed", "merge"),
        (3, "ed", "move"),
    ]
    assert history.entries[1].effect.item_moves[0].from_leaf == TSHIRTS
    reverted = edit(stub, taxonomy_pb2.EditOp(revert=taxonomy_pb2.Revert(version=2)))
    assert reverted.version == 4 and reverted.effect.items_moved == 1
    items = stub.GetItems(
        taxonomy_pb2.GetItemsRequest(ids=["tee"]), timeout=TIMEOUT, metadata=bearer(READER)
    )
    assert items.items[0].leaf == TSHIRTS
    diff = stub.Diff(
        taxonomy_pb2.DiffRequest(from_version=1), timeout=TIMEOUT, metadata=bearer(READER)
    )
    assert [(c.before.path, c.after.path) for c in diff.moved] == [
        ("Apparel/Bottomwear", "Footwear/Bottomwear")
    ]
    assert list(diff.items_moved) == [] and list(diff.added) == [] and list(diff.retired) == []
    assert diff.id_map[106] == 106
    partial = stub.Diff(
        taxonomy_pb2.DiffRequest(from_version=1, to_version=2),
        timeout=TIMEOUT,
        metadata=bearer(READER),
    )
    assert [n.path for n in partial.retired] == [TSHIRTS]
    assert partial.id_map[106] == 105  # the old leaf's id now means Shirts
    assert [(m.item_id, m.from_leaf, m.to_leaf) for m in partial.items_moved] == [
        ("tee", TSHIRTS, SHIRTS)
    ]
    old = _tree(stub, version=2)
    assert TSHIRTS not in [n.path for n in old.nodes]


def test_an_archived_node_still_resolves(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    retire = taxonomy_pb2.EditOp(retire=taxonomy_pb2.Retire(node=ref(SANDALS), items_to=ref(FLIPS)))
    edit(stub, retire)
    node = stub.GetNode(taxonomy_pb2.NodeRef(id=205), timeout=TIMEOUT, metadata=bearer(READER))
    assert (node.node.archived, node.node.replaced_by, node.resolved.path) == (True, 203, FLIPS)
    by_path = stub.GetNode(ref(SANDALS), timeout=TIMEOUT, metadata=bearer(READER))
    assert by_path.resolved.id == 203
    archived = _tree(stub, include_archived=True)
    assert [n.path for n in archived.nodes if n.archived] == [SANDALS]


def test_import_and_export_round_trip_through_the_service(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with running(tmp_path / "empty") as server, grpc.insecure_channel(server.address) as channel:
        stub = taxonomy_pb2_grpc.TaxonomyStub(channel)
        imported = edit(
            stub, taxonomy_pb2.EditOp(import_tree=taxonomy_pb2.Import(format="lines", text=LINES))
        )
        assert imported.applied and len(imported.effect.nodes) == 13
        export = taxonomy_pb2.ExportRequest(format="lines", with_ids=True)
        text = stub.Export(export, timeout=TIMEOUT, metadata=bearer(READER)).text
        assert text == LINES
        as_json = stub.Export(
            taxonomy_pb2.ExportRequest(format="json"), timeout=TIMEOUT, metadata=bearer(READER)
        ).text
        assert formats.parse("json", as_json)[5].ids == (101, 104, 106)


def test_sellers_suggestions_are_listed_accepted_and_rejected(
    stub: taxonomy_pb2_grpc.TaxonomyStub,
) -> None:
    likely = [
        common_pb2.LeafProb(leaf=SHIRTS, prob=0.9),
        common_pb2.LeafProb(leaf=TSHIRTS, prob=0.01),
    ]
    items = [
        taxonomy_pb2.Item(
            id="k1", leaf="Apparel/Topwear/Kurtas", leaf_source=GIVEN, predicted=likely
        ),
        taxonomy_pb2.Item(
            id="k2", leaf="Apparel/Topwear/Kurtas", leaf_source=GIVEN, predicted=likely
        ),
        taxonomy_pb2.Item(id="odd", leaf=TSHIRTS, leaf_source=GIVEN, predicted=likely),
        taxonomy_pb2.Item(id="lost", leaf="Nowhere/At/All", leaf_source=GIVEN),
    ]
    put = stub.PutItems(
        taxonomy_pb2.PutItemsRequest(items=items), timeout=TIMEOUT, metadata=bearer(WRITER)
    )
    assert list(put.leaves) == [SHIRTS, SHIRTS, TSHIRTS, ""]
    assert [(e.item_id, e.code) for e in put.errors] == [("lost", "NOT_FOUND")]
    listed = stub.ListSuggestions(
        taxonomy_pb2.ListSuggestionsRequest(), timeout=TIMEOUT, metadata=bearer(READER)
    )
    assert [(s.path, s.kind, s.count, list(s.example_items)) for s in listed.suggestions] == [
        ("Apparel/Topwear/Kurtas", "new_path", 2, ["k1", "k2"]),
        (SHIRTS, "disagreement", 1, ["odd"]),
    ]
    accepted = edit(
        stub, taxonomy_pb2.EditOp(accept=taxonomy_pb2.Accept(path="Apparel/Topwear/Kurtas"))
    )
    assert accepted.effect.items_moved == 2
    rejected = edit(stub, taxonomy_pb2.EditOp(reject=taxonomy_pb2.Reject(path=SHIRTS)))
    assert rejected.applied
    listed = stub.ListSuggestions(
        taxonomy_pb2.ListSuggestionsRequest(), timeout=TIMEOUT, metadata=bearer(READER)
    )
    assert list(listed.suggestions) == []
    got = stub.GetItems(
        taxonomy_pb2.GetItemsRequest(ids=["k1", "odd"]), timeout=TIMEOUT, metadata=bearer(READER)
    )
    assert [i.leaf for i in got.items] == ["Apparel/Topwear/Kurtas", TSHIRTS]


def test_rerank_follows_the_tree_and_explains_itself(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    request = taxonomy_pb2.RerankRequest(
        query_leaves=[common_pb2.LeafProb(leaf=SANDALS, prob=1.0)],
        candidates=[
            taxonomy_pb2.Candidate(item_id="flop", score=0.5, leaf=FLIPS),
            taxonomy_pb2.Candidate(item_id="tee", score=0.9, leaf=TSHIRTS),
        ],
        k=10,
    )
    before = stub.Rerank(request, timeout=TIMEOUT, metadata=bearer(READER))
    assert [(r.item.id, r.step) for r in before.items] == [("flop", common_pb2.STEP_SUBTREE)]
    edit(stub, taxonomy_pb2.EditOp(relate=taxonomy_pb2.Relate(a=ref(SANDALS), b=ref(FLIPS))))
    after = stub.Rerank(request, timeout=TIMEOUT, metadata=bearer(READER))
    (flop,) = after.items
    assert (flop.step, flop.tree_distance) == (common_pb2.STEP_RELATED, 1)
    assert flop.related_via == f"{SANDALS} <-> {FLIPS}"
    assert flop.item.title == "Beach flip flop"


def test_watch_streams_every_committed_edit_and_resumes(
    stub: taxonomy_pb2_grpc.TaxonomyStub,
) -> None:
    head = stub.GetTree(taxonomy_pb2.GetTreeRequest(version_only=True), timeout=TIMEOUT,
                        metadata=bearer(READER)).seq  # fmt: skip
    seen: list[taxonomy_pb2.Change] = []
    stream = stub.Watch(taxonomy_pb2.WatchRequest(from_seq=head), metadata=bearer(READER))
    reader = threading.Thread(
        target=lambda: seen.extend(c for _, c in zip(range(2), stream, strict=False))
    )
    reader.start()
    for name in ("A", "B"):
        edit(stub, taxonomy_pb2.EditOp(add=taxonomy_pb2.AddNode(name=name)))
    reader.join(timeout=TIMEOUT)
    stream.cancel()
    assert [(c.seq, c.tree_edit.summary) for c in seen] == [
        (head + 1, "add A"),
        (head + 2, "add B"),
    ]
    resumed = stub.Watch(taxonomy_pb2.WatchRequest(from_seq=head + 1), metadata=bearer(READER))
    first = next(resumed)
    resumed.cancel()
    assert (first.seq, first.tree_edit.summary) == (head + 2, "add B")


def test_a_follower_too_far_behind_is_told_to_reload(stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
    for name in "ABCDEF":  # the feed keeps 5 entries here
        edit(stub, taxonomy_pb2.EditOp(add=taxonomy_pb2.AddNode(name=name)))
    head = stub.GetTree(taxonomy_pb2.GetTreeRequest(version_only=True), timeout=TIMEOUT,
                        metadata=bearer(READER)).seq  # fmt: skip
    stream = stub.Watch(taxonomy_pb2.WatchRequest(from_seq=0), metadata=bearer(READER))
    first = next(stream)
    stream.cancel()
    assert (first.WhichOneof("kind"), first.reload_from) == ("reload_from", head)
    kept = stub.Watch(taxonomy_pb2.WatchRequest(from_seq=head - 5), metadata=bearer(READER))
    assert next(kept).seq == head - 4
    kept.cancel()
