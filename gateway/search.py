"""The gateway's read flows: search by image and similar products."""

import asyncio
import itertools
import logging
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from common import paths
from common.config import ClusterConfig
from common.deadline import Deadline
from common.errors import InvalidArgument, ItemFailure, NoAnswer, NotFound, VisualSearchError
from common.routing import BELIEF
from gateway import limits, metrics
from gateway.clients import Cluster, Embedded, LeafProbs, Neighbour, Ranked, StoredVector
from gateway.follower import TreeFollower
from gateway.health import ShardHealth
from gateway.routing import TreeView, partitions_for_categories, partitions_for_leaves

log = logging.getLogger(__name__)
T = TypeVar("T")

# Share of a search's deadline the shards may use, so that the rerank still has time.
SHARD_SHARE = 0.75


@dataclass(frozen=True)
class SearchResult:
    results: list[Ranked]
    query_leaves: LeafProbs
    partitions: list[str]  # the paths of the partitions searched
    failed_shards: list[str] = field(default_factory=list)
    model_version: str = ""

    @property
    def partial(self) -> bool:
        return bool(self.failed_shards)


@dataclass(frozen=True)
class Query:
    """One search of a batch: by an image, or by a catalog item's stored vector."""

    image: bytes = b""
    product_id: str = ""


class Gateway:
    """Runs the flows of DESIGN.md over the cluster's services; holds no state of its own
    beyond which shards are left out of searches for now (`health`)."""

    def __init__(
        self, cluster: Cluster, config: ClusterConfig, tree: TreeFollower, health: ShardHealth
    ) -> None:
        self._cluster = cluster
        self._config = config
        self._tree = tree
        self._health = health
        self._turn = 0  # which replica of each partition the next search asks first

    async def search_by_image(
        self,
        image: bytes,
        k: int,
        categories: Sequence[str],
        time_left: float | None = None,
        min_seq: int = 0,
    ) -> SearchResult:
        """Embeds the image and searches the partitions of its most likely leaves."""
        k = limits.checked_k(k, self._config)
        limits.check_image(image, self._config)
        deadline = Deadline(self._config.gateway.deadline_s, time_left)
        version, (embedded,) = await self._cluster.embed([image], 0, deadline.left())
        return await self._search_embedded(embedded, version, k, categories, deadline, min_seq)

    async def search_many(
        self,
        queries: Sequence[Query],
        k: int,
        categories: Sequence[str],
        time_left: float | None = None,
        min_seq: int = 0,
    ) -> list[SearchResult | ItemFailure]:
        """Several searches at once, the images embedded together; one answer per query, in
        order, a failed query's own failure in its place (a shard without an answer makes
        its result partial, as for one search).

        Raises:
            InvalidArgument: no queries, more than gateway.max_batch, or k out of range.
        """
        limits.check_count(
            len(queries), "queries", self._config.gateway.max_batch, "gateway.max_batch"
        )
        k = limits.checked_k(k, self._config)
        metrics.BATCH.observe(len(queries))
        deadline = Deadline(self._config.gateway.deadline_s, time_left)
        embedded = await self._embed_images(queries, deadline)

        async def one(query: Query, i: int) -> SearchResult:
            if i in embedded:
                outcome = embedded[i]
                if isinstance(outcome, VisualSearchError):
                    raise outcome
                version, found = outcome
                return await self._search_embedded(found, version, k, categories, deadline, min_seq)
            if query.product_id:
                return await self._similar(query.product_id, k, categories, deadline, min_seq)
            raise InvalidArgument("a query needs an image or a product_id")

        answers = await _each(one(query, i) for i, query in enumerate(queries))
        return [
            ItemFailure.of(i, query.product_id, answer)
            if isinstance(answer, VisualSearchError)
            else answer
            for i, (query, answer) in enumerate(zip(queries, answers, strict=True))
        ]

    async def _embed_images(
        self, queries: Sequence[Query], deadline: Deadline
    ) -> dict[int, tuple[str, Embedded] | VisualSearchError]:
        """The embedding of every query by image, by position, in encoder-sized calls; an
        image over the limit, or a call that failed, stands as its error."""
        outcomes: dict[int, tuple[str, Embedded] | VisualSearchError] = {}
        todo = []
        for i, query in enumerate(queries):
            if query.image:
                try:
                    limits.check_image(query.image, self._config)
                    todo.append(i)
                except InvalidArgument as error:
                    outcomes[i] = error
        size = self._config.encoder.max_batch
        chunks = [todo[start : start + size] for start in range(0, len(todo), size)]
        calls = [
            self._cluster.embed([queries[i].image for i in chunk], 0, deadline.left())
            for chunk in chunks
        ]
        for chunk, answer in zip(chunks, await _each(calls), strict=True):
            for n, i in enumerate(chunk):
                if isinstance(answer, VisualSearchError):
                    outcomes[i] = answer
                else:
                    version, found = answer
                    outcomes[i] = (version, found[n])
        return outcomes

    async def _search_embedded(
        self,
        embedded: Embedded,
        version: str,
        k: int,
        categories: Sequence[str],
        deadline: Deadline,
        min_seq: int,
    ) -> SearchResult:
        if embedded.failure is not None:
            raise InvalidArgument(f"image: {embedded.failure.message}")
        assert embedded.vector is not None
        return await self._search(
            embedded.vector, embedded.leaves, k, categories, [], version, deadline, min_seq
        )

    async def similar_products(
        self,
        product_id: str,
        k: int,
        categories: Sequence[str],
        time_left: float | None = None,
        min_seq: int = 0,
    ) -> SearchResult:
        """Searches with a catalog item's stored vector, the item itself left out."""
        k = limits.checked_k(k, self._config)
        deadline = Deadline(self._config.gateway.deadline_s, time_left)
        return await self._similar(product_id, k, categories, deadline, min_seq)

    async def _similar(
        self, product_id: str, k: int, categories: Sequence[str], deadline: Deadline, min_seq: int
    ) -> SearchResult:
        if not product_id:
            raise InvalidArgument("product_id is empty")
        items, _ = await self._cluster.get_items([product_id], deadline.left())
        if not items:
            raise NotFound(f"product {product_id!r} is not in the catalog")
        leaf = items[0].leaf
        stored = await self._stored(product_id, leaf, deadline, min_seq)
        if stored is None:
            raise NotFound(f"product {product_id!r} has no indexed vector")
        return await self._search(
            stored.vector,
            [(leaf, 1.0)],
            k,
            categories,
            [product_id],
            stored.model_version,
            deadline,
            min_seq,
        )

    async def _stored(
        self, product_id: str, leaf: str, deadline: Deadline, min_seq: int
    ) -> StoredVector | None:
        """The item's vector from a shard holding its partition (the next replica if one
        fails); None if none holds it."""
        tree = await self._tree.current(deadline.left(), min_seq)
        if tree.partition_of(leaf) is None:  # an edit the followed tree has not heard of yet
            tree = await self._tree.current(deadline.left(), fresh=True)
        partition = tree.partition_of(leaf)
        if partition is None:
            return None
        error: NoAnswer | None = None
        for shard in self._health.order(tree.routes.serving(str(partition)), 0):
            try:
                found = await self._cluster.fetch(
                    shard, [product_id], deadline.left(SHARD_SHARE), min_seq
                )
            except NoAnswer as failure:
                log.warning("fetch on %s failed: %s", shard, failure)
                self._health.failed(shard)
                error = failure
                continue
            self._health.answered(shard)
            return found[0] if found else None
        raise error or NoAnswer(f"every shard serving {tree.names.get(partition)} is left out")

    async def _search(
        self,
        query: np.ndarray,
        leaves: LeafProbs,
        k: int,
        categories: Sequence[str],
        exclude: Sequence[str],
        version: str,
        deadline: Deadline,
        min_seq: int = 0,
    ) -> SearchResult:
        tree = await self._tree.current(deadline.left(), min_seq)
        partitions = self._route(tree, leaves, categories)
        within = self._within(tree, categories)
        neighbours, failed = await self._fan_out(
            tree, query, partitions, exclude, within, deadline, min_seq
        )
        believed = _leaves_inside(leaves, categories) if categories else leaves
        ranked = await self._rerank(believed, neighbours, k, categories, deadline)
        wider = [] if len(ranked) >= k else self._related(tree, leaves, partitions)
        if wider:
            more, failed_more = await self._fan_out(
                tree, query, wider, exclude, within, deadline, min_seq
            )
            ranked = await self._rerank(believed, neighbours + more, k, categories, deadline)
            partitions, failed = partitions + wider, failed + failed_more
        names = [tree.names.get(partition, str(partition)) for partition in partitions]
        return SearchResult(ranked, leaves, names, failed, version)

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

    def _within(self, tree: TreeView, categories: Sequence[str]) -> list[int]:
        """The nodes a shard keeps its neighbours' leaves inside (by id, which a rename leaves
        alone): those of the categories below the partitions' level, so that k come back."""
        level = self._config.partition_level
        return [
            node
            for category in categories
            if len(paths.split(category)) > level
            for node in tree.subtree(category)
        ]

    def _related(self, tree: TreeView, leaves: LeafProbs, searched: list[int]) -> list[int]:
        """Back-off across partitions: those of nodes an editor related to the likely leaves."""
        likely = [leaf for leaf, prob in leaves if prob >= BELIEF] or [leaves[0][0]]
        related = [
            other
            for a, b in tree.related
            for near, other in ((a, b), (b, a))
            if any(paths.is_within(leaf, near) for leaf in likely)
        ]
        found = partitions_for_categories(related, tree) if related else []
        return [partition for partition in found if partition not in searched]

    def _route(self, tree: TreeView, leaves: LeafProbs, categories: Sequence[str]) -> list[int]:
        gateway = self._config.gateway
        if not categories:
            return partitions_for_leaves(leaves, tree, gateway.route_mass, gateway.max_partitions)
        return partitions_for_categories(categories, tree)

    async def _fan_out(
        self,
        tree: TreeView,
        query: np.ndarray,
        partitions: list[int],
        exclude: Sequence[str],
        within: Sequence[int],
        deadline: Deadline,
        min_seq: int,
    ) -> tuple[list[Neighbour], list[str]]:
        """Asks one replica of every partition at once; the partitions of a replica that gives
        no answer (or no longer holds them) are asked of their next replica, within the
        deadline. Shards left out by `health` are not asked.

        Returns:
            The neighbours, and the shards that gave no answer (or are left out) for a
            partition no replica answered for (the answer is partial).

        Raises:
            VisualSearchError: a shard refused the query (a vector of another width, say):
                the caller's error, with the shard's status code.
        """
        self._turn += 1
        turn = self._turn  # this call's own: concurrent searches move self._turn on
        replicas = {
            str(p): self._health.order(tree.routes.serving(str(p)), turn) for p in partitions
        }
        tried: dict[str, list[str]] = {p: [] for p in replicas}  # the shards asked in vain
        unanswered = set(replicas)
        neighbours: list[Neighbour] = []
        candidates = self._config.gateway.candidates
        asked = 0
        for attempt in itertools.count():
            groups: dict[str, list[str]] = defaultdict(list)
            for partition in sorted(unanswered):
                if attempt < len(replicas[partition]):
                    groups[replicas[partition][attempt]].append(partition)
            if not groups:
                break
            asked += len(groups)
            timeout = deadline.left(SHARD_SHARE)
            answers = await _each(
                self._cluster.search(
                    shard, query, parts, candidates, exclude, timeout, min_seq, within
                )
                for shard, parts in groups.items()
            )
            for (shard, parts), answer in zip(groups.items(), answers, strict=True):
                if isinstance(answer, NoAnswer):
                    log.warning("search on %s failed: %s", shard, answer)
                    self._health.failed(shard)
                    missing = parts
                elif isinstance(answer, VisualSearchError):
                    raise answer
                else:  # a partition the shard does not hold: routing moved on, ask the next
                    self._health.answered(shard)
                    found, missing = answer
                    neighbours.extend(found)
                unanswered -= set(parts) - set(missing)
                for part in missing:
                    tried[part].append(shard)
        metrics.FANOUT.observe(asked)
        out = self._health.out
        failed = {
            shard
            for part in unanswered
            for shard in (*tried[part], *(s for s in tree.routes.serving(part) if s in out))
        }
        if failed:
            metrics.PARTIAL.inc()
        return neighbours, sorted(failed)


async def _each(calls: Iterable[Awaitable[T]]) -> list[T | VisualSearchError]:
    """Runs the calls at once; one that fails with a project error stands as that error, any
    other exception (a bug) is raised. Cancelling the caller cancels every call."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    found: list[T | VisualSearchError] = []
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, VisualSearchError):
            raise answer
        found.append(answer)
    return found


def _inside(path: str, categories: Sequence[str]) -> bool:
    return any(paths.is_within(path, category) for category in categories)


def _leaves_inside(leaves: LeafProbs, categories: Sequence[str]) -> LeafProbs:
    """What the query may be within the caller's categories: the categories themselves when
    no likely leaf lies inside them, so the rerank measures closeness from there (an unlikely
    leaf would put its items first by the hierarchy back-off, whatever they look like)."""
    inside = [(leaf, p) for leaf, p in leaves if p >= BELIEF and _inside(leaf, categories)]
    return inside or [(category, 1.0 / len(categories)) for category in categories]
