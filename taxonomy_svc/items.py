"""The catalog's items in the record: where each goes in the tree, and sellers' suggestions.

`place` decides each incoming item's leaf on the tree in memory (pure); the other functions
take a Session inside the caller's transaction.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from common import paths, vectors
from common.errors import InvalidArgument, ItemFailure, NotFound, VisualSearchError
from taxonomy_svc.db import LEAF_SOURCES, ItemRow, SuggestionRow, VectorRow
from taxonomy_svc.tree import Tree

CHUNK = 5000  # ids per IN (...) query: well under SQLite's and PostgreSQL's parameter caps
T = TypeVar("T")
NEW_PATH, DISAGREEMENT = "new_path", "disagreement"


@dataclass(frozen=True, slots=True)
class Incoming:
    """An item to record: the leaf it names (a path) and the classifier's leaves, if any."""

    id: str
    leaf: str
    leaf_source: str = "given"  # one of LEAF_SOURCES
    title: str = ""
    colour: str = ""
    usage: str = ""
    predicted: tuple[tuple[str, float], ...] = ()  # (leaf path, probability), likeliest first
    vector: bytes = b""  # the item's embedding, little-endian float32, or none
    model_version: str = ""  # the encoder version that made `vector`


@dataclass(frozen=True, slots=True)
class Stored:
    """An item as the record holds it, its leaf as a path of the current tree."""

    id: str
    leaf: str
    leaf_source: str
    title: str
    colour: str
    usage: str
    leaf_id: int


@dataclass(frozen=True)
class Put:
    """What PutItems answers: one leaf per item ("" where refused) and the refusals."""

    leaves: list[str]
    failures: list[ItemFailure]
    seq: int = 0  # the feed's head once the items were committed


@dataclass(frozen=True)
class Group:
    """Open suggestions proposing one path."""

    path: str
    kind: str
    count: int
    examples: list[str]


@dataclass
class Placed:
    put: Put
    rows: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[tuple[str, str, str]] = field(default_factory=list)  # path, kind, item
    vectors: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id: version, vector


def place(
    tree: Tree, incoming: Sequence[Incoming], suggest_below: float, dims: dict[str, int]
) -> Placed:
    """Decides each item's leaf; a bad item fails alone.

    A given leaf the tree knows (or knew: an archived path resolves to its successor) is kept;
    if the classifier gives it less than `suggest_below`, the classifier's leaf is suggested.
    A given path the tree lacks puts the item in the classifier's leaf, marked predicted, and
    suggests the path. Where an id repeats, the last item wins. A vector must be whole, finite
    float32s of its model version's width (`dims`, the widths known so far).
    """
    placed = Placed(Put([""] * len(incoming), []))
    rows: dict[str, dict[str, Any]] = {}
    widths = dict(dims)
    for index, item in enumerate(incoming):
        try:
            leaf_id, source, suggestion = _leaf(tree, item, suggest_below)
            check_vector(item.id, item.vector, item.model_version, widths)
        except VisualSearchError as error:
            placed.put.failures.append(ItemFailure.of(index, item.id, error))
            continue
        rows[item.id] = {
            "id": item.id,
            "leaf_id": leaf_id,
            "leaf_source": source,
            "title": item.title,
            "colour": item.colour,
            "usage": item.usage,
        }
        placed.vectors.pop(item.id, None)
        if item.vector:
            placed.vectors[item.id] = (item.model_version, item.vector)
            widths.setdefault(item.model_version, len(item.vector) // 4)
        placed.put.leaves[index] = tree.path_of(leaf_id)
        if suggestion is not None:
            placed.suggestions.append((*suggestion, item.id))
    placed.rows = list(rows.values())
    return placed


def _leaf(
    tree: Tree, item: Incoming, suggest_below: float
) -> tuple[int, str, tuple[str, str] | None]:
    """(leaf id, leaf source, (path, kind) of a suggestion or None)."""
    if not item.id.strip():
        raise InvalidArgument("item id is empty")
    if item.leaf_source not in LEAF_SOURCES:
        raise InvalidArgument(
            f"item {item.id!r}: leaf_source {item.leaf_source!r} is not 'given' or 'predicted'"
        )
    predicted = _predicted(tree, item)
    if not item.leaf:
        if not predicted:
            raise InvalidArgument(f"item {item.id!r} has no leaf")
        return predicted[0][0], "predicted", None
    try:
        leaf = _checked_leaf(tree, tree.resolve_path(item.leaf), item)
    except NotFound:
        paths.split(item.leaf)  # a malformed path is refused, not suggested
        if not predicted:
            raise NotFound(f"item {item.id!r}: the taxonomy has no node {item.leaf!r}") from None
        return predicted[0][0], "predicted", (item.leaf, NEW_PATH)
    if item.leaf_source == "given" and predicted:
        prob = sum(p for leaf_id, p in predicted if leaf_id == leaf)
        if prob < suggest_below and predicted[0][0] != leaf:
            return leaf, "given", (tree.path_of(predicted[0][0]), DISAGREEMENT)
    return leaf, item.leaf_source, None


def check_vector(item_id: str, vector: bytes, model_version: str, dims: dict[str, int]) -> None:
    """Refuses a vector that is not whole finite float32s of its model version's width.

    Raises:
        InvalidArgument: saying what is wrong with it.
    """
    if not vector:
        return
    if not model_version:
        raise InvalidArgument(f"item {item_id!r}: a vector needs its model_version")
    try:
        vectors.from_bytes(vector, dims.get(model_version))
    except InvalidArgument as error:
        raise InvalidArgument(
            f"item {item_id!r} of model version {model_version!r}: {error}"
        ) from None


def _predicted(tree: Tree, item: Incoming) -> list[tuple[int, float]]:
    """The classifier's leaves the tree can place (old paths resolved), likeliest first."""
    found: list[tuple[int, float]] = []
    for path, prob in sorted(item.predicted, key=lambda pair: -pair[1]):
        try:
            leaf = tree.resolve_path(path)
        except NotFound:
            continue
        if tree.is_active(leaf) and not tree.child_ids(leaf):
            found.append((leaf, prob))
    return found


def _checked_leaf(tree: Tree, node_id: int, item: Incoming) -> int:
    if tree.child_ids(node_id):
        raise InvalidArgument(f"item {item.id!r}: {tree.path_of(node_id)!r} is not a leaf")
    return node_id


def upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Inserts new items and replaces stored ones."""
    stored: set[str] = set()
    for chunk in chunks([row["id"] for row in rows]):
        stored.update(session.scalars(select(ItemRow.id).where(ItemRow.id.in_(chunk))))
    inserts = [row for row in rows if row["id"] not in stored]
    updates = [row for row in rows if row["id"] in stored]
    if inserts:
        session.execute(insert(ItemRow), inserts)
    if updates:
        session.execute(update(ItemRow), updates)


def suggest(session: Session, suggestions: list[tuple[str, str, str]]) -> None:
    """Records suggestions, each (path, kind, item) once; a re-ingest reopens a closed one."""
    for path, kind, item_id in suggestions:
        found = session.scalar(
            select(SuggestionRow).where(
                SuggestionRow.path == path,
                SuggestionRow.kind == kind,
                SuggestionRow.item_id == item_id,
            )
        )
        if found is None:
            session.add(SuggestionRow(path=path, kind=kind, item_id=item_id, status="open"))
        elif found.status != "open":
            found.status = "open"


def open_groups(session: Session, tree: Tree, limit: int = 0) -> list[Group]:
    """Open suggestions grouped by proposed path, the largest groups first."""
    rows = session.execute(
        select(SuggestionRow.path, SuggestionRow.kind, SuggestionRow.item_id)
        .where(SuggestionRow.status == "open")
        .order_by(SuggestionRow.id)
    )
    grouped: dict[tuple[str, str], list[str]] = {}
    for path, kind, item_id in rows:
        grouped.setdefault((path, kind), []).append(item_id)
    groups = [Group(path, kind, len(ids), ids[:5]) for (path, kind), ids in grouped.items()]
    groups.sort(key=lambda group: (-group.count, group.path))
    return groups[:limit] if limit else groups


def get(session: Session, tree: Tree, ids: Sequence[str]) -> tuple[list[Stored], list[str]]:
    """Looks items up by id, a few queries for any number of ids.

    Returns:
        (the items found, the ids not found), each in request order, each id once.

    Raises:
        InvalidArgument: an id is empty.
    """
    unique = _unique_ids(ids)
    by_id: dict[str, Stored] = {}
    for chunk in chunks(unique):
        for row in session.execute(select(*_COLUMNS).where(ItemRow.id.in_(chunk))):
            by_id[row[0]] = _stored(tree, *row)
    found = [by_id[item_id] for item_id in unique if item_id in by_id]
    return found, [item_id for item_id in unique if item_id not in by_id]


def every(session: Session, tree: Tree) -> list[Stored]:
    """Every item, sorted by id."""
    rows = session.execute(select(*_COLUMNS).order_by(ItemRow.id))
    return [_stored(tree, *row) for row in rows]


def delete(session: Session, ids: Sequence[str]) -> list[str]:
    """Deletes items and their vectors by id; ids not stored are ignored.

    Returns:
        The ids of the items deleted.

    Raises:
        InvalidArgument: an id is empty.
    """
    deleted: list[str] = []
    for chunk in chunks(_unique_ids(ids)):
        held = list(session.scalars(select(ItemRow.id).where(ItemRow.id.in_(chunk))))
        session.execute(sqlalchemy.delete(VectorRow).where(VectorRow.item_id.in_(held)))
        session.execute(sqlalchemy.delete(ItemRow).where(ItemRow.id.in_(held)))
        deleted += held
    return deleted


_COLUMNS = (
    ItemRow.id,
    ItemRow.leaf_id,
    ItemRow.leaf_source,
    ItemRow.title,
    ItemRow.colour,
    ItemRow.usage,
)


def _stored(
    tree: Tree, item_id: str, leaf: int, source: str, title: str, colour: str, usage: str
) -> Stored:
    return Stored(item_id, tree.path_of(leaf), source, title, colour, usage, leaf)


def _unique_ids(ids: Sequence[str]) -> list[str]:
    if any(not item_id.strip() for item_id in ids):
        raise InvalidArgument("an item id is empty")
    return list(dict.fromkeys(ids))


def chunks(values: Sequence[T]) -> list[Sequence[T]]:
    """The values in slices of CHUNK, one IN (...) query each."""
    return [values[start : start + CHUNK] for start in range(0, len(values), CHUNK)]
