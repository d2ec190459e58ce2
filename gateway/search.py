"""The gateway's read flows: search by image and similar products."""

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

import numpy as np

from common import paths
from common.config import ClusterConfig
from common.deadline import Deadline
from common.errors import InvalidArgument, NotFound, VisualSearchError
from common.routing import BELIEF
from gateway.clients import Cluster, LeafProbs, Neighbour, Ranked, StoredVector
from gateway.follower import TreeFollower
from gateway.routing import (
    by_shard,
    partitions_for_categories,
    partitions_for_leaves,
    shard_of_leaf,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Share of a search's deadline the shards may use, so that the rerank still has time.
SHARD_SHARE = 0.75


@dataclass(frozen=True)
class SearchResult:
    results: list[Ranked]
    query_leaves: LeafProbs
    partitions: list[str]
    failed_shards: list[str] = field(default_factory=list)
    model_version: str = ""

    @property
    def partial(self) -> bool:
        return bool(self.failed_shards)


class Gateway:
    """Runs the flows of DESIGN.md over the cluster's services; holds no state of its own."""

    def __init__(self, cluster: Cluster, config: ClusterConfig, tree: TreeFollower) -> None:
        self._cluster = cluster
        self._config = config
        self._shards = config.shard_addresses
        self._tree = tree

    async def search_by_image(
        self, image: bytes, k: int, categories: Sequence[str], time_left: float | None = None
    ) -> SearchResult:
        """Embeds the image and searches the partitions of its most likely leaves."""
        k = self._checked_k(k)
        if not image:
            raise InvalidArgument("image is empty")
        deadline = Deadline(self._config.gateway.deadline_s, time_left)
        version, (embedded,) = await self._cluster.embed([image], 0, deadline.left())
        if embedded.failure is not None:
            raise InvalidArgument(f"image: {embedded.failure.message}")
        assert embedded.vector is not None
        return await self._search(
            embedded.vector, embedded.leaves, k, categories, [], version, deadline
        )

    async def similar_products(
        self, product_id: str, k: int, categories: Sequence[str], time_left: float | None = None
    ) -> SearchResult:
        """Searches with a catalog item's stored vector, the item itself left out."""
        k = self._checked_k(k)
        if not product_id:
            raise InvalidArgument("product_id is empty")
        deadline = Deadline(self._config.gateway.deadline_s, time_left)
        items, _ = await self._cluster.get_items([product_id], deadline.left())
        if not items:
            raise NotFound(f"product {product_id!r} is not in the catalog")
        leaf = items[0].leaf
        stored = await self._stored(product_id, leaf, deadline)
        if not stored:
            raise NotFound(f"product {product_id!r} has no indexed vector")
        return await self._search(
            stored[0].vector,
            [(leaf, 1.0)],
            k,
            categories,
            [product_id],
            stored[0].model_version,
            deadline,
            also=[stored[0].partition],  # where its vector is, if an edit moved its leaf since
        )

    async def _stored(self, product_id: str, leaf: str, deadline: Deadline) -> list[StoredVector]:
        """The item's vector from its partition's shard, else from any other: a taxonomy edit
        may have moved its leaf to another partition since it was indexed, and its vector
        stays where it was until the shards follow the taxonomy's changes."""
        shard = shard_of_leaf(leaf, self._config.partition_level, self._shards)
        stored = await self._cluster.fetch(shard, [product_id], deadline.left(SHARD_SHARE))
        others = [other for other in self._shards if other != shard]
        if stored or not others:
            return stored
        timeout = deadline.left(SHARD_SHARE)
        answers = await _each(self._cluster.fetch(other, [product_id], timeout) for other in others)
        found = [a for a in answers if not isinstance(a, VisualSearchError) and a]
        return found[0] if found else []

    def _checked_k(self, k: int) -> int:
        limit = self._config.gateway.max_k
        if k < 0 or k > limit:
            raise InvalidArgument(f"k={k} is outside 0..{limit} (0 means {self._default_k})")
        return k or self._default_k

    @property
    def _default_k(self) -> int:
        return self._config.gateway.default_k

    async def _search(
        self,
        query: np.ndarray,
        leaves: LeafProbs,
        k: int,
        categories: Sequence[str],
        exclude: Sequence[str],
        version: str,
        deadline: Deadline,
        also: Sequence[str] = (),
    ) -> SearchResult:
        partitions = await self._route(leaves, categories, deadline)
        if not categories:
            partitions += [partition for partition in also if partition not in partitions]
        neighbours, failed = await self._fan_out(query, partitions, exclude, deadline)
        believed = _leaves_inside(leaves, categories) if categories else leaves
        ranked = await self._rerank(believed, neighbours, k, categories, deadline)
        wider = [] if len(ranked) >= k else await self._related(leaves, partitions, deadline)
        if wider:
            more, failed_more = await self._fan_out(query, wider, exclude, deadline)
            ranked = await self._rerank(believed, neighbours + more, k, categories, deadline)
            partitions, failed = partitions + wider, failed + failed_more
        return SearchResult(ranked, leaves, partitions, failed, version)

    async def _rerank(
        self,
        believed: LeafProbs,
        neighbours: list[Neighbour],
        k: int,
        categories: Sequence[str],
        deadline: Deadline,
    ) -> list[Ranked]:
        if not neighbours:
            return []
        return await self._cluster.rerank(believed, neighbours, k, categories, deadline.left())

    async def _related(
        self, leaves: LeafProbs, searched: list[str], deadline: Deadline
    ) -> list[str]:
        """Back-off across partitions: those of nodes an editor related to the likely leaves."""
        tree = await self._tree.current(deadline.left())
        likely = [leaf for leaf, prob in leaves if prob >= BELIEF] or [leaves[0][0]]
        related = [
            other
            for a, b in tree.related
            for near, other in ((a, b), (b, a))
            if any(paths.is_within(leaf, near) for leaf in likely)
        ]
        level = self._config.partition_level
        found = partitions_for_categories(related, tree.paths, level) if related else []
        return [partition for partition in found if partition not in searched]

    async def _route(
        self, leaves: LeafProbs, categories: Sequence[str], deadline: Deadline
    ) -> list[str]:
        gateway = self._config.gateway
        if not categories:
            return partitions_for_leaves(
                leaves, self._config.partition_level, gateway.route_mass, gateway.max_partitions
            )
        tree = await self._tree.current(deadline.left())
        return partitions_for_categories(categories, tree.paths, self._config.partition_level)

    async def _fan_out(
        self, query: np.ndarray, partitions: list[str], exclude: Sequence[str], deadline: Deadline
    ) -> tuple[list[Neighbour], list[str]]:
        """Asks every shard holding a partition at once; a shard that fails is reported."""
        groups = by_shard(partitions, self._shards)
        timeout = deadline.left(SHARD_SHARE)
        answers = await _each(
            self._cluster.search(
                shard, query, parts, self._config.gateway.candidates, exclude, timeout
            )
            for shard, parts in groups.items()
        )
        neighbours: list[Neighbour] = []
        failed: list[str] = []
        for shard, answer in zip(groups, answers, strict=True):
            if isinstance(answer, VisualSearchError):
                log.warning("search on %s failed: %s", shard, answer)
                failed.append(shard)
            else:
                neighbours.extend(answer)
        return neighbours, failed


async def _each(calls: Iterable[Awaitable[T]]) -> list[T | VisualSearchError]:
    """Runs the calls at once; one that fails with a project error stands as that error (a
    shard that did not answer), any other exception (a bug) is raised."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, VisualSearchError):
            raise answer
    return cast(list[T | VisualSearchError], answers)


def _inside(path: str, categories: Sequence[str]) -> bool:
    return any(paths.is_within(path, category) for category in categories)


def _leaves_inside(leaves: LeafProbs, categories: Sequence[str]) -> LeafProbs:
    """What the query may be within the caller's categories: the categories themselves when
    no likely leaf lies inside them, so the rerank measures closeness from there (an unlikely
    leaf would put its items first by the hierarchy back-off, whatever they look like)."""
    inside = [(leaf, p) for leaf, p in leaves if p >= BELIEF and _inside(leaf, categories)]
    return inside or [(category, 1.0 / len(categories)) for category in categories]
