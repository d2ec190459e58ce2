"""Several editors making conflicting edits at once through the real server: nothing is lost,
nothing is silently overwritten, and the tree stays a tree that a serial replay reproduces."""

import json
import random
import threading
from pathlib import Path

import grpc
from sqlalchemy.orm import sessionmaker

from protos.visualsearch.v1 import taxonomy_pb2, taxonomy_pb2_grpc
from taxonomy_svc import formats, ops
from taxonomy_svc.db import make_engine
from taxonomy_svc.items import Incoming
from taxonomy_svc.record import Record
from tests.taxonomy_server import READER, TIMEOUT, bearer, edit, ref, running, seed

EDITORS = 6
ATTEMPTS = 12
NAMES = ["Alpha", "Beta", "Gamma", "Delta"]  # few names, so renames and adds clash often
LINES = "".join(
    f"{top} > {mid} > {leaf}\n"
    for top in ("Apparel", "Footwear", "Home")
    for mid in ("Mid1", "Mid2", "Mid3")
    for leaf in ("Leaf1", "Leaf2")
)
ITEMS = [
    Incoming(
        f"item-{i}", f"{('Apparel', 'Footwear', 'Home')[i % 3]}/Mid{i % 2 + 1}/Leaf{i % 2 + 1}"
    )
    for i in range(60)
]
VALIDATION = {
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
}


def _op(rng: random.Random, tree: taxonomy_pb2.Tree) -> taxonomy_pb2.EditOp:
    nodes = list(tree.nodes)
    leaves = [n for n in nodes if n.is_leaf]
    node, other = rng.choice(nodes), rng.choice(nodes)
    kind = rng.choice(["rename", "move", "add", "merge", "relate"])
    if kind == "rename":
        return taxonomy_pb2.EditOp(
            rename=taxonomy_pb2.Rename(node=ref(node.path), name=rng.choice(NAMES))
        )
    if kind == "move":
        return taxonomy_pb2.EditOp(
            move=taxonomy_pb2.Move(node=ref(node.path), parent=ref(other.path))
        )
    if kind == "add":
        return taxonomy_pb2.EditOp(
            add=taxonomy_pb2.AddNode(parent=ref(other.path), name=rng.choice(NAMES))
        )
    a, b = rng.sample(leaves, 2)
    if kind == "merge":
        return taxonomy_pb2.EditOp(merge=taxonomy_pb2.Merge(node=ref(a.path), into=ref(b.path)))
    return taxonomy_pb2.EditOp(relate=taxonomy_pb2.Relate(a=ref(a.path), b=ref(b.path)))


def _editor(address: str, seed_value: int, outcomes: list[tuple[str, int, str]]) -> None:
    rng = random.Random(seed_value)
    with grpc.insecure_channel(address) as channel:
        stub = taxonomy_pb2_grpc.TaxonomyStub(channel)
        for _ in range(ATTEMPTS):
            tree = stub.GetTree(
                taxonomy_pb2.GetTreeRequest(), timeout=TIMEOUT, metadata=bearer(READER)
            )
            try:
                applied = edit(stub, _op(rng, tree), base=tree.version)
                kind = "applied" if applied.applied else "unchanged"  # e.g. renamed to its name
                outcomes.append((kind, applied.version, applied.summary))
            except grpc.RpcError as error:
                outcomes.append((error.code().name, tree.version, error.details() or ""))


def _check_is_a_tree(tree: taxonomy_pb2.Tree) -> None:
    by_id = {node.id: node for node in tree.nodes}
    siblings = set()
    for node in tree.nodes:
        assert node.parent_id == 0 or node.parent_id in by_id, f"{node.path} hangs from nothing"
        key = (node.parent_id, node.name.casefold())
        assert key not in siblings, f"two siblings named {node.name!r}"
        siblings.add(key)
        seen, up = set(), node.id
        while up:
            assert up not in seen, f"a cycle through {node.path}"
            seen.add(up)
            up = by_id[up].parent_id


def _replayed(history: taxonomy_pb2.HistoryResponse, folder: Path) -> str:
    """The tree a fresh record reaches by applying the audit log's ops in order."""
    engine = make_engine(str(folder / "replay.sqlite"))
    replay = Record(sessionmaker(engine), partition_level=2)
    for entry in history.entries:
        op = ops.op_from_json(json.loads(entry.op_json))
        applied = replay.apply(op, replay.version, entry.actor)
        assert (applied.version, applied.summary) == (entry.version, entry.summary)
        if entry.version == 1:
            replay.put_items(ITEMS, 0.0)
    text = formats.export(replay.tree, replay.version, "json")
    engine.dispose()
    return text


def test_concurrent_editors_never_silently_undo_each_other(tmp_path: Path) -> None:
    seed(tmp_path / "taxonomy.sqlite", LINES, ITEMS)
    outcomes: list[tuple[str, int, str]] = []
    with running(tmp_path) as server, grpc.insecure_channel(server.address) as channel:
        editors = [
            threading.Thread(target=_editor, args=(server.address, n, outcomes))
            for n in range(EDITORS)
        ]
        for thread in editors:
            thread.start()
        for thread in editors:
            thread.join()
        stub = taxonomy_pb2_grpc.TaxonomyStub(channel)
        tree = stub.GetTree(taxonomy_pb2.GetTreeRequest(), timeout=TIMEOUT, metadata=bearer(READER))
        history = stub.History(
            taxonomy_pb2.HistoryRequest(), timeout=TIMEOUT, metadata=bearer(READER)
        )
        found = stub.GetItems(
            taxonomy_pb2.GetItemsRequest(ids=[i.id for i in ITEMS]),
            timeout=TIMEOUT,
            metadata=bearer(READER),
        )
        exported = stub.Export(
            taxonomy_pb2.ExportRequest(format="json"), timeout=TIMEOUT, metadata=bearer(READER)
        ).text
        server.kill()
    applied = sorted((v, s) for kind, v, s in outcomes if kind == "applied")
    aborted = [o for o in outcomes if o[0] == "ABORTED"]
    assert len(outcomes) == EDITORS * ATTEMPTS
    assert {kind for kind, _, _ in outcomes} <= {"applied", "unchanged", "ABORTED"} | {
        c.name for c in VALIDATION
    }
    assert aborted and applied, "the editors did not race"
    assert all("the tree is at version" in details for _, _, details in aborted)
    # Every committed edit is in the audit log, once, in order, with no gap.
    assert [(e.version, e.summary) for e in history.entries[1:]] == applied
    assert [v for v, _ in applied] == list(range(2, len(applied) + 2))
    assert tree.version == len(applied) + 1
    _check_is_a_tree(tree)
    leaves = {node.path for node in tree.nodes if node.is_leaf}
    assert not found.missing_ids and all(item.leaf in leaves for item in found.items)
    assert _replayed(history, tmp_path) == exported
    # After a SIGKILL the restarted server holds exactly what was committed.
    with running(tmp_path) as again, grpc.insecure_channel(again.address) as channel:
        stub = taxonomy_pb2_grpc.TaxonomyStub(channel)
        after = stub.Export(
            taxonomy_pb2.ExportRequest(format="json"), timeout=TIMEOUT, metadata=bearer(READER)
        ).text
    assert after == exported
