"""The feed's vocabulary, shared by the record that writes it and the shards that follow it.

The feed is the record's one ordered, gap-free sequence of changes to the catalog: an item
upserted (its place, attributes and, where the write carried one, its vector), an item
deleted, the tree edited (with every item the edit placed elsewhere), a partition's routing
changed, a partition split.
"""

from dataclasses import dataclass

UPSERT, DELETE, EDIT, ROUTE, SPLIT = "upsert", "delete", "edit", "route", "split"


@dataclass(frozen=True, slots=True)
class ItemState:
    """An item's place in the tree, and its vector where a change carries one."""

    item_id: str
    leaf_id: int
    leaf: str  # the leaf's path when the change committed
    partition_id: int
    model_version: str = ""
    vector: bytes = b""  # little-endian float32; empty: the change moved the item only
    colour: str = ""
    usage: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """The shards serving a partition, and those building it to take over (a move)."""

    partition_id: int
    serving: tuple[str, ...]
    target: tuple[str, ...] = ()
    ready: tuple[str, ...] = ()  # those of target that have built it


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the feed."""

    seq: int
    kind: str  # UPSERT, DELETE, EDIT, ROUTE or SPLIT
    item: ItemState | None = None  # UPSERT
    item_id: str = ""  # UPSERT, DELETE
    version: int = 0  # EDIT: the tree version the edit made
    placements: tuple[ItemState, ...] = ()  # EDIT, SPLIT: every item placed elsewhere
    split: int = 0  # SPLIT: the partition split by child node
    route: Route | None = None  # ROUTE
