"""A generated marketplace taxonomy, its items and rerank calls: the taxonomy benchmark's data.

The tree has levels of 4 to 8 children under 20 top-level nodes, items spread over the leaves
with a long tail, and related links across branches. A rerank call has 3 believed leaves near
one another and candidates from 20 to 60 leaves, most of them near the query.
"""

import dataclasses
import random
from collections.abc import Callable
from typing import TypeVar

from common import paths
from taxonomy_svc.rerank import Candidate
from taxonomy_svc.tree import Node, Tree

TOPS = (
    "Apparel", "Footwear", "Accessories", "Beauty", "Home", "Kitchen", "Garden", "Toys",
    "Sports", "Electronics", "Computers", "Phones", "Books", "Music", "Office", "Pets",
    "Baby", "Automotive", "Tools", "Grocery",
)  # fmt: skip
WORDS = (
    "Men", "Women", "Kids", "Unisex", "Topwear", "Bottomwear", "Outerwear", "Innerwear",
    "Shirts", "Tshirts", "Jeans", "Trousers", "Shorts", "Skirts", "Dresses", "Jackets",
    "Coats", "Sweaters", "Socks", "Shoes", "Sandals", "Boots", "Sneakers", "Bags", "Wallets",
    "Belts", "Watches", "Jewellery", "Sunglasses", "Caps", "Scarves", "Gloves", "Makeup",
    "Skincare", "Haircare", "Fragrance", "Bedding", "Lighting", "Decor", "Storage", "Rugs",
    "Cookware", "Cutlery", "Tableware", "Appliances", "Cables", "Chargers", "Cases", "Audio",
    "Cameras", "Screens", "Fitness", "Cycling", "Running", "Camping", "Fishing", "Classic",
    "Modern", "Vintage", "Premium", "Basic", "Travel", "Outdoor", "Indoor", "Party", "Formal",
)  # fmt: skip
COLOURS = ("Black", "White", "Blue", "Red", "Green", "Grey", "Brown", "Pink")
NEAR, FAR = (0.5, 0.95), (0.3, 0.8)  # visual scores of candidates near and far from the query
NEAR_EDGES = 4  # a candidate leaf this close to a believed leaf is near (the default max_distance)
NEAR_WEIGHT = 6  # how much likelier a candidate is drawn from a near leaf
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Catalog:
    """A generated taxonomy: nodes parents first, related links, items as (id, leaf id)."""

    nodes: list[Node]
    related: list[tuple[int, int]]
    items: list[tuple[str, int]]
    paths: dict[int, str]


@dataclasses.dataclass(frozen=True)
class Call:
    query: list[tuple[str, float]]
    candidates: list[Candidate]


def generate(rng: random.Random, size: int, item_count: int, related: int) -> Catalog:
    """Levels of 4 to 8 children, all of a level expanded before the next, in random order."""
    nodes = [Node(i + 1, name) for i, name in enumerate(TOPS[: min(size, len(TOPS))])]
    level = list(nodes)
    while len(nodes) < size:
        rng.shuffle(level)
        below: list[Node] = []
        for parent in level:
            names = rng.sample(WORDS, min(rng.randint(4, 8), size - len(nodes)))
            children = [Node(len(nodes) + i + 1, n, parent.id) for i, n in enumerate(names)]
            below += children
            nodes += children
            if len(nodes) >= size:
                break
        level = below
    node_paths: dict[int, str] = {}
    for node in nodes:  # parents first
        above = node_paths.get(node.parent, "")
        node_paths[node.id] = paths.join(above, node.name) if above else node.name
    parents = {node.parent for node in nodes}
    leaves = [node.id for node in nodes if node.id not in parents]
    weights = [rng.paretovariate(2.0) for _ in leaves]  # a few popular leaves, a long tail
    placed = rng.choices(leaves, weights, k=item_count)
    items = [(f"item{i:06d}", leaf) for i, leaf in enumerate(placed)]
    return Catalog(nodes, _links(rng, node_paths, related), items, node_paths)


def _links(rng: random.Random, node_paths: dict[int, str], count: int) -> list[tuple[int, int]]:
    """Related links between nodes of depth 2 or 3 under different top-level nodes."""
    middle = [i for i, path in node_paths.items() if 2 <= path.count(paths.SEP) + 1 <= 3]
    links: set[tuple[int, int]] = set()
    while len(links) < count and len(middle) > 1:
        a, b = rng.sample(middle, 2)
        if node_paths[a].split(paths.SEP)[0] != node_paths[b].split(paths.SEP)[0]:
            links.add((min(a, b), max(a, b)))
    return sorted(links)


def calls(rng: random.Random, catalog: Catalog, tree: Tree, count: int, size: int) -> list[Call]:
    """Rerank calls: 3 believed leaves near one another, candidates from 20 to 60 leaves."""
    stocked: dict[int, list[str]] = {}
    for item_id, leaf in catalog.items:
        stocked.setdefault(leaf, []).append(item_id)
    leaves = sorted(stocked)
    linked = {node for link in catalog.related for node in link}
    under_link = [i for i in leaves if linked.intersection(tree.chain(i))]
    calls: list[Call] = []
    for _ in range(count):  # a third start in the subtree of a related node
        first = rng.choice(under_link if under_link and rng.random() < 1 / 3 else leaves)
        calls.append(_call(rng, catalog, tree, stocked, first, size))
    return calls


def _call(
    rng: random.Random,
    catalog: Catalog,
    tree: Tree,
    stocked: dict[int, list[str]],
    first: int,
    size: int,
) -> Call:
    """A call whose likeliest leaf is `first`, its candidates in 20 to 60 leaves, popular ones
    likelier: 60% of the leaves near the believed ones (NEAR_EDGES at most), 10% under a node
    related to an ancestor of `first`, the rest anywhere. Each leaf gives one candidate; the
    others are drawn, those in near leaves NEAR_WEIGHT times likelier."""
    chain = tree.chain(first)
    cousins = [i for i in stocked if tree.chain(i)[0] == chain[0]]
    siblings = [i for i in cousins if tree.chain(i)[:2] == chain[:2]]
    believed = [first, rng.choice(siblings), rng.choice(cousins)]
    near = [i for i in cousins if min(tree.id_distance(i, b) for b in believed) <= NEAR_EDGES]
    targets = {other for node in chain for other in tree.related_to(node)}
    linked = [i for i in stocked if targets.intersection(tree.chain(i))]
    wanted = rng.randint(20, 60)
    chosen = dict.fromkeys(believed)
    chosen.update(dict.fromkeys(_drawn(rng, near, lambda i: len(stocked[i]))[: wanted * 6 // 10]))
    chosen.update(dict.fromkeys(_drawn(rng, linked, lambda i: len(stocked[i]))[: wanted // 10]))
    for leaf in _drawn(rng, list(stocked), lambda i: len(stocked[i])):
        if len(chosen) >= wanted and sum(len(stocked[i]) for i in chosen) >= size:
            break
        chosen[leaf] = None
    firsts = [(stocked[leaf][0], leaf) for leaf in list(chosen)[:size]]
    rest = [(item, leaf) for leaf in chosen for item in stocked[leaf][1:]]
    inside = set(near)
    rest = _drawn(rng, rest, lambda pair: NEAR_WEIGHT if pair[1] in inside else 1)
    candidates = [
        Candidate(item_id, rng.uniform(*(NEAR if leaf in inside else FAR)), catalog.paths[leaf])
        for item_id, leaf in firsts + rest[: size - len(firsts)]
    ]
    return Call(_query(rng, catalog, believed), candidates)


def _query(rng: random.Random, catalog: Catalog, believed: list[int]) -> list[tuple[str, float]]:
    """The believed leaves with probabilities of at least 0.12 summing to 1, the first likeliest."""
    top = rng.uniform(0.45, 0.7)
    second = rng.uniform(0.12, 1.0 - top - 0.12)
    probs = (top, second, 1.0 - top - second)
    return [(catalog.paths[leaf], p) for leaf, p in zip(believed, probs, strict=True)]


def _drawn(rng: random.Random, values: list[T], weight: Callable[[T], float]) -> list[T]:
    """The values in a random order where the heavier tend to come first (Efraimidis-Spirakis)."""
    return sorted(values, key=lambda v: rng.random() ** (1 / weight(v)), reverse=True)
