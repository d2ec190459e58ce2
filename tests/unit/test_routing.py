"""Which partitions a query searches, and which shard holds each."""

import pytest

from common.errors import InvalidArgument
from common.routing import shard_of
from gateway.routing import by_shard, partitions_for_categories, partitions_for_leaves

TREE = [
    "Apparel",
    "Apparel/Topwear",
    "Apparel/Topwear/Tshirts",
    "Apparel/Bottomwear",
    "Apparel/Bottomwear/Shorts",
    "Footwear",
    "Footwear/Shoes",
    "Footwear/Shoes/Boots",
]


def test_leaves_route_to_their_partitions_until_the_mass_is_covered() -> None:
    leaves = [
        ("Apparel/Topwear/Tshirts", 0.6),
        ("Footwear/Shoes/Boots", 0.3),
        ("Apparel/Bottomwear/Shorts", 0.1),
    ]
    assert partitions_for_leaves(leaves, 2, mass=0.85, limit=3) == [
        "Apparel/Topwear",
        "Footwear/Shoes",
    ]
    assert partitions_for_leaves(leaves, 2, mass=0.5, limit=3) == ["Apparel/Topwear"]
    assert partitions_for_leaves(leaves, 1, mass=0.75, limit=3) == ["Apparel", "Footwear"]


def test_the_limit_caps_the_partitions_but_the_best_is_always_searched() -> None:
    leaves = [("A/x/1", 0.3), ("B/y/2", 0.3), ("C/z/3", 0.4)]
    assert partitions_for_leaves(leaves, 2, mass=1.0, limit=1) == ["C/z"]
    assert partitions_for_leaves(leaves, 2, mass=0.0, limit=3) == ["C/z"]


def test_categories_route_to_partitions_above_and_below_the_level() -> None:
    assert partitions_for_categories(["Apparel"], TREE, 2) == [
        "Apparel/Bottomwear",
        "Apparel/Topwear",
    ]
    assert partitions_for_categories(["Footwear/Shoes/Boots"], TREE, 2) == ["Footwear/Shoes"]


def test_an_unknown_category_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="Toys"):
        partitions_for_categories(["Toys"], TREE, 2)


def test_shards_are_chosen_the_same_way_everywhere() -> None:
    shards = ["a:1", "b:2", "c:3"]
    grouped = by_shard(["Apparel/Topwear", "Footwear/Shoes", "Apparel/Bottomwear"], shards)
    for shard, partitions in grouped.items():
        assert all(shard_of(partition, shards) == shard for partition in partitions)
    assert sum(len(p) for p in grouped.values()) == 3
