"""The taxonomy's records in the database: nodes, items, the tree version.

Every function takes a Session; the caller owns the transaction (`with sessions.begin()`).
"""

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from common import paths
from common.errors import FailedPrecondition, InvalidArgument, ItemFailure, NotFound
from taxonomy_svc.db import LEAF_SOURCES, ItemRow, NodeRow, TreeVersionRow

_CHUNK = 5000  # ids per IN (...) query: well under SQLite's and PostgreSQL's bound-parameter caps


@dataclass(frozen=True, slots=True)
class ItemRecord:
    id: str
    leaf: str
    leaf_source: str = "given"  # one of LEAF_SOURCES
    title: str = ""
    colour: str = ""
    usage: str = ""


def add_paths(session: Session, node_paths: Iterable[str]) -> int:
    """Creates the nodes for every path and every prefix of one; bumps the version if any.

    Args:
        session: inside the caller's transaction.
        node_paths: paths such as "Apparel/Topwear/Tshirts".

    Returns:
        How many nodes were created.

    Raises:
        InvalidArgument: a path is empty or has an empty segment.
        FailedPrecondition: a new node would sit under a leaf that holds items.
    """
    wanted = _with_prefixes(node_paths)
    existing = set(session.scalars(select(NodeRow.path)))
    new = [row for path, row in wanted.items() if path not in existing]
    if not new:
        return 0
    _refuse_children_of_stocked_leaves(session, {row["parent"] for row in new} & existing)
    session.execute(insert(NodeRow), sorted(new, key=lambda row: row["depth"]))
    _bump_version(session)
    return len(new)


def load_paths(session: Session) -> list[str]:
    """Every node's path, sorted."""
    return list(session.scalars(select(NodeRow.path).order_by(NodeRow.path)))


def tree_version(session: Session) -> int:
    """The tree's version: 0 for an empty tree, then one more per change."""
    return session.scalar(select(TreeVersionRow.version).where(TreeVersionRow.id == 1)) or 0


def put_items(session: Session, items: Sequence[ItemRecord]) -> list[ItemFailure]:
    """Records items, replacing any stored under the same id; a bad item fails alone.

    Args:
        session: inside the caller's transaction.
        items: the items; where an id repeats, the last one wins.

    Returns:
        One failure per refused item (empty id, unknown leaf_source, leaf unknown or not
        a leaf); every other item is stored.
    """
    leaves = _leaf_flags(session, {item.leaf for item in items if item.leaf})
    failures: list[ItemFailure] = []
    valid: dict[str, ItemRecord] = {}
    for index, item in enumerate(items):
        problem = _problem(item, leaves)
        if problem is None:
            valid[item.id] = item
        else:
            failures.append(ItemFailure(index, item.id, problem[0], problem[1]))
    _upsert(session, list(valid.values()))
    return failures


def get_items(session: Session, ids: Sequence[str]) -> tuple[list[ItemRecord], list[str]]:
    """Looks items up by id, a few queries for any number of ids.

    Returns:
        (the items found, the ids not found), each in request order, each id once.

    Raises:
        InvalidArgument: an id is empty.
    """
    unique = _unique_ids(ids)
    columns = [getattr(ItemRow, field.name) for field in dataclasses.fields(ItemRecord)]
    by_id: dict[str, ItemRecord] = {}
    for chunk in _chunks(unique):
        for row in session.execute(select(*columns).where(ItemRow.id.in_(chunk))):
            by_id[row[0]] = ItemRecord(*row)
    found = [by_id[item_id] for item_id in unique if item_id in by_id]
    return found, [item_id for item_id in unique if item_id not in by_id]


def delete_items(session: Session, ids: Sequence[str]) -> int:
    """Deletes items by id; ids not stored are ignored.

    Returns:
        How many items were deleted.

    Raises:
        InvalidArgument: an id is empty.
    """
    deleted = 0
    for chunk in _chunks(_unique_ids(ids)):
        deleted += _rowcount(session.execute(delete(ItemRow).where(ItemRow.id.in_(chunk))))
    return deleted


def items_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ItemRow)) or 0


def export(session: Session) -> dict[str, Any]:
    """The tree and every item's leaf as JSON-able data, for training and backups.

    Returns:
        {"version": int, "nodes": [{"path", "parent"}] parents first ("" for a top-level
        node's parent), "items": [{"id", "leaf", "leaf_source"}] sorted by id}.
    """
    nodes = session.execute(
        select(NodeRow.path, NodeRow.parent).order_by(NodeRow.depth, NodeRow.path)
    )
    items = session.execute(
        select(ItemRow.id, ItemRow.leaf, ItemRow.leaf_source).order_by(ItemRow.id)
    )
    return {
        "version": tree_version(session),
        "nodes": [{"path": path, "parent": parent or ""} for path, parent in nodes],
        "items": [{"id": i, "leaf": leaf, "leaf_source": src} for i, leaf, src in items],
    }


def _with_prefixes(node_paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for path in node_paths:
        names = paths.split(path)
        for depth in range(1, len(names) + 1):
            node = paths.join(*names[:depth])
            parent = paths.join(*names[: depth - 1]) or None
            rows.setdefault(
                node, {"path": node, "name": names[depth - 1], "parent": parent, "depth": depth}
            )
    return rows


def _refuse_children_of_stocked_leaves(session: Session, parents: set[str]) -> None:
    for chunk in _chunks(sorted(parents)):
        stocked = session.scalar(select(ItemRow.leaf).where(ItemRow.leaf.in_(chunk)).limit(1))
        if stocked is not None:
            raise FailedPrecondition(
                f"leaf {stocked!r} holds items: move them before adding nodes under it"
            )


def _bump_version(session: Session) -> None:
    bumped = session.execute(
        update(TreeVersionRow)
        .where(TreeVersionRow.id == 1)
        .values(version=TreeVersionRow.version + 1)
    )
    if _rowcount(bumped) == 0:
        session.add(TreeVersionRow(id=1, version=1))
        session.flush()


def _leaf_flags(session: Session, node_paths: set[str]) -> dict[str, bool]:
    """For each of the paths the tree knows: whether it is a leaf."""
    child = aliased(NodeRow)
    has_children = exists().where(child.parent == NodeRow.path)
    flags: dict[str, bool] = {}
    for chunk in _chunks(sorted(node_paths)):
        query = select(NodeRow.path, has_children).where(NodeRow.path.in_(chunk))
        flags.update((path, not inner) for path, inner in session.execute(query))
    return flags


def _problem(item: ItemRecord, leaves: dict[str, bool]) -> tuple[str, str] | None:
    """(status code name, message) if the item cannot be stored."""
    if not item.id.strip():
        return InvalidArgument.code, "item id is empty"
    if item.leaf_source not in LEAF_SOURCES:
        wrong = f"leaf_source {item.leaf_source!r} is not 'given' or 'predicted'"
        return InvalidArgument.code, f"item {item.id!r}: {wrong}"
    if not item.leaf:
        return InvalidArgument.code, f"item {item.id!r} has no leaf"
    if item.leaf not in leaves:
        return NotFound.code, f"item {item.id!r}: the taxonomy has no node {item.leaf!r}"
    if not leaves[item.leaf]:
        return InvalidArgument.code, f"item {item.id!r}: {item.leaf!r} is not a leaf"
    return None


def _upsert(session: Session, records: list[ItemRecord]) -> None:
    stored: set[str] = set()
    for chunk in _chunks([record.id for record in records]):
        stored.update(session.scalars(select(ItemRow.id).where(ItemRow.id.in_(chunk))))
    rows = [dataclasses.asdict(record) for record in records]
    inserts = [row for row in rows if row["id"] not in stored]
    updates = [row for row in rows if row["id"] in stored]
    if inserts:
        session.execute(insert(ItemRow), inserts)
    if updates:
        session.execute(update(ItemRow), updates)


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def _unique_ids(ids: Sequence[str]) -> list[str]:
    if any(not item_id.strip() for item_id in ids):
        raise InvalidArgument("an item id is empty")
    return list(dict.fromkeys(ids))


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
