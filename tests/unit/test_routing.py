"""Which partitions (node ids) a query searches, and which shards hold each."""

import pytest

from common.errors import InvalidArgument
from common.feed import Route
from common.routing import NodeInfo, Routes, replicas_of, shard_of
from gateway.health import ShardHealth
from gateway.routing import (
    TreeView,
    partitions_for_categories,
    partitions_for_leaves,
)

APPAREL, TOPWEAR, TSHIRTS, BOTTOMWEAR, SHORTS, FOOTWEAR, SHOES, BOOTS, GIFTS = range(1, 10)
NODES = [  # parents first, as GetTree gives them
    NodeInfo(APPAREL, "Apparel", 0, 1, False),
    NodeInfo(TOPWEAR, "Apparel/Topwear", APPAREL, 2, False),
    NodeInfo(TSHIRTS, "Apparel/Topwear/Tshirts", TOPWEAR, 3, True),
    NodeInfo(BOTTOMWEAR, "Apparel/Bottomwear", APPAREL, 2, False),
    NodeInfo(SHORTS, "Apparel/Bottomwear/Shorts", BOTTOMWEAR, 3, True),
    NodeInfo(FOOTWEAR, "Footwear", 0, 1, False),
    NodeInfo(SHOES, "Footwear/Shoes", FOOTWEAR, 2, False),
    NodeInfo(BOOTS, "Footwear/Shoes/Boots", SHOES, 3, True),
    NodeInfo(GIFTS, "Gifts", 0, 1, True),  # a leaf above the level: its own partition
]
OLD = {"Apparel/Tops": TOPWEAR, "Apparel/Tops/Tees": TSHIRTS}  # before a rename


SHARDS = ["a:1", "b:2", "c:3"]


def _view(level: int = 2) -> TreeView:
    return TreeView.build(4, 40, NODES, OLD, [], level, Routes(SHARDS, 1))


def test_every_node_at_or_below_the_level_is_served_by_its_ancestor_at_the_level() -> None:
    view = _view()

    assert view.partition_of("Apparel/Topwear") == TOPWEAR
    assert view.partition_of("Apparel/Topwear/Tshirts") == TOPWEAR
    assert view.partition_of("Footwear/Shoes/Boots") == SHOES
    assert view.partition_of("Gifts") == GIFTS
    assert view.partition_of("Apparel") is None  # above the level
    assert view.partition_of("Toys/Cars") is None


def test_a_split_partition_is_served_by_its_children() -> None:
    view = TreeView.build(4, 40, NODES, OLD, [], 2, Routes(SHARDS, 1), split=[TOPWEAR])

    assert view.partition_of("Apparel/Topwear/Tshirts") == TSHIRTS
    assert view.partition_of("Apparel/Topwear") is None  # above its partitions now
    assert view.partition_of("Apparel/Bottomwear/Shorts") == BOTTOMWEAR
    assert partitions_for_categories(["Apparel/Topwear"], view) == [TSHIRTS]
    assert partitions_for_categories(["Apparel"], view) == [TSHIRTS, BOTTOMWEAR]


def test_old_paths_resolve_to_their_nodes_partition() -> None:
    view = _view()

    assert view.partition_of("Apparel/Tops/Tees") == TOPWEAR
    assert view.partition_of("Apparel/Tops") == TOPWEAR
    assert view.names[TOPWEAR] == "Apparel/Topwear"
    assert "Apparel/Tops" not in view.paths


def test_leaves_route_to_their_partitions_until_the_mass_is_covered() -> None:
    leaves = [
        ("Apparel/Topwear/Tshirts", 0.6),
        ("Footwear/Shoes/Boots", 0.3),
        ("Apparel/Bottomwear/Shorts", 0.1),
    ]

    assert partitions_for_leaves(leaves, _view(), mass=0.85, limit=3) == [TOPWEAR, SHOES]
    assert partitions_for_leaves(leaves, _view(), mass=0.5, limit=3) == [TOPWEAR]
    assert partitions_for_leaves(leaves, _view(1), mass=0.75, limit=3) == [APPAREL, FOOTWEAR]


def test_leaves_under_an_old_path_add_up_with_the_current_one() -> None:
    leaves = [
        ("Footwear/Shoes/Boots", 0.4),
        ("Apparel/Tops/Tees", 0.3),
        ("Apparel/Topwear/Tshirts", 0.3),
    ]

    assert partitions_for_leaves(leaves, _view(), mass=0.5, limit=3) == [TOPWEAR]


def test_the_limit_caps_the_partitions_but_the_best_is_always_searched() -> None:
    leaves = [("Apparel/Topwear/Tshirts", 0.3), ("Gifts", 0.3), ("Footwear/Shoes/Boots", 0.4)]

    assert partitions_for_leaves(leaves, _view(), mass=1.0, limit=1) == [SHOES]
    assert partitions_for_leaves(leaves, _view(), mass=0.0, limit=3) == [SHOES]


def test_a_leaf_the_tree_does_not_know_is_skipped() -> None:
    leaves = [("Toys/Cars/Racing", 0.9), ("Gifts", 0.1)]

    assert partitions_for_leaves(leaves, _view(), mass=0.9, limit=3) == [GIFTS]


def test_categories_route_to_partitions_above_and_below_the_level() -> None:
    view = _view()

    assert sorted(partitions_for_categories(["Apparel"], view)) == [TOPWEAR, BOTTOMWEAR]
    assert partitions_for_categories(["Footwear/Shoes/Boots", "Gifts"], view) == [SHOES, GIFTS]
    assert partitions_for_categories(["Apparel/Topwear", "Apparel"], view)[0] == TOPWEAR


def test_an_unknown_category_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="Toys"):
        partitions_for_categories(["Apparel", "Toys"], _view())


def test_replicas_are_distinct_shards_starting_at_the_hashed_one() -> None:
    shards = [*SHARDS, "d:4"]

    for partition in map(str, range(50)):
        holders = replicas_of(partition, shards, 3)
        assert len(set(holders)) == 3 and holders[0] == shard_of(partition, shards)
        assert holders == replicas_of(partition, list(shards), 3)
    assert len(replicas_of("7", shards, 9)) == 4
    assert replicas_of("7", shards, 0) == [shard_of("7", shards)]


def test_partitions_spread_over_the_shards() -> None:
    assert {shard_of(str(partition), SHARDS) for partition in range(30)} == set(SHARDS)


def test_each_search_starts_from_the_replica_of_its_turn_and_skips_those_left_out() -> None:
    health = ShardHealth(_never_serving, eject_after=1, probe_s=60.0)
    replicas = ["a:1", "b:2", "c:3"]

    assert [health.order(replicas, turn)[0] for turn in range(4)] == ["a:1", "b:2", "c:3", "a:1"]
    assert health.order(replicas, 1) == ["b:2", "c:3", "a:1"]
    health.failed("b:2")
    assert health.order(replicas, 1) == ["c:3", "a:1"]
    assert health.out == {"b:2"}


async def _never_serving(shard: str, timeout: float) -> bool:
    return False


def test_a_routing_row_overrides_the_hash_and_a_move_keeps_both_ends() -> None:
    routes = Routes(SHARDS, 1, [Route(7, serving=("c:3", "b:2"), target=("a:1",))])

    assert routes.serving("7") == ["c:3", "b:2"]
    assert routes.holders("7") == set(SHARDS)
    assert routes.serving("8") == replicas_of("8", SHARDS, 1) == [shard_of("8", SHARDS)]

    routes.update(Route(7, serving=("a:1",)))
    assert routes.serving("7") == ["a:1"] and routes.holders("7") == {"a:1"}
