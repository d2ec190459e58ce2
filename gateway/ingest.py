"""The gateway's write flows: ingest (embed, record) and delete.

The record is the one durable copy: an item is acknowledged once the taxonomy has committed it
with its vector, and the shards see it through the feed. A caller who must search it at once
asks to wait until every shard has applied that commit.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from common import vectors
from common.config import ClusterConfig
from common.deadline import Deadline
from common.errors import InvalidArgument, ItemFailure, Unavailable, VisualSearchError
from gateway.clients import Cluster, Embedded, Item

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


class Writer:
    """Ingests and deletes items through the record; idempotent by item id."""

    def __init__(self, cluster: Cluster, config: ClusterConfig) -> None:
        self._cluster = cluster
        self._config = config

    async def ingest(
        self, items: Sequence[NewItem], wait_visible: bool = False
    ) -> tuple[int, list[ItemFailure], int]:
        """Embeds and records items; returns how many landed, which failed, and the feed
        position of the commit (0 if nothing landed).

        An item is acknowledged once the record's commit of it (vector included) is durable;
        with `wait_visible`, once every shard has applied that commit as well.
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
        embedded = await self._embed(items, todo, deadline)
        ready: dict[int, Item] = {}
        for i, outcome in embedded.items():
            if isinstance(outcome, ItemFailure):
                failures[i] = outcome
            else:
                ready[i] = outcome
        seq = 0
        if ready:
            order = list(ready)
            _, refused, seq = await self._cluster.put_items(
                [ready[i] for i in order], deadline.left()
            )
            for failure in refused:
                i = order[failure.index]
                failures[i] = ItemFailure(i, items[i].id, failure.code, failure.message)
        if wait_visible and seq:
            await self._visible(seq, deadline)
        return len(items) - len(failures), sorted(failures.values(), key=lambda f: f.index), seq

    async def delete(self, ids: Sequence[str], wait_visible: bool = False) -> tuple[int, int]:
        """Deletes items from the record (the shards follow); returns how many it knew and
        the feed position of the commit."""
        if not ids or not all(ids):
            raise InvalidArgument("ids must be given and non-empty")
        deadline = Deadline(self._config.gateway.deadline_s)
        deleted, seq = await self._cluster.delete_items(ids, deadline.left())
        if wait_visible and seq:
            await self._visible(seq, deadline)
        return deleted, seq

    async def _visible(self, seq: int, deadline: Deadline) -> None:
        """Waits until every shard has applied the feed up to `seq`.

        Raises:
            Unavailable: a shard did not get there in time (the write itself is recorded).
        """
        shards = self._config.shard_addresses
        answers = await asyncio.gather(
            *(self._cluster.caught_up(shard, seq, deadline.left()) for shard in shards),
            return_exceptions=True,
        )
        for shard, answer in zip(shards, answers, strict=True):
            if isinstance(answer, VisualSearchError):
                raise Unavailable(
                    f"recorded at seq {seq}, but shard {shard} has not applied it: {answer}"
                )
            if isinstance(answer, BaseException):
                raise answer

    async def _embed(
        self, items: Sequence[NewItem], todo: list[int], deadline: Deadline
    ) -> dict[int, Item | ItemFailure]:
        """Embeds the items at `todo` in encoder-sized chunks; the seller's leaf wins."""
        size = self._config.encoder.max_batch
        embedded: dict[int, Item | ItemFailure] = {}
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            images = [items[i].image for i in chunk]
            top = self._config.encoder.top_leaves
            version, outcomes = await self._cluster.embed(images, top, deadline.left())
            for i, outcome in zip(chunk, outcomes, strict=True):
                embedded[i] = _item(i, items[i], outcome, version)
        return embedded


def _item(i: int, new: NewItem, outcome: Embedded, version: str) -> Item | ItemFailure:
    """The item to record with its embedding, or why it has none."""
    if outcome.failure is not None or outcome.vector is None:
        failure = outcome.failure
        code, message = (failure.code, failure.message) if failure else ("INTERNAL", "no vector")
        return ItemFailure(i, new.id, code, message)
    return Item(
        new.id,
        new.leaf,
        not new.leaf,
        new.title,
        new.colour,
        new.usage,
        tuple(outcome.leaves),
        vectors.to_bytes(outcome.vector),
        version,
    )


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
