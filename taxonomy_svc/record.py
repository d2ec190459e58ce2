"""The taxonomy's record: edits applied in one transaction each, the tree kept in step.

`Record` owns every transaction of the taxonomy service (the servicer only maps protobuf).
It holds the current `Tree`, rebuilt from the database at start and replaced after each
committed edit, so that after a crash it equals what the database holds. An edit carries the
version it was made against; the database's version row is bumped only from that version, so
two editors, in one process or several, never silently undo each other.
"""

import json
import logging
import threading
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from common.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from common.feed import Change, ItemState, Route
from common.routing import replicas_of
from taxonomy_svc import edits, effects, feed, items, ops, partitions
from taxonomy_svc.db import (
    EditRow,
    ItemRow,
    NodeRow,
    RelatedRow,
    RouteRow,
    SplitRow,
    SuggestionRow,
    TreeVersionRow,
)
from taxonomy_svc.edits import ItemMove, Plan, Recorded, Suggested
from taxonomy_svc.ops import ItemView, Op
from taxonomy_svc.rerank import Candidate, RerankResult, Settings, rerank
from taxonomy_svc.tree import ROOT, Node, Tree

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """The outcome of an edit: the version it made (or was checked against) and its effect."""

    version: int
    applied: bool
    kind: str
    summary: str
    effect: dict[str, Any]  # as the audit log keeps it (see effects.describe)
    seq: int = 0  # the feed position of the commit (0: not committed)


@dataclass(frozen=True)
class Entry:
    """One committed edit in the audit log."""

    version: int
    actor: str
    at: str
    kind: str
    op: str
    summary: str
    effect: dict[str, Any]
    reverts: int
    comment: str


@dataclass(frozen=True)
class State:
    """What readers of the current tree need, read together: one feed position's."""

    tree: Tree
    version: int
    seq: int
    routes: dict[int, Route]
    split: frozenset[int]


@dataclass(frozen=True)
class Scanned:
    """A scan: items with their vectors of one model version, as of feed position `seq`."""

    seq: int
    model_version: str
    items: list[ItemState]


class Record:
    """The tree, its history, the catalog's items and vectors, and the feed, over one database.

    Every write (an edit, items put or deleted) appends its changes to the feed in the same
    transaction; `seq` is the feed's head as this process last committed or read it.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        partition_level: int,
        feed_keep: int = 200_000,
        shards: Sequence[str] = (),
        replicas: int = 1,
        split_above: int = 0,
    ) -> None:
        self._sessions = sessions
        self._level = partition_level
        self._keep = feed_keep
        self._split_above = split_above
        self._shards, self._replicas = tuple(shards), replicas
        self._lock = threading.Lock()  # one write at a time in this process
        self._load_all()

    def state(self) -> State:
        """The tree, its version, the feed's head, the routes and the splits, as of one commit
        (waits for a write under way)."""
        with self._lock:
            return State(self.tree, self.version, self.seq, self.routes, self.split)

    def reload(self) -> None:
        """Rebuilds the tree from the database (after another process edited it)."""
        with self._lock:
            self._load_all()

    def _load_all(self) -> None:
        self.tree, self.version, self._leaf_of = self._load()
        with self._sessions() as session:
            self.seq, self._dims = feed.head(session), feed.dims(session)
            self.feed_id = feed.feed_id(session)
            self.routes = {
                row.partition_id: _route(row) for row in session.scalars(select(RouteRow))
            }
            self.split = frozenset(session.scalars(select(SplitRow.node_id)))
        self._parts = partitions.of_tree(self.tree, self._level, self.split)
        self._sizes = partitions.sizes(self._parts, self._leaf_of)

    def apply(
        self, op: Op, base_version: int, actor: str, dry_run: bool = False, comment: str = ""
    ) -> Applied:
        """Plans `op` against the tree at `base_version` and, unless a dry run, commits it.

        Raises:
            Aborted: the tree is no longer at `base_version`, naming the current version.
            InvalidArgument, NotFound, FailedPrecondition: from edits.plan.
        """
        with self._lock:
            self._check_base(base_version)
            with self._sessions() as session:
                plan = edits.plan(op, self.tree, _Facts(session))
            effect = effects.describe(plan, self.tree, self._level)
            if dry_run or _changes_nothing(plan):
                return Applied(base_version, False, plan.kind, plan.summary, effect)
            parts = partitions.of_tree(plan.tree, self._level, self.split)
            placed = partitions.placements(
                plan.tree,
                self._parts,
                parts,
                {move.item_id: move.target for move in plan.moves},
                self._leaf_of,
            )
            version, self.seq = self._commit(op, plan, effect, base_version, actor, comment, placed)
            self.tree, self.version, self._parts = plan.tree, version, parts
            self._leaf_of.update((move.item_id, move.target) for move in plan.moves)
            self._sizes = partitions.sizes(parts, self._leaf_of)
            return Applied(version, True, plan.kind, plan.summary, effect, self.seq)

    def history(self, after: int = 0, limit: int = 0) -> list[Entry]:
        """The audit log's entries after version `after`, oldest first."""
        query = select(EditRow).where(EditRow.version > after).order_by(EditRow.version)
        with self._sessions() as session:
            rows = session.scalars(query.limit(limit) if limit else query)
            return [_entry(row) for row in rows]

    def first_version(self) -> int:
        """The oldest version the audit log holds (0 if none)."""
        with self._sessions() as session:
            return session.scalar(select(func.min(EditRow.version))) or 0

    def tree_at(self, version: int) -> Tree:
        """The tree as it was once `version` was committed (0 or current: the current one).

        Raises:
            NotFound: a version after the current one, or before the audit log begins.
        """
        tree = self.tree
        if version in (0, self.version):
            return tree
        if not self.first_version() <= version < self.version:
            raise NotFound(f"version {version} is not kept (the tree is at {self.version})")
        states = {node.id: node for node in tree.all_nodes()}
        related = set(tree.related)
        for entry in reversed(self.history(after=version)):
            for node_id, (before, _) in effects.node_states(entry.effect).items():
                if before is None:
                    states.pop(node_id, None)
                else:
                    states[node_id] = before
            related -= effects.pairs(entry.effect["related_added"])
            related |= effects.pairs(entry.effect["related_removed"])
        return Tree(states.values(), related)

    def put_items(self, incoming: Sequence[items.Incoming], suggest_below: float) -> items.Put:
        """Records items and their vectors (see items.place) and announces each on the feed, in
        one transaction; a bad item fails alone. Returns once the commit is durable.

        Under the write lock: an edit that turns a leaf into an inner node counts its items
        first, so an item placed meanwhile could end up outside a leaf.
        """
        with self._lock:
            tree = self.tree
            placed = items.place(tree, incoming, suggest_below, self._dims)
            states = [self._state(row, placed.vectors.get(row["id"])) for row in placed.rows]
            with self._sessions.begin() as session:
                items.upsert(session, placed.rows)
                items.suggest(session, placed.suggestions)
                seq = feed.append(session, [feed.upsert_row(state) for state in states])
                vectors = [(s.item_id, s.model_version, s.vector) for s in states if s.vector]
                feed.put_vectors(session, vectors, seq)
                self._trim(session, seq, len(states))
            self.seq = seq
            for state in states:
                old = self._leaf_of.get(state.item_id)
                if old is not None:
                    self._sizes[self._parts.get(old, old)] -= 1
                self._sizes[state.partition_id] += 1
                self._leaf_of[state.item_id] = state.leaf_id
                if state.vector:
                    self._dims.setdefault(state.model_version, len(state.vector) // 4)
            self._split_if_grown({state.partition_id for state in states})
        return replace(placed.put, seq=seq if states else 0)

    def get_items(self, ids: Sequence[str]) -> tuple[list[items.Stored], list[str]]:
        with self._sessions() as session:
            return items.get(session, self.tree, ids)

    def all_items(self) -> list[items.Stored]:
        """Every item, sorted by id."""
        with self._sessions() as session:
            return items.every(session, self.tree)

    def delete_items(self, ids: Sequence[str]) -> tuple[int, int]:
        """Deletes items and their vectors, announced on the feed; returns (how many were
        held, the feed's head after the commit, 0 if none was)."""
        with self._lock:
            with self._sessions.begin() as session:
                deleted = items.delete(session, ids)
                if not deleted:
                    return 0, 0
                seq = feed.append(session, [feed.delete_row(item_id) for item_id in deleted])
                self._trim(session, seq, len(deleted))
            self.seq = seq
            for item_id in deleted:
                leaf = self._leaf_of.pop(item_id, None)
                if leaf is not None:
                    self._sizes[self._parts.get(leaf, leaf)] -= 1
            return len(deleted), seq

    def changes(self, after: int, limit: int, tree_only: bool = False) -> list[Change] | None:
        """The feed's entries after `after`, oldest first; None if the follower must rebuild
        from a scan: entries after its position are no longer kept, or its position is past
        the head (it followed a record since restored from an older backup)."""
        with self._sessions() as session:
            if after > feed.head(session) or after + 1 < feed.oldest(session):
                return None
            found = feed.read(session, after, limit, tree_only)
        if not tree_only and found and found[0].seq != after + 1:
            return None  # trimmed between the check and the read
        tree, parts = self.tree, self._parts
        return [self._placed(change, tree, parts) for change in found]

    def entries(self, versions: Sequence[int]) -> dict[int, Entry]:
        """The audit log's entries of these versions."""
        with self._sessions() as session:
            rows = session.scalars(select(EditRow).where(EditRow.version.in_(versions)))
            return {row.version: _entry(row) for row in rows}

    def scan(
        self, partitions: Sequence[int], item_ids: Sequence[str], model_version: str
    ) -> Scanned:
        """All of `scan_chunks` at once."""
        first, *rest = self.scan_chunks(partitions, item_ids, model_version)
        return Scanned(first.seq, first.model_version, [i for c in (first, *rest) for i in c.items])

    def scan_chunks(
        self,
        partitions: Sequence[int],
        item_ids: Sequence[str],
        model_version: str,
        chunk: int = 1000,
    ) -> Generator[Scanned, None, None]:
        """Items with their vectors of `model_version` ("" the latest): those named, else those
        in the partitions (node ids), else all; as of the feed position each chunk carries (at
        least one chunk, maybe empty).

        One read transaction sees the database as it was at that position (SQLite's WAL
        snapshot, PostgreSQL's REPEATABLE READ); the write lock is held only to start it, so
        writes go on while the rows stream out.

        Raises:
            NotFound: a partition that is not a node of the current tree.
        """
        with self._sessions() as session:
            connection = session.connection(
                execution_options={"isolation_level": "REPEATABLE READ"}
                if session.get_bind().dialect.name == "postgresql"
                else {}
            )
            with self._lock:
                if connection.dialect.name == "sqlite":
                    connection.exec_driver_sql("BEGIN")  # pysqlite starts none for reads
                tree, parts, seq = self.tree, self._parts, feed.head(session)
            version = model_version or feed.latest_version(session)
            if model_version and model_version not in self._dims:
                raise NotFound(f"the record holds no vector of model version {model_version!r}")
            leaves: set[int] | None = None
            if partitions and not item_ids:
                leaves = {leaf for p in partitions for leaf in tree.subtree(p)}
            yield Scanned(seq, version, [])
            for rows in feed.scan(session, leaves, item_ids, version, chunk):
                found = [
                    ItemState(item_id, leaf, tree.path_of(leaf), parts.get(leaf, leaf), version,
                              vector, colour, usage)
                    for item_id, leaf, colour, usage, vector in rows
                ]  # fmt: skip
                yield Scanned(seq, version, found)

    def move_partition(self, partition: str | int, to: Sequence[str]) -> Route:
        """Starts moving a partition to the shards `to`: they build it and report ready
        (`partition_ready`), then the routing flips. A move already under way is replaced.

        Raises:
            InvalidArgument: no shards named, or one that is not a configured shard.
            NotFound, FailedPrecondition: not a node, or not a partition.
        """
        target = tuple(dict.fromkeys(to))
        unknown = [address for address in target if address not in self._shards]
        if not target or unknown:
            raise InvalidArgument(
                f"shards {unknown or 'none'} named; the configured shards are {list(self._shards)}"
            )
        with self._lock:
            node = self._partition_node(partition)
            current = self._current_route(node)
            if set(target) == set(current.serving):
                route = Route(node, current.serving)
            else:
                route = Route(node, current.serving, target)
            return self._write_route(route)

    def partition_ready(self, partition_id: int, address: str, seq: int) -> Route:
        """A target shard has built the partition as of `seq`; once every target has, the
        routing flips to them.

        Raises:
            InvalidArgument: no partition, address or a negative position.
            FailedPrecondition: no move of this partition to that shard is under way.
        """
        if partition_id <= 0 or not address or seq < 0:
            raise InvalidArgument(
                f"partition_id {partition_id}, address {address!r} and seq {seq}: a partition, "
                "a shard address and a position are needed"
            )
        with self._lock:
            current = self.routes.get(partition_id)
            if current is None or address not in current.target:
                raise FailedPrecondition(
                    f"no move of partition {partition_id} to {address} is under way"
                )
            ready = tuple(dict.fromkeys([*current.ready, address]))
            if set(ready) >= set(current.target):
                route = Route(partition_id, current.target)
            else:
                route = Route(partition_id, current.serving, current.target, ready)
            log.info("partition %d: %s ready at seq %d", partition_id, address, seq)
            return self._write_route(route)

    def split_partition(self, partition: str | int) -> tuple[list[int], int, int]:
        """Splits a partition by child node: each child becomes a partition and the items
        move there (the shards follow the feed's SPLIT entry).

        Returns:
            The new partitions, how many items moved, and the feed position of the commit.

        Raises:
            NotFound, FailedPrecondition: not a partition, or one without children.
        """
        with self._lock:
            node = self._partition_node(partition)
            return self._split(node)

    def _split(self, node: int) -> tuple[list[int], int, int]:
        tree = self.tree
        children = tree.child_ids(node)
        if not children:
            raise FailedPrecondition(f"{tree.path_of(node)!r} is a leaf: it has no children")
        split = self.split | {node}
        parts = partitions.of_tree(tree, self._level, split)
        placed = partitions.placements(tree, self._parts, parts, {}, self._leaf_of)
        with self._sessions.begin() as session:
            session.add(SplitRow(node_id=node))
            seq = feed.append(session, [feed.split_row(node, placed)])
        self.seq, self.split, self._parts = seq, frozenset(split), parts
        self._sizes = partitions.sizes(parts, self._leaf_of)
        log.info(
            "partition %s split into %d; %d items moved",
            tree.path_of(node),
            len(children),
            len(placed),
        )
        return sorted({parts[child] for child in children}), len(placed), self.seq

    def _split_if_grown(self, touched: set[int]) -> None:
        """Splits the touched partitions that outgrew `split_above` items (and can split)."""
        if not self._split_above:
            return
        for node in sorted(touched):
            grown = self._sizes[node] > self._split_above
            if grown and self._parts.get(node) == node and self.tree.child_ids(node):
                try:
                    self._split(node)
                except Exception:  # the items are committed: their Ingest must not fail
                    log.exception("splitting partition %d failed; it stays whole", node)

    def _partition_node(self, partition: str | int) -> int:
        tree = self.tree
        node = partition if isinstance(partition, int) else tree.find(partition)
        if self._parts.get(node) != node:
            raise FailedPrecondition(
                f"{tree.path_of(node)!r} is not a partition (a node at level {self._level}, "
                "or a child of a partition that was split)"
            )
        return node

    def _current_route(self, node: int) -> Route:
        found = self.routes.get(node)
        if found is not None:
            return found
        return Route(node, tuple(replicas_of(str(node), self._shards, self._replicas)))

    def _write_route(self, route: Route) -> Route:
        if route == self.routes.get(route.partition_id):
            return route
        values = {
            "serving": json.dumps(list(route.serving)),
            "target": json.dumps(list(route.target)),
            "ready": json.dumps(list(route.ready)),
        }
        with self._sessions.begin() as session:
            if session.get(RouteRow, route.partition_id) is None:
                session.add(RouteRow(partition_id=route.partition_id, **values))
            else:
                session.execute(
                    update(RouteRow)
                    .where(RouteRow.partition_id == route.partition_id)
                    .values(**values)
                )
            seq = feed.append(session, [feed.route_row(route)])
        self.seq = seq
        self.routes = {**self.routes, route.partition_id: route}  # readers iterate it
        return route

    def _state(self, row: dict[str, Any], vector: tuple[str, bytes] | None) -> ItemState:
        leaf = row["leaf_id"]
        version, floats = vector or ("", b"")
        return ItemState(
            row["id"], leaf, self.tree.path_of(leaf), self._parts.get(leaf, leaf),
            version, floats, row["colour"], row["usage"],
        )  # fmt: skip

    def _placed(self, change: Change, tree: Tree, parts: dict[int, int]) -> Change:
        """Fills in the partition of an entry written before partitions were recorded."""
        item = change.item
        if item is None or item.partition_id or not tree.is_active(item.leaf_id):
            return change
        where = replace(item, leaf=tree.path_of(item.leaf_id))
        return replace(change, item=replace(where, partition_id=parts.get(item.leaf_id, 0)))

    def _trim(self, session: Session, seq: int, added: int) -> None:
        """Keeps the feed near `feed_keep` entries, trimming after every tenth of that."""
        every = max(1, min(1000, self._keep // 10))
        if seq // every != (seq - added) // every:
            feed.trim(session, self._keep)

    def rerank(
        self,
        query: Sequence[tuple[str, float]],
        candidates: Sequence[Candidate],
        k: int,
        settings: Settings,
        categories: Sequence[str] = (),
    ) -> tuple[RerankResult, dict[str, items.Stored]]:
        """Reranks on the current tree, each candidate in the leaf the record holds it in (the
        shard's copy may be older); returns the result and the records of the items kept.

        The candidates' leaves come from memory, so only the k kept items are read.
        """
        tree, leaf_of = self.tree, self._leaf_of
        held = {
            c.item_id: tree.path_of(leaf_of[c.item_id]) for c in candidates if c.item_id in leaf_of
        }
        result = rerank(tree, query, candidates, k, settings, categories, held)
        found, _ = self.get_items([ranked.item_id for ranked in result.items])
        return result, {item.id: item for item in found}

    def counts(self) -> dict[int, int]:
        """Items per node, each counted in its leaf and every ancestor (from memory)."""
        totals: dict[int, int] = {}
        for leaf, count in Counter(self._leaf_of.values()).items():
            if self.tree.is_active(leaf):
                for node_id in self.tree.chain(leaf):
                    totals[node_id] = totals.get(node_id, 0) + count
        return totals

    def examples(self, node_id: int, limit: int = 5) -> list[str]:
        """A few ids of the items in the node's subtree."""
        if not self.tree.is_active(node_id):
            return []
        with self._sessions() as session:
            query = select(ItemRow.id).where(ItemRow.leaf_id.in_(self.tree.subtree(node_id)))
            return list(session.scalars(query.order_by(ItemRow.id).limit(limit)))

    def suggestions(self, limit: int = 0) -> list[items.Group]:
        with self._sessions() as session:
            return items.open_groups(session, self.tree, limit)

    def _load(self) -> tuple[Tree, int, dict[str, int]]:
        """The tree, its version, and every item's leaf (kept in memory for the rerank)."""
        with self._sessions() as session:
            nodes = [_node(row) for row in session.scalars(select(NodeRow))]
            related = [(row.a, row.b) for row in session.scalars(select(RelatedRow))]
            former: dict[str, int] = {}
            for effect in session.scalars(select(EditRow.effect).order_by(EditRow.version)):
                former.update(json.loads(effect).get("former_paths", {}))
            rows = session.execute(select(ItemRow.id, ItemRow.leaf_id))
            leaf_of = {item_id: leaf for item_id, leaf in rows}
            return Tree(nodes, related, former), _version(session), leaf_of

    def _check_base(self, base_version: int) -> None:
        if base_version != self.version:
            raise Aborted(
                f"the edit was made against version {base_version}; the tree is at version "
                f"{self.version}: read it again and redo the edit"
            )

    def _commit(
        self,
        op: Op,
        plan: Plan,
        effect: dict[str, Any],
        base: int,
        actor: str,
        comment: str,
        placements: list[ItemState],
    ) -> tuple[int, int]:
        """Writes the edit; returns the tree version and the feed position it made."""
        with self._sessions.begin() as session:
            version = _bump(session, base)
            _write_nodes(session, plan)
            _write_moves(session, plan.moves)
            _write_related(session, plan)
            if plan.suggestion is not None:
                path, status = plan.suggestion
                session.execute(
                    update(SuggestionRow)
                    .where(SuggestionRow.path == path, SuggestionRow.status == "open")
                    .values(status=status)
                )
            session.add(
                EditRow(
                    version=version,
                    actor=actor,
                    at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                    kind=plan.kind,
                    op=json.dumps(_op_json(op)),
                    summary=plan.summary,
                    effect=json.dumps(effect),
                    reverts=plan.reverts,
                    comment=comment,
                )
            )
            seq = feed.append(session, [feed.edit_row(version, placements)])
            self._trim(session, seq, 1)
        return version, seq


class _Facts:
    """edits.Facts over one session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def items_in(self, node_ids: Sequence[int]) -> list[ItemView]:
        return sorted(self._views(ItemRow.leaf_id, node_ids), key=lambda item: item.id)

    def items(self, item_ids: Sequence[str]) -> list[ItemView]:
        return self._views(ItemRow.id, item_ids)

    def _views(self, column: Any, values: Sequence[Any]) -> list[ItemView]:
        query = select(ItemRow.id, ItemRow.leaf_id, ItemRow.title, ItemRow.colour, ItemRow.usage)
        found: list[ItemView] = []
        for chunk in items.chunks(values):
            found += [
                ItemView(*row) for row in self._session.execute(query.where(column.in_(chunk)))
            ]
        return found

    def counts_in(self, node_ids: Sequence[int]) -> dict[int, int]:
        query = select(ItemRow.leaf_id, func.count()).group_by(ItemRow.leaf_id)
        counts: dict[int, int] = {}
        for chunk in items.chunks(node_ids):
            rows = self._session.execute(query.where(ItemRow.leaf_id.in_(chunk)))
            counts.update({leaf: count for leaf, count in rows})
        return counts

    def recorded(self, version: int) -> Recorded:
        row = self._session.get(EditRow, version)
        if row is None:
            raise NotFound(f"no edit made version {version}")
        effect = json.loads(row.effect)
        return Recorded(
            version,
            effects.node_states(effect),
            [ItemMove(m[0], m[1], m[2]) for m in effect["moves"]],
            frozenset(effects.pairs(effect["related_added"])),
            frozenset(effects.pairs(effect["related_removed"])),
        )

    def suggested(self, path: str) -> list[Suggested]:
        rows = self._session.execute(
            select(SuggestionRow.kind, SuggestionRow.item_id).where(
                SuggestionRow.path == path, SuggestionRow.status == "open"
            )
        )
        by_kind: dict[str, list[str]] = {}
        for kind, item_id in rows:
            by_kind.setdefault(kind, []).append(item_id)
        return [Suggested(path, kind, ids) for kind, ids in sorted(by_kind.items())]


def _changes_nothing(plan: Plan) -> bool:
    return not (
        plan.nodes or plan.moves or plan.related_added or plan.related_removed or plan.suggestion
    )


def _bump(session: Session, base: int) -> int:
    """Moves the version row from `base` to base + 1, or refuses if another edit went first."""
    bumped = session.execute(
        update(TreeVersionRow)
        .where(TreeVersionRow.id == 1, TreeVersionRow.version == base)
        .values(version=base + 1)
    )
    if cast(CursorResult[Any], bumped).rowcount == 1:
        return base + 1
    current = _version(session)
    if base == 0 and current == 0 and session.get(TreeVersionRow, 1) is None:
        session.add(TreeVersionRow(id=1, version=1))
        session.flush()
        return 1
    raise Aborted(f"the edit was made against version {base}; the tree is at version {current}")


def _write_nodes(session: Session, plan: Plan) -> None:
    created = [after for before, after in plan.nodes.values() if before is None]
    depth = {
        node.id: len(plan.tree.chain(node.id)) if plan.tree.is_active(node.id) else 0
        for node in created
    }
    if created:
        rows = [_row(node) for node in sorted(created, key=lambda n: depth[n.id])]
        session.execute(insert(NodeRow), rows)
    changed = [_row(after) for before, after in plan.nodes.values() if before]
    if changed:
        session.execute(update(NodeRow), changed)


def _write_moves(session: Session, moves: Sequence[ItemMove]) -> None:
    if moves:
        items_table = cast(Table, ItemRow.__table__)
        session.execute(
            update(items_table).where(items_table.c.id == bindparam("item")),
            [{"item": move.item_id, "leaf_id": move.target} for move in moves],
        )


def _write_related(session: Session, plan: Plan) -> None:
    for a, b in plan.related_removed:
        session.execute(delete(RelatedRow).where(RelatedRow.a == a, RelatedRow.b == b))
    if plan.related_added:
        session.execute(insert(RelatedRow), [{"a": a, "b": b} for a, b in plan.related_added])


def _route(row: RouteRow) -> Route:
    ready = tuple(json.loads(row.ready))
    return Route(
        row.partition_id, tuple(json.loads(row.serving)), tuple(json.loads(row.target)), ready
    )


def _node(row: NodeRow) -> Node:
    return Node(row.id, row.name, row.parent_id or ROOT, row.archived, row.replaced_by or 0)


def _row(node: Node) -> dict[str, Any]:
    return {
        "id": node.id,
        "name": node.name,
        "parent_id": node.parent or None,
        "archived": node.archived,
        "replaced_by": node.replaced_by or None,
    }


def _version(session: Session) -> int:
    return session.scalar(select(TreeVersionRow.version).where(TreeVersionRow.id == 1)) or 0


def _entry(row: EditRow) -> Entry:
    return Entry(
        row.version,
        row.actor,
        row.at,
        row.kind,
        row.op,
        row.summary,
        json.loads(row.effect),
        row.reverts,
        row.comment,
    )


def _op_json(op: Op) -> dict[str, Any]:
    return {"op": ops.KINDS[type(op)], **asdict(op)}
