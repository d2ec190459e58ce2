"""The feed: the record's one ordered, gap-free sequence of changes, and scans of its state.

A writer takes its sequence numbers by bumping the one `feed_head` row inside its own
transaction. That row lock (SQLite's write lock, PostgreSQL's row lock) makes writers take
turns, so entries are numbered in commit order with no gap, and a reader that sees entry n has
seen every entry before it. Everything here runs inside the caller's Session; nothing speaks
gRPC. The README ("The record, the feed and the shards that follow it") says where the line to
a log engine (Kafka, NATS JetStream) lies.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from common.feed import DELETE, EDIT, ROUTE, SPLIT, UPSERT, Change, ItemState, Route
from taxonomy_svc.db import FeedHeadRow, FeedRow, ItemRow, ModelVersionRow, VectorRow
from taxonomy_svc.items import chunks


def upsert_row(item: ItemState) -> dict[str, Any]:
    data = {
        "leaf_id": item.leaf_id,
        "leaf": item.leaf,
        "partition_id": item.partition_id,
        "colour": item.colour,
        "usage": item.usage,
    }
    return {
        "kind": UPSERT,
        "item_id": item.item_id,
        "data": json.dumps(data),
        "model_version": item.model_version,
        "vector": item.vector or None,
    }


def delete_row(item_id: str) -> dict[str, Any]:
    return {"kind": DELETE, "item_id": item_id, "data": "{}", "model_version": "", "vector": None}


def edit_row(version: int, placements: Sequence[ItemState]) -> dict[str, Any]:
    """An EDIT entry: the tree version it made and every item it placed elsewhere."""
    return _placing_row(EDIT, {"version": version}, placements)


def split_row(partition: int, placements: Sequence[ItemState]) -> dict[str, Any]:
    """A SPLIT entry: the partition split and every item placed in one of its children."""
    return _placing_row(SPLIT, {"split": partition}, placements)


def _placing_row(
    kind: str, data: dict[str, int], placements: Sequence[ItemState]
) -> dict[str, Any]:
    placed = [[p.item_id, p.leaf_id, p.leaf, p.partition_id] for p in placements]
    body = json.dumps({**data, "placements": placed})
    return {"kind": kind, "item_id": "", "data": body, "model_version": "", "vector": None}


def route_row(route: Route) -> dict[str, Any]:
    data = {
        "partition_id": route.partition_id,
        "serving": list(route.serving),
        "target": list(route.target),
        "ready": list(route.ready),
    }
    return {
        "kind": ROUTE,
        "item_id": "",
        "data": json.dumps(data),
        "model_version": "",
        "vector": None,
    }


def append(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Numbers `rows` after the feed's head and inserts them; returns the new head."""
    if rows:
        session.execute(
            update(FeedHeadRow).where(FeedHeadRow.id == 1).values(seq=FeedHeadRow.seq + len(rows))
        )
    last = head(session)
    first = last - len(rows) + 1
    if rows:
        numbered = [{**row, "seq": first + i} for i, row in enumerate(rows)]
        session.execute(insert(FeedRow), numbered)
    return last


def feed_id(session: Session) -> str:
    """The feed's identity, made with the database."""
    return session.scalar(select(FeedHeadRow.feed_id).where(FeedHeadRow.id == 1)) or ""


def head(session: Session) -> int:
    """The last sequence number committed (0: an empty feed)."""
    return session.scalar(select(FeedHeadRow.seq).where(FeedHeadRow.id == 1)) or 0


def oldest(session: Session) -> int:
    """The first sequence number the feed still keeps (head + 1 if it keeps none)."""
    first = session.scalar(select(func.min(FeedRow.seq)))
    return first if first is not None else head(session) + 1


def read(session: Session, after: int, limit: int, tree_only: bool = False) -> list[Change]:
    """Up to `limit` entries after sequence number `after`, oldest first."""
    query = select(FeedRow).where(FeedRow.seq > after)
    if tree_only:
        query = query.where(FeedRow.kind.in_((EDIT, ROUTE, SPLIT)))
    return [_change(row) for row in session.scalars(query.order_by(FeedRow.seq).limit(limit))]


def trim(session: Session, keep: int) -> int:
    """Drops all but the last `keep` entries; returns how many were dropped."""
    cut = head(session) - keep
    if cut <= 0:
        return 0
    result = session.execute(delete(FeedRow).where(FeedRow.seq <= cut))
    return int(getattr(result, "rowcount", 0) or 0)


def put_vectors(session: Session, vectors: Sequence[tuple[str, str, bytes]], seq: int) -> None:
    """Stores (item id, model version, vector) rows, replacing those held; registers new
    model versions with `seq`, the feed position of their first vector."""
    by_version: dict[str, list[tuple[str, bytes]]] = {}
    for item_id, version, vector in vectors:
        by_version.setdefault(version, []).append((item_id, vector))
    for version, rows in by_version.items():
        for chunk in chunks(rows):
            ids = [item_id for item_id, _ in chunk]
            session.execute(
                delete(VectorRow).where(
                    VectorRow.model_version == version, VectorRow.item_id.in_(ids)
                )
            )
            session.execute(
                insert(VectorRow),
                [{"item_id": i, "model_version": version, "vector": v} for i, v in chunk],
            )
        if session.get(ModelVersionRow, version) is None:
            session.add(ModelVersionRow(version=version, first_seq=seq))


def dims(session: Session) -> dict[str, int]:
    """The width of each model version's vectors, from one stored vector of each."""
    widths: dict[str, int] = {}
    for (version,) in session.execute(select(ModelVersionRow.version)):
        vector = session.scalar(
            select(VectorRow.vector).where(VectorRow.model_version == version).limit(1)
        )
        if vector is not None:
            widths[version] = len(vector) // 4
    return widths


def latest_version(session: Session) -> str:
    """The model version whose first vector was recorded last ("" if none)."""
    query = select(ModelVersionRow.version).order_by(ModelVersionRow.first_seq.desc()).limit(1)
    return session.scalar(query) or ""


def scan(
    session: Session,
    leaf_ids: Iterable[int] | None,
    item_ids: Sequence[str],
    version: str,
    chunk: int,
) -> Iterator[list[tuple[str, int, str, str, bytes]]]:
    """(item id, leaf id, colour, usage, vector) of the items with a vector of `version`: those
    named, else those in `leaf_ids`, else every one; `chunk` rows at a time, streamed from the
    database."""
    query = (
        select(ItemRow.id, ItemRow.leaf_id, ItemRow.colour, ItemRow.usage, VectorRow.vector)
        .join(VectorRow, VectorRow.item_id == ItemRow.id)
        .where(VectorRow.model_version == version)
        .order_by(ItemRow.id)
        .execution_options(yield_per=chunk)
    )
    if item_ids:
        queries = [query.where(ItemRow.id.in_(ids)) for ids in chunks(item_ids)]
    elif leaf_ids is not None:
        queries = [query.where(ItemRow.leaf_id.in_(ids)) for ids in chunks(list(leaf_ids))]
    else:
        queries = [query]
    for one in queries:
        for rows in session.execute(one).partitions():
            yield [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def _change(row: FeedRow) -> Change:
    data = json.loads(row.data)
    if row.kind == DELETE:
        return Change(row.seq, DELETE, item_id=row.item_id)
    if row.kind == ROUTE:
        route = Route(
            data["partition_id"],
            tuple(data["serving"]),
            tuple(data["target"]),
            tuple(data["ready"]),
        )
        return Change(row.seq, ROUTE, route=route)
    if row.kind in (EDIT, SPLIT):
        placed = tuple(
            ItemState(i, leaf_id, leaf, part) for i, leaf_id, leaf, part in data["placements"]
        )
        if row.kind == SPLIT:
            return Change(row.seq, SPLIT, split=data["split"], placements=placed)
        return Change(row.seq, EDIT, version=data["version"], placements=placed)
    item = ItemState(
        row.item_id,
        data["leaf_id"],
        data.get("leaf", ""),
        data.get("partition_id", 0),  # 0: not known when written (entries of migration 0003)
        row.model_version,
        row.vector or b"",
        data.get("colour", ""),
        data.get("usage", ""),
    )
    return Change(row.seq, UPSERT, item=item, item_id=row.item_id)
