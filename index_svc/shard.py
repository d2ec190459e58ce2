"""A shard: the partitions one process is assigned, a projection of the record's feed.

The shard holds no truth of its own. It is built from a scan of the record (or restored from
its own checked snapshot) and kept current by applying the feed in order; `seq` is the feed
position its partitions reflect. Partitions are named by their taxonomy node's id, so a
rename changes nothing here, and one model version is served (vectors of others are ignored).
"""

import dataclasses
import heapq
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from operator import attrgetter

import numpy as np

from common.errors import InvalidArgument
from common.feed import DELETE, SPLIT, Change, ItemState
from index_svc.partition import Partition
from index_svc.record import Record
from index_svc.rwlock import RWLock
from index_svc.snapshots import Loaded

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Neighbor:
    item_id: str
    score: float  # higher is closer
    leaf: str
    partition: str


@dataclasses.dataclass(frozen=True)
class PartitionStats:
    name: str
    count: int
    dim: int
    model_version: str


# What a batch of changes leaves an item as: gone (None), or in a partition with a vector
# (None where the changes only moved it and the vector must come from where it is held).
_Final = tuple[ItemState, np.ndarray | None] | None


class Shard:
    """Partitions by node id, safe to call from many threads: searches side by side, the
    feed's batches one at a time.

    Args:
        kind: backend of the partitions (index_svc.backend.KINDS).
        owns: whether this shard is assigned a partition (by name).
        model_version: the version served; "" takes the first one seen.
    """

    def __init__(self, kind: str, owns: Callable[[str], bool], model_version: str = "") -> None:
        self._kind = kind
        self.owns = owns
        self._partitions: dict[str, Partition] = {}
        self._retired: dict[str, tuple[Partition, float]] = {}  # split: (partition, when)
        self._where: dict[str, str] = {}
        self.seq = 0
        self.model_version = model_version
        self._lock = RWLock()

    @property
    def count(self) -> int:
        """Vectors held, over all partitions."""
        return len(self._where)

    def restore(self, loaded: Loaded) -> None:
        """Takes the partitions of a snapshot (those this shard is still assigned)."""
        with self._lock.write():
            kept = [p for p in loaded.partitions if self.owns(p.name)]
            self._set(kept, loaded.seq, loaded.model_version)

    def reset(self, seq: int, model_version: str, items: Sequence[ItemState]) -> None:
        """Replaces every partition with those built from a scan at feed position `seq`."""
        built = self._build(model_version or self.model_version, items)
        with self._lock.write():
            self._set(list(built.values()), seq, model_version)

    def take(self, name: str, items: Sequence[ItemState]) -> None:
        """Replaces one partition with one built from a scan (a partition newly assigned here).

        The scan is as of a feed position at or past this shard's; the entries between are
        applied after it, and since each entry sets an item's whole state, the result is the
        same as if the partition had been built at this shard's position.
        """
        built = self._build(self.model_version, items).get(name)
        with self._lock.write():
            self._drop(name)
            if built is not None:
                self._partitions[name] = built
                self._where.update((item_id, name) for item_id in built.item_ids())

    def drop_retired(self, grace_s: float) -> list[str]:
        """Forgets the partitions retired by a split more than `grace_s` ago; returns them."""
        now = time.monotonic()
        with self._lock.write():
            due = [name for name, (_, when) in self._retired.items() if when + grace_s <= now]
            for name in due:
                del self._retired[name]
        return due

    def _retire(self, name: str, leaving: dict[str, list[str]]) -> None:
        """Keeps a split partition whole, searchable by its old name for a grace period (for
        gateways that have not read the split yet), while its items go to its children."""
        partition = self._partitions.pop(name, None)
        if partition is None:
            return
        self._retired[name] = (partition, time.monotonic())
        for item_id in leaving.pop(name, []):
            self._where.pop(item_id, None)

    def _partition(self, name: str) -> Partition | None:
        """The partition of this name, or one kept for its grace after a split."""
        found = self._partitions.get(name)
        if found is None and name in self._retired:
            found = self._retired[name][0]
        return found

    def holds(self, name: str) -> bool:
        """Whether a partition of this name is built here (one without items is not)."""
        return name in self._partitions

    def drop(self, name: str) -> None:
        """Removes a partition no longer assigned here."""
        with self._lock.write():
            self._drop(name)

    def _drop(self, name: str) -> None:
        gone = self._partitions.pop(name, None)
        if gone is not None:
            for item_id in gone.item_ids():
                self._where.pop(item_id, None)

    def _build(self, model_version: str, items: Sequence[ItemState]) -> dict[str, Partition]:
        groups: dict[str, list[ItemState]] = defaultdict(list)
        for item in items:
            if self.owns(str(item.partition_id)):
                groups[str(item.partition_id)].append(item)
        built: dict[str, Partition] = {}
        for name, group in groups.items():
            vectors = np.stack([_floats(item.vector) for item in group])
            partition = Partition(name, model_version, vectors.shape[1], self._kind)
            partition.upsert([i.item_id for i in group], vectors, [i.leaf for i in group])
            built[name] = partition
        return built

    def apply(self, changes: Sequence[Change], fetched: Sequence[ItemState] = ()) -> list[str]:
        """Applies feed entries in order, all at once, and moves `seq` to the last one's.

        An item moved into a partition held here from one held elsewhere comes without its
        vector; the vectors of such items are taken from `fetched` (their current state, read
        from the record after these changes).

        Returns:
            [] once applied; else the ids whose vectors are missing from `fetched`, and nothing
            was changed: fetch them from the record and apply again with them.
        """
        version = self.model_version or _first_version(changes)
        final: dict[str, _Final] = {}
        deleted: set[str] = set()  # deleted in this batch: a vector held from before is gone
        for change in changes:
            if change.kind == DELETE:
                final[change.item_id] = None
                deleted.add(change.item_id)
                continue
            placed = [change.item] if change.item is not None else list(change.placements)
            for item in placed:
                earlier = final.get(item.item_id)
                vector = _usable(item, version)
                if vector is None and earlier is not None:
                    vector = earlier[1]  # moved again in this batch: keep the vector it brought
                elif vector is not None:
                    deleted.discard(item.item_id)  # put again, with its vector
                final[item.item_id] = (item, vector)
        for item in fetched:
            state = final.get(item.item_id)
            if state is not None and state[1] is None:
                final[item.item_id] = (state[0], _usable(item, version))
        with self._lock.write():
            leaving, arriving, wanted = self._plan(final, deleted)
            if wanted:
                return wanted
            if version and not self.model_version:
                self.model_version = version
                log.info("serving model version %s", version)
            for name in (str(c.split) for c in changes if c.kind == SPLIT):
                self._retire(name, leaving)
            for retired, _ in self._retired.values():
                retired.delete(deleted)  # a split partition kept for its grace: no deleted item
            self._move(leaving, arriving)
            if changes:
                self.seq = max(self.seq, changes[-1].seq)
        return []

    def search(
        self,
        query: np.ndarray,
        partitions: Sequence[str],
        k: int,
        exclude_ids: Collection[str] = (),
    ) -> tuple[list[Neighbor], list[str]]:
        """The k nearest items over the named partitions this shard holds.

        Args:
            query: float32 vector of the partitions' dimension.
            partitions: partition names; those not held here are reported, not an error.
            k: neighbours wanted, at least 1.
            exclude_ids: item ids never returned.

        Returns:
            The neighbours merged over the partitions, best first, and the missing names.
        """
        if k < 1:
            raise InvalidArgument(f"k must be at least 1, got {k}")
        names = list(dict.fromkeys(partitions))
        exclude = frozenset(exclude_ids)
        with self._lock.read():
            held = {name: self._partition(name) for name in names}
            # a partition assigned here that no item has reached yet is empty, not missing
            missing = [n for n, partition in held.items() if partition is None and not self.owns(n)]
            hits = [
                Neighbor(item_id, score, leaf, name)
                for name, partition in held.items()
                if partition is not None
                for item_id, score, leaf in partition.search(query, k, exclude)
            ]
        return heapq.nlargest(k, hits, key=attrgetter("score")), missing

    def fetch(self, item_ids: Iterable[str]) -> tuple[list[Record], list[str]]:
        """The stored records of items, and the ids not held here."""
        found, missing = [], []
        with self._lock.read():
            for item_id in item_ids:
                name = self._where.get(item_id)
                if name is None:
                    missing.append(item_id)
                    continue
                partition = self._partitions[name]
                vector, leaf = partition.fetch(item_id)
                found.append(Record(item_id, name, leaf, vector, partition.model_version))
        return found, missing

    def stats(self) -> list[PartitionStats]:
        """One entry per partition, by name."""
        with self._lock.read():
            return [
                PartitionStats(p.name, len(p), p.dim, p.model_version)
                for p in sorted(self._partitions.values(), key=attrgetter("name"))
            ]

    def snapshot(self, write: Callable[[int, str, list[Partition]], object]) -> None:
        """Calls `write(seq, model_version, partitions)` while no batch is being applied."""
        with self._lock.read():
            write(self.seq, self.model_version, list(self._partitions.values()))

    def _set(self, partitions: list[Partition], seq: int, model_version: str) -> None:
        self._partitions = {p.name: p for p in partitions}
        self._where = {item_id: p.name for p in partitions for item_id in p.item_ids()}
        self.seq, self.model_version = seq, model_version or self.model_version

    def _plan(
        self, final: dict[str, _Final], deleted: set[str]
    ) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, str, np.ndarray]]], list[str]]:
        """What brings each item to its final state: the ids leaving each partition, the rows
        arriving in each, and the ids whose vectors are missing (those of `deleted`, deleted
        in the batch, cannot come from where they were held)."""
        leaving: dict[str, list[str]] = defaultdict(list)
        arriving: dict[str, list[tuple[str, str, np.ndarray]]] = defaultdict(list)
        wanted: list[str] = []
        for item_id, state in final.items():
            held = self._where.get(item_id)
            name = str(state[0].partition_id) if state is not None else ""
            if state is None or not self.owns(name):
                if held is not None:
                    leaving[held].append(item_id)
                continue
            item, vector = state
            if vector is None and held is not None and item_id not in deleted:
                vector = self._partitions[held].fetch(item_id)[0]
            if vector is None:
                wanted.append(item_id)
                continue
            if held is not None and held != name:
                leaving[held].append(item_id)
            arriving[name].append((item_id, item.leaf, vector))
        return leaving, arriving, wanted

    def _move(
        self,
        leaving: dict[str, list[str]],
        arriving: dict[str, list[tuple[str, str, np.ndarray]]],
    ) -> None:
        for name, item_ids in leaving.items():
            self._partitions[name].delete(item_ids)
            for item_id in item_ids:
                self._where.pop(item_id, None)
        for name, rows in arriving.items():
            self._add(name, rows)

    def _add(self, name: str, rows: list[tuple[str, str, np.ndarray]]) -> None:
        partition = self._partitions.get(name)
        dim = rows[0][2].shape[0]
        if partition is None:
            partition = self._partitions[name] = Partition(
                name, self.model_version, dim, self._kind
            )
            log.info("partition %s created: dim %d, model %s", name, dim, self.model_version)
        fits = [row for row in rows if row[2].shape[0] == partition.dim]
        if len(fits) < len(rows):
            log.error(
                "partition %s: %d vectors of another width than %d left out",
                name,
                len(rows) - len(fits),
                partition.dim,
            )
        if fits:
            partition.upsert(
                [item_id for item_id, _, _ in fits],
                np.stack([vector for _, _, vector in fits]),
                [leaf for _, leaf, _ in fits],
            )
            self._where.update((item_id, name) for item_id, _, _ in fits)


def _first_version(changes: Sequence[Change]) -> str:
    """The model version of the first vector the changes carry ("" if none)."""
    for change in changes:
        if change.item is not None and change.item.vector:
            return change.item.model_version
    return ""


def _usable(item: ItemState, version: str) -> np.ndarray | None:
    """The item's vector if it is of the version served."""
    return _floats(item.vector) if item.vector and item.model_version == version else None


def _floats(vector: bytes) -> np.ndarray:
    return np.frombuffer(vector, dtype="<f4").astype(np.float32)
