"""The gateway's write flows: ingest (embed, record, index) and delete."""

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from common import paths
from common.config import ClusterConfig
from common.deadline import Deadline
from common.errors import InvalidArgument, ItemFailure, VisualSearchError
from gateway.clients import Cluster, Embedded, Item, StoredVector
from gateway.routing import shard_of_leaf

INGEST_DEADLINE_S = 60.0


@dataclass(frozen=True)
class NewItem:
    """An item to ingest: its image, and the seller's leaf if one was given."""

    id: str
    image: bytes
    leaf: str = ""
    title: str = ""
    colour: str = ""
    usage: str = ""


class _Pending(NamedTuple):
    """An embedded item on its way to the taxonomy and its shard."""

    item: Item
    vector: StoredVector


class Writer:
    """Ingests and deletes items across the taxonomy and the shards; idempotent by item id."""

    def __init__(self, cluster: Cluster, config: ClusterConfig) -> None:
        self._cluster = cluster
        self._config = config
        self._shards = config.shard_addresses

    async def ingest(self, items: Sequence[NewItem]) -> tuple[int, list[ItemFailure]]:
        """Embeds, records and indexes items; returns how many landed and which failed.

        An item is acknowledged only once its shard has logged its vector. An item that moves
        to another shard (its leaf changed) leaves its old shard first.
        """
        limit = self._config.gateway.max_ingest
        if not items:
            raise InvalidArgument("no items to ingest")
        if len(items) > limit:
            raise InvalidArgument(f"{len(items)} items in one call; the limit is {limit}")
        deadline = Deadline(INGEST_DEADLINE_S)
        failures = {
            i: ItemFailure(i, item.id, "INVALID_ARGUMENT", reason)
            for i, item, reason in _refusals(items)
        }
        todo = [i for i in range(len(items)) if i not in failures]
        pending = await self._embed(items, todo, deadline)
        for i, failure in pending.items():
            if isinstance(failure, ItemFailure):
                failures[i] = failure
        ready = {i: p for i, p in pending.items() if isinstance(p, _Pending)}
        await self._record(ready, failures, deadline)
        await self._index(ready, failures, deadline)
        return len(items) - len(failures), sorted(failures.values(), key=lambda f: f.index)

    async def delete(self, ids: Sequence[str]) -> int:
        """Deletes items from every shard, then from the taxonomy; returns how many it knew."""
        if not ids or not all(ids):
            raise InvalidArgument("ids must be given and non-empty")
        deadline = Deadline(self._config.gateway.deadline_s)
        await asyncio.gather(
            *(self._cluster.delete_vectors(shard, ids, deadline.left()) for shard in self._shards)
        )
        return await self._cluster.delete_items(ids, deadline.left())

    def _shard(self, leaf: str) -> str:
        return shard_of_leaf(leaf, self._config.partition_level, self._shards)

    def _partition(self, leaf: str) -> str:
        return paths.partition_of(leaf, self._config.partition_level)

    async def _embed(
        self, items: Sequence[NewItem], todo: list[int], deadline: Deadline
    ) -> dict[int, _Pending | ItemFailure]:
        """Embeds the items at `todo` in encoder-sized chunks; the seller's leaf wins."""
        size = self._config.encoder.max_batch
        pending: dict[int, _Pending | ItemFailure] = {}
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            images = [items[i].image for i in chunk]
            top = self._config.encoder.top_leaves
            version, outcomes = await self._cluster.embed(images, top, deadline.left())
            for i, outcome in zip(chunk, outcomes, strict=True):
                pending[i] = self._pending(i, items[i], outcome, version)
        return pending

    def _pending(
        self, i: int, new: NewItem, outcome: Embedded, version: str
    ) -> _Pending | ItemFailure:
        if outcome.failure is not None or outcome.vector is None:
            failure = outcome.failure
            code, message = (
                (failure.code, failure.message) if failure else ("INTERNAL", "no vector")
            )
            return ItemFailure(i, new.id, code, message)
        predictions = tuple(outcome.leaves)
        item = Item(new.id, new.leaf, not new.leaf, new.title, new.colour, new.usage, predictions)
        vector = StoredVector(new.id, "", "", outcome.vector, version)
        return _Pending(item, vector)

    async def _record(
        self, ready: dict[int, _Pending], failures: dict[int, ItemFailure], deadline: Deadline
    ) -> None:
        """Records the items with the taxonomy; an item that changes shard leaves its old one."""
        order = list(ready)
        before, _ = await self._cluster.get_items(
            [ready[i].item.id for i in order], deadline.left()
        )
        leaves, refused = await self._cluster.put_items(
            [ready[i].item for i in order], deadline.left()
        )
        for i, leaf in zip(order, leaves, strict=True):
            if leaf:  # "" for a refused item, failed just below
                ready[i] = self._placed(ready[i], leaf)
        for failure in refused:
            _fail(order[failure.index], ready, failures, failure.code, failure.message)
        target = {p.item.id: (i, self._shard(p.item.leaf)) for i, p in ready.items()}
        moved: dict[str, list[str]] = defaultdict(list)
        for old in before:
            if old.id in target and self._shard(old.leaf) != target[old.id][1]:
                moved[self._shard(old.leaf)].append(old.id)
        answers = await asyncio.gather(
            *(self._cluster.delete_vectors(s, ids, deadline.left()) for s, ids in moved.items()),
            return_exceptions=True,
        )
        for ids, answer in zip(moved.values(), answers, strict=True):
            if isinstance(answer, BaseException):
                code = _code(answer)
                for item_id in ids:
                    _fail(target[item_id][0], ready, failures, code, str(answer))

    def _placed(self, pending: _Pending, leaf: str) -> _Pending:
        """The item and its vector in the leaf the taxonomy recorded it under."""
        item = replace(pending.item, leaf=leaf, predicted=leaf != pending.item.leaf)
        vector = replace(pending.vector, partition=self._partition(leaf), leaf=leaf)
        return _Pending(item, vector)

    async def _index(
        self, ready: dict[int, _Pending], failures: dict[int, ItemFailure], deadline: Deadline
    ) -> None:
        """Writes the vectors to their partitions' shards, all shards at once."""
        groups: dict[str, list[int]] = defaultdict(list)
        for i, pending in ready.items():
            groups[self._shard(pending.item.leaf)].append(i)
        answers = await asyncio.gather(
            *(
                self._cluster.upsert(shard, [ready[i].vector for i in group], deadline.left())
                for shard, group in groups.items()
            ),
            return_exceptions=True,
        )
        for group, answer in zip(groups.values(), answers, strict=True):
            if isinstance(answer, BaseException):
                for i in group:
                    _fail(i, ready, failures, _code(answer), str(answer))
                continue
            for failure in answer:
                _fail(group[failure.index], ready, failures, failure.code, failure.message)


def _refusals(items: Sequence[NewItem]) -> list[tuple[int, NewItem, str]]:
    """Items refused before any work: no id, an id seen earlier in the batch, no image."""
    refused = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not item.id:
            refused.append((i, item, "id is empty"))
        elif item.id in seen:
            refused.append((i, item, f"id {item.id!r} appears twice in the batch"))
        elif not item.image:
            refused.append((i, item, "image is empty"))
        seen.add(item.id)
    return refused


def _fail(
    i: int, ready: dict[int, _Pending], failures: dict[int, ItemFailure], code: str, message: str
) -> None:
    """Takes item `i` out of the flow with the reason it failed."""
    failures[i] = ItemFailure(i, ready.pop(i).item.id, code, message)


def _code(error: BaseException) -> str:
    """The status code name a failed call reports to the caller; a bug re-raises."""
    if isinstance(error, VisualSearchError):
        return error.code
    raise error
