"""The Taxonomy gRPC servicer: protobuf in, the record and the rerank, protobuf out."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar, cast

import grpc

from common.auth import current_caller, method_roles
from common.config import TaxonomyConfig
from common.errors import InvalidArgument
from common.feed import DELETE, EDIT, ROUTE, SPLIT, UPSERT, Change
from common.wire import item_error_pb, item_state_pb, route_pb
from protos.visualsearch.v1 import common_pb2, taxonomy_pb2, taxonomy_pb2_grpc
from taxonomy_svc import formats, ops
from taxonomy_svc.diff import compare
from taxonomy_svc.items import Incoming, Stored
from taxonomy_svc.record import Applied, Entry, Record
from taxonomy_svc.rerank import Candidate, Ranked, Settings, Step
from taxonomy_svc.tree import Tree

T = TypeVar("T")

_SOURCES = {
    "given": taxonomy_pb2.LEAF_SOURCE_GIVEN,
    "predicted": taxonomy_pb2.LEAF_SOURCE_PREDICTED,
}
_SOURCE_NAMES = {value: name for name, value in _SOURCES.items()}

ROLES = {
    "reader": [
        "GetTree",
        "Ancestors",
        "GetNode",
        "GetItems",
        "Rerank",
        "History",
        "Diff",
        "ListSuggestions",
        "Export",
        "Watch",
        "Scan",
    ],
    "writer": ["PutItems", "DeleteItems", "PartitionReady"],
    "editor": ["Edit", "MovePartition", "SplitPartition"],
}


def roles() -> dict[str, str]:
    """The role each method needs, by full method name."""
    return method_roles(taxonomy_pb2.DESCRIPTOR.services_by_name["Taxonomy"].full_name, ROLES)


WATCH_BATCH = 500  # feed entries read at once for a Watch stream
WATCH_POLL_S = 1.0  # a Watch stream also looks for commits of other processes this often
SCAN_CHUNK = 1000  # items per ScanChunk


class Changes:
    """Wakes every Watch stream when this process commits a write."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def next(self) -> asyncio.Event:
        """The event the next commit sets; take it before reading, so no commit is missed."""
        return self._event


class TaxonomyService(taxonomy_pb2_grpc.TaxonomyServicer):
    """Serves the record's tree, items, history and edits."""

    def __init__(self, record: Record, config: TaxonomyConfig) -> None:
        self._record = record
        self._config = config
        self._changes = Changes()
        self._settings = Settings(
            config.max_distance, config.visual_weight, Step(config.widest_step)
        )

    async def GetTree(
        self, request: taxonomy_pb2.GetTreeRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.Tree:
        state = await _run(self._record.state)
        version = request.version or state.version
        current = version == state.version  # seq, counts, routes: the current tree's
        seq = state.seq if current else 0
        if request.version_only:
            return taxonomy_pb2.Tree(version=version, seq=seq)
        tree = state.tree if current else await _run(self._record.tree_at, version)
        counts = await _run(self._record.counts) if request.with_counts and current else {}
        ids = [n.id for n in tree.all_nodes()] if request.include_archived else tree.active_ids()
        return taxonomy_pb2.Tree(
            version=version,
            seq=seq,
            nodes=[_node_pb(tree, node_id, counts) for node_id in ids],
            related=[_related_pb(tree, a, b) for a, b in sorted(tree.related)],
            former=[
                taxonomy_pb2.NodeRef(id=node, path=path)
                for path, node in sorted(tree.old_paths().items())
            ],
            routes=[route_pb(route) for route in state.routes.values()] if current else [],
            split=sorted(state.split) if current else [],
            feed_id=self._record.feed_id if current else "",
        )

    async def Ancestors(
        self, request: taxonomy_pb2.AncestorsRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.AncestorsResponse:
        if not request.path:
            raise InvalidArgument("path is empty")
        return taxonomy_pb2.AncestorsResponse(paths=self._record.tree.ancestors(request.path))

    async def GetNode(
        self, request: taxonomy_pb2.NodeRef, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.NodeDetail:
        tree = self._record.tree
        if not (request.id or request.path):
            raise InvalidArgument("name a node by id or path")
        node_id = request.id or tree.find(request.path)
        node = tree.node(node_id)
        resolved = tree.resolve(node_id) if node.archived and node.replaced_by else node_id
        counts = await _run(self._record.counts)
        children = tree.child_ids(node_id) if tree.is_active(node_id) else []
        examples = await _run(self._record.examples, node_id)
        return taxonomy_pb2.NodeDetail(
            node=_node_pb(tree, node_id, counts),
            children=[_node_pb(tree, child, counts) for child in children],
            related=[_node_pb(tree, other, counts) for other in tree.related_to(node_id)],
            resolved=_node_pb(tree, resolved, counts),
            example_items=examples,
        )

    async def GetItems(
        self, request: taxonomy_pb2.GetItemsRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.GetItemsResponse:
        _require(request.ids, "ids")
        found, missing = await _run(self._record.get_items, list(request.ids))
        return taxonomy_pb2.GetItemsResponse(
            items=[_item_pb(item) for item in found], missing_ids=missing
        )

    async def PutItems(
        self, request: taxonomy_pb2.PutItemsRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.PutItemsResponse:
        _require(request.items, "items")
        incoming = [_incoming(item) for item in request.items]
        put = await _run(self._record.put_items, incoming, self._config.suggest_below)
        if put.seq:
            self._changes.notify()
        return taxonomy_pb2.PutItemsResponse(
            stored=len(incoming) - len(put.failures),
            errors=[item_error_pb(failure) for failure in put.failures],
            leaves=put.leaves,
            seq=put.seq,
        )

    async def DeleteItems(
        self, request: taxonomy_pb2.DeleteItemsRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.DeleteItemsResponse:
        _require(request.ids, "ids")
        deleted, seq = await _run(self._record.delete_items, list(request.ids))
        if seq:
            self._changes.notify()
        return taxonomy_pb2.DeleteItemsResponse(deleted=deleted, seq=seq)

    async def Rerank(
        self, request: taxonomy_pb2.RerankRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.RerankResponse:
        query = [(leaf.leaf, leaf.prob) for leaf in request.query_leaves]
        candidates = [Candidate(c.item_id, c.score, c.leaf) for c in request.candidates]
        result, known = await _run(
            self._record.rerank, query, candidates, request.k, self._settings,
            list(request.categories),
        )  # fmt: skip
        return taxonomy_pb2.RerankResponse(
            items=[_ranked_pb(ranked, known.get(ranked.item_id)) for ranked in result.items],
            dropped=result.dropped,
        )

    async def Edit(
        self, request: taxonomy_pb2.EditRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.EditResponse:
        op = _op(request.op)
        actor = current_caller().name
        applied = await _run(
            self._record.apply, op, request.base_version, actor, request.dry_run, request.comment
        )
        if applied.applied:
            self._changes.notify()
        return _edit_response(applied)

    async def History(
        self, request: taxonomy_pb2.HistoryRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.HistoryResponse:
        _not_negative(request.from_version, "from_version")
        _not_negative(request.limit, "limit")
        entries = await _run(self._record.history, request.from_version, request.limit)
        return taxonomy_pb2.HistoryResponse(entries=[_entry_pb(entry) for entry in entries])

    async def Diff(
        self, request: taxonomy_pb2.DiffRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.DiffResponse:
        to_version = request.to_version or self._record.version
        if request.from_version < 1:
            raise InvalidArgument("from_version must be a version of the tree (1 or more)")
        if request.from_version >= to_version:
            raise InvalidArgument(f"from_version {request.from_version} is not before {to_version}")
        old = await _run(self._record.tree_at, request.from_version)
        new = await _run(self._record.tree_at, to_version)
        entries = await _run(
            self._record.history, request.from_version, to_version - request.from_version
        )
        diff = compare(old, new, [entry.effect for entry in entries])
        return taxonomy_pb2.DiffResponse(
            added=[_node_pb(new, i) for i in diff.added],
            retired=[_node_pb(old, i) for i in diff.retired],
            renamed=[_change_pb(old, new, i) for i in diff.renamed],
            moved=[_change_pb(old, new, i) for i in diff.moved],
            items_moved=[
                taxonomy_pb2.ItemMove(item_id=item, from_leaf=source, to_leaf=target)
                for item, (source, target) in diff.items_moved.items()
            ],
            id_map=diff.id_map,
        )

    async def ListSuggestions(
        self, request: taxonomy_pb2.ListSuggestionsRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.ListSuggestionsResponse:
        _not_negative(request.limit, "limit")
        groups = await _run(self._record.suggestions, request.limit)
        return taxonomy_pb2.ListSuggestionsResponse(
            suggestions=[
                taxonomy_pb2.Suggestion(
                    path=g.path, kind=g.kind, count=g.count, example_items=g.examples
                )
                for g in groups
            ]
        )

    async def Export(
        self, request: taxonomy_pb2.ExportRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.ExportResponse:
        version = request.version or self._record.version
        tree = await _run(self._record.tree_at, version)
        text = formats.export(tree, version, request.format or "lines", request.with_ids)
        return taxonomy_pb2.ExportResponse(text=text, version=version)

    async def Watch(
        self, request: taxonomy_pb2.WatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[taxonomy_pb2.Change]:
        _not_negative(request.from_seq, "from_seq")
        seen = request.from_seq
        if request.feed_id and request.feed_id != self._record.feed_id:
            seen = -1  # a position in another feed: rebuild
        while True:
            changed = self._changes.next()
            head, found = self._record.seq, None  # every entry up to head is committed
            if seen >= 0:
                found = await _run(self._record.changes, seen, WATCH_BATCH, request.tree_only)
            if found is None:
                seq = self._record.seq
                yield taxonomy_pb2.Change(seq=seq, reload_from=seq)
                seen = seq
                continue
            versions = [change.version for change in found if change.kind == EDIT]
            entries = await _run(self._record.entries, versions) if versions else {}
            for change in found:
                yield _feed_pb(change, entries)
                seen = change.seq
            if len(found) < WATCH_BATCH:
                if request.tree_only:  # past the other kinds too, so trimming them is no gap
                    seen = max(seen, head)
                with suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), WATCH_POLL_S)

    async def Scan(
        self, request: taxonomy_pb2.ScanRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[taxonomy_pb2.ScanChunk]:
        chunks = self._record.scan_chunks(
            list(request.partitions), list(request.item_ids), request.model_version, SCAN_CHUNK
        )
        try:
            while (scanned := await _run(next, chunks, None)) is not None:
                yield taxonomy_pb2.ScanChunk(
                    seq=scanned.seq,
                    model_version=scanned.model_version,
                    feed_id=self._record.feed_id,
                    items=[item_state_pb(item) for item in scanned.items],
                )
        finally:
            await _run(chunks.close)  # ends the read transaction in a worker thread too

    async def MovePartition(
        self, request: taxonomy_pb2.MovePartitionRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.Route:
        partition = _required(request.partition, "partition")
        route = await _run(self._record.move_partition, partition, list(request.to))
        self._changes.notify()
        return route_pb(route)

    async def PartitionReady(
        self, request: taxonomy_pb2.PartitionReadyRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.Route:
        route = await _run(
            self._record.partition_ready, request.partition_id, request.address, request.seq
        )
        self._changes.notify()
        return route_pb(route)

    async def SplitPartition(
        self, request: taxonomy_pb2.NodeRef, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.SplitPartitionResponse:
        partition = _required(request, "partition")
        made, moved, seq = await _run(self._record.split_partition, partition)
        self._changes.notify()
        return taxonomy_pb2.SplitPartitionResponse(partitions=made, items_moved=moved, seq=seq)


async def _run(function: Callable[..., T], *args: Any) -> T:
    """Runs blocking record work (database calls) off the event loop."""
    return await asyncio.to_thread(function, *args)


def _not_negative(value: int, name: str) -> None:
    if value < 0:
        raise InvalidArgument(f"{name} is {value}; it cannot be negative")


def _require(values: Sequence[object], name: str) -> None:
    if not values:
        raise InvalidArgument(f"{name} is empty")


def _ref(ref: taxonomy_pb2.NodeRef) -> ops.Ref | None:
    return ref.id or ref.path or None


def _rule(rule: taxonomy_pb2.Rule) -> ops.Rule:
    return ops.Rule(rule.field, tuple(rule.values))


def _op(op: taxonomy_pb2.EditOp) -> ops.Op:
    kind = op.WhichOneof("op")
    if kind is None:
        raise InvalidArgument("the edit names no operation")
    message: Any = getattr(op, kind)
    build = _OPS[kind]
    return build(message)


_OPS: dict[str, Callable[[Any], ops.Op]] = {
    "add": lambda m: ops.AddNode(_ref(m.parent), m.name, m.id),
    "rename": lambda m: ops.Rename(_required(m.node), m.name),
    "move": lambda m: ops.MoveNode(_required(m.node), _ref(m.parent)),
    "merge": lambda m: ops.Merge(_required(m.node), _required(m.into, "into")),
    "split": lambda m: ops.Split(
        _required(m.leaf, "leaf"),
        tuple(ops.SplitChild(c.name, _rule(c.rule)) for c in m.children),
        m.rest,
    ),
    "reassign": lambda m: ops.Reassign(
        _required(m.node),
        tuple(ops.Target(_required(t.to, "target"), _rule(t.rule)) for t in m.targets),
        _ref(m.rest),
    ),
    "retire": lambda m: ops.Retire(_required(m.node), _ref(m.items_to)),
    "relate": lambda m: ops.Relate(_required(m.a, "a"), _required(m.b, "b")),
    "unrelate": lambda m: ops.Unrelate(_required(m.a, "a"), _required(m.b, "b")),
    "revert": lambda m: ops.Revert(m.version),
    "accept": lambda m: ops.Accept(m.path),
    "reject": lambda m: ops.Reject(m.path),
    "import_tree": lambda m: ops.Import(m.format or "lines", m.text),
}


def _required(ref: taxonomy_pb2.NodeRef, what: str = "node") -> ops.Ref:
    found = _ref(ref)
    if found is None:
        raise InvalidArgument(f"{what} is not named (give its id or path)")
    return found


def _node_pb(tree: Tree, node_id: int, counts: dict[int, int] | None = None) -> taxonomy_pb2.Node:
    node = tree.node(node_id)
    path = tree.path_of(node_id)
    active = tree.is_active(node_id)
    return taxonomy_pb2.Node(
        path=path,
        name=node.name,
        parent=tree.path_of(node.parent) if node.parent else "",
        depth=len(tree.chain(node_id)) if active else path.count("/") + 1,
        is_leaf=active and not tree.child_ids(node_id),
        id=node_id,
        parent_id=node.parent,
        archived=node.archived,
        replaced_by=node.replaced_by,
        items=(counts or {}).get(node_id, 0),
    )


def _related_pb(tree: Tree, a: int, b: int) -> taxonomy_pb2.Related:
    return taxonomy_pb2.Related(a=a, b=b, a_path=tree.path_of(a), b_path=tree.path_of(b))


def _change_pb(old: Tree, new: Tree, node_id: int) -> taxonomy_pb2.NodeChange:
    return taxonomy_pb2.NodeChange(
        id=node_id, before=_node_pb(old, node_id), after=_node_pb(new, node_id)
    )


def _state_pb(node_id: int, state: dict[str, Any] | None, path: str) -> taxonomy_pb2.Node:
    if state is None:
        return taxonomy_pb2.Node()
    return taxonomy_pb2.Node(
        id=node_id,
        path=path,
        name=state["name"],
        parent_id=state["parent"],
        archived=state["archived"],
        replaced_by=state["replaced_by"],
        depth=path.count("/") + 1,
    )


def _effect_pb(effect: dict[str, Any], moves_shown: int = 300) -> taxonomy_pb2.Effect:
    def related(pairs: list[list[int]]) -> list[taxonomy_pb2.Related]:
        named = effect.get("related_paths", {})
        return [
            taxonomy_pb2.Related(
                a=a,
                b=b,
                a_path=named.get(f"{a}-{b}", ["", ""])[0],
                b_path=named.get(f"{a}-{b}", ["", ""])[1],
            )
            for a, b in pairs
        ]

    return taxonomy_pb2.Effect(
        nodes=[
            taxonomy_pb2.NodeChange(
                id=n["id"],
                before=_state_pb(n["id"], n["before"], n["before_path"]),
                after=_state_pb(n["id"], n["after"], n["after_path"]),
            )
            for n in effect["nodes"]
        ],
        items_moved=len(effect["moves"]),
        item_moves=[
            taxonomy_pb2.ItemMove(item_id=m[0], from_leaf=m[3], to_leaf=m[4])
            for m in effect["moves"][:moves_shown]
        ],
        partitions=effect["partitions"],
        related_added=related(effect["related_added"]),
        related_removed=related(effect["related_removed"]),
    )


def _edit_response(applied: Applied) -> taxonomy_pb2.EditResponse:
    return taxonomy_pb2.EditResponse(
        version=applied.version,
        applied=applied.applied,
        effect=_effect_pb(applied.effect),
        summary=applied.summary,
        seq=applied.seq,
    )


def _entry_pb(entry: Entry) -> taxonomy_pb2.HistoryEntry:
    return taxonomy_pb2.HistoryEntry(
        version=entry.version,
        actor=entry.actor,
        at=entry.at,
        kind=entry.kind,
        op_json=entry.op,
        summary=entry.summary,
        effect=_effect_pb(entry.effect),
        reverts=entry.reverts,
        comment=entry.comment,
    )


def _feed_pb(change: Change, entries: dict[int, Entry]) -> taxonomy_pb2.Change:
    if change.kind == DELETE:
        return taxonomy_pb2.Change(seq=change.seq, item_deleted=change.item_id)
    if change.kind == ROUTE:
        assert change.route is not None
        return taxonomy_pb2.Change(seq=change.seq, route=route_pb(change.route))
    if change.kind == SPLIT:
        placements = [item_state_pb(item) for item in change.placements]
        return taxonomy_pb2.Change(seq=change.seq, split=change.split, placements=placements)
    if change.kind == UPSERT:
        assert change.item is not None
        return taxonomy_pb2.Change(seq=change.seq, item_upserted=item_state_pb(change.item))
    return taxonomy_pb2.Change(
        seq=change.seq,
        tree_edit=_entry_pb(entries[change.version]),
        placements=[item_state_pb(item) for item in change.placements],
    )


def _incoming(item: taxonomy_pb2.Item) -> Incoming:
    return Incoming(
        id=item.id,
        leaf=item.leaf,
        leaf_source=_SOURCE_NAMES.get(item.leaf_source, ""),
        title=item.title,
        colour=item.colour,
        usage=item.usage,
        predicted=tuple((p.leaf, p.prob) for p in item.predicted),
        vector=item.vector,
        model_version=item.model_version,
    )


def _item_pb(item: Stored) -> taxonomy_pb2.Item:
    return taxonomy_pb2.Item(
        id=item.id,
        leaf=item.leaf,
        leaf_source=_SOURCES[item.leaf_source],
        title=item.title,
        colour=item.colour,
        usage=item.usage,
        leaf_id=item.leaf_id,
    )


def _ranked_pb(ranked: Ranked, item: Stored | None) -> taxonomy_pb2.RankedItem:
    return taxonomy_pb2.RankedItem(
        item=_item_pb(item) if item else taxonomy_pb2.Item(id=ranked.item_id, leaf=ranked.leaf),
        score=ranked.score,
        visual_score=ranked.visual,
        tree_distance=ranked.tree_distance,
        step=cast(common_pb2.Step, int(ranked.step)),
        related_via=ranked.related_via,
    )
