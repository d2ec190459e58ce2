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
from common.errors import InvalidArgument, ItemFailure, VisualSearchError
from gateway import limits
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
        self, items: Sequence[NewItem], wait_visible: bool = False, time_left: float | None = None
    ) -> tuple[int, list[ItemFailure], int]:
        """Embeds and records items; returns how many landed, which failed, and the feed
        position of the commit (0 if nothing landed).

        An item is acknowledged once the record's commit of it (vector included) is durable;
        with `wait_visible`, once every shard has applied that commit as well. A call whose
        every item fails answers with each item's failure, as one where some do.

        Raises:
            InvalidArgument: no items, or more than gateway.max_ingest.
        """
        gateway = self._config.gateway
        limits.check_count(len(items), "items to ingest", gateway.max_ingest, "gateway.max_ingest")
        deadline = Deadline(INGEST_DEADLINE_S, time_left)
        failures = {
            i: ItemFailure.of(i, items[i].id, error)
            for i, error in _refusals(items, self._config).items()
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
                failures[i] = failure.at(i, items[i].id)
        if wait_visible and seq:
            await self._visible(seq, deadline)
        return len(items) - len(failures), sorted(failures.values(), key=lambda f: f.index), seq

    async def delete(
        self, ids: Sequence[str], wait_visible: bool = False, time_left: float | None = None
    ) -> tuple[int, int]:
        """Deletes items from the record (the shards follow); returns how many it knew and
        the feed position of the commit."""
        limits.check_count(
            len(ids), "ids to delete", self._config.gateway.max_ingest, "gateway.max_ingest"
        )
        if not all(ids):
            raise InvalidArgument("an id to delete is empty")
        deadline = Deadline(self._config.gateway.deadline_s, time_left)
        deleted, seq = await self._cluster.delete_items(ids, deadline.left())
        if wait_visible and seq:
            await self._visible(seq, deadline)
        return deleted, seq

    async def _visible(self, seq: int, deadline: Deadline) -> None:
        """Waits until every shard has applied the feed up to `seq`.

        Raises:
            VisualSearchError: with the code of a shard that did not get there (in time);
                the write itself is recorded.
        """
        shards = self._config.shard_addresses
        answers = await asyncio.gather(
            *(self._cluster.caught_up(shard, seq, deadline.left()) for shard in shards),
            return_exceptions=True,
        )
        for shard, answer in zip(shards, answers, strict=True):
            if isinstance(answer, VisualSearchError):  # the shard's own code, said in full
                raise type(answer)(
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
    if outcome.failure is not None:
        return outcome.failure.at(i, new.id)
    if outcome.vector is None:
        return ItemFailure.of(i, new.id, VisualSearchError("the encoder gave no vector"))
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


def _refusals(items: Sequence[NewItem], config: ClusterConfig) -> dict[int, InvalidArgument]:
    """Items refused before any work, by position: no id, an id seen earlier in the batch, no
    image or one over the size limit."""
    refused: dict[int, InvalidArgument] = {}
    seen: set[str] = set()
    for i, item in enumerate(items):
        try:
            if not item.id:
                raise InvalidArgument("id is empty")
            if item.id in seen:
                raise InvalidArgument(f"id {item.id!r} appears twice in the batch")
            limits.check_image(item.image, config)
        except InvalidArgument as error:
            refused[i] = error
        seen.add(item.id)
    return refused
