"""A shard: the partitions one process is assigned, a projection of the record's feed.

The shard holds no truth of its own. It is built from a scan of the record (or restored from
its own checked snapshot) and kept current by applying the feed in order; `seq` is the feed
position its partitions reflect. Partitions are named by their taxonomy node's id, so a
rename changes nothing here, and one model version is served (vectors of others are ignored).
"""

import dataclasses
import heapq
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from operator import attrgetter
from typing import NamedTuple

import numpy as np

from common.errors import InvalidArgument
from common.feed import DELETE, SPLIT, Change, ItemState
from index_svc.partition import Partition
from index_svc.record import Record
from index_svc.rwlock import RWLock
from index_svc.snapshots import Loaded
from index_svc.specs import DEFAULTS, EVERYTHING, Filter, Policy, SearchParams

log = logging.getLogger(__name__)


class Neighbor(NamedTuple):  # a tuple: a batch's answer makes thousands of them
    item_id: str
    score: float  # higher is closer
    leaf: str
    partition: str


@dataclasses.dataclass(frozen=True)
class PartitionStats:
    name: str
    count: int  # live vectors
    dim: int
    model_version: str
    spec: str  # the index's FAISS factory string
    tombstones: int  # deleted or replaced vectors still in the index, until a rebuild


_Row = tuple[ItemState, np.ndarray]  # an item arriving in a partition, with its vector
CATCH_UP_LEFT = 1000  # a rebuild swaps in once fewer rows than this came in meanwhile

# What a batch of changes leaves an item as: gone (None), or in a partition with a vector
# (None where the changes only moved it and the vector must come from where it is held).
_Final = tuple[ItemState, np.ndarray | None] | None


class Shard:
    """Partitions by node id, safe to call from many threads: searches side by side, the
    feed's batches one at a time.

    Args:
        policy: the specs of the partitions and the bounds of a search's knobs.
        owns: whether this shard is assigned a partition (by name).
        model_version: the version served; "" takes the first one seen.
    """

    def __init__(
        self, policy: Policy, owns: Callable[[str], bool], model_version: str = ""
    ) -> None:
        self.policy = policy
        self.owns = owns
        self._partitions: dict[str, Partition] = {}
        self._retired: dict[str, tuple[Partition, float]] = {}  # split: (partition, when)
        self._where: dict[str, str] = {}
        self.seq = 0
        self.model_version = model_version
        self._lock = RWLock()
        self._stopping = threading.Event()

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
            built[name] = Partition(name, model_version, vectors.shape[1], self.policy)
            built[name].upsert(group, vectors)
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
        queries: np.ndarray,
        partitions: Sequence[str],
        k: int,
        params: SearchParams = DEFAULTS,
        wanted: Filter = EVERYTHING,
        exclude_ids: Collection[str] = (),
    ) -> tuple[list[list[Neighbor]], list[str]]:
        """The k nearest items to each query over the named partitions this shard holds.

        Args:
            queries: float32 matrix (n, dim) of the partitions' dimension.
            partitions: partition names; those not held here are reported, not an error.
            k: neighbours wanted, at least 1.
            params: the search's knobs; 0 takes the policy's default.
            wanted: which items may be returned (applied inside each index).
            exclude_ids: item ids never returned.

        Returns:
            Per query, the neighbours merged over the partitions, best first; and the
            partitions asked for that are not held here.

        Raises:
            InvalidArgument: k below 1 or a knob past its bound.
        """
        if k < 1:
            raise InvalidArgument(f"k must be at least 1, got {k}")
        resolved = self.policy.resolve(params)
        names = list(dict.fromkeys(partitions))
        exclude = frozenset(exclude_ids)
        merged: list[list[Neighbor]] = [[] for _ in queries]
        with self._lock.read():
            held = {name: self._partition(name) for name in names}
            # a partition assigned here that no item has reached yet is empty, not missing
            missing = [n for n, partition in held.items() if partition is None and not self.owns(n)]
            for name, partition in held.items():
                if partition is None:
                    continue
                found = partition.search(queries, k, resolved, wanted, exclude)
                for hits, into in zip(found, merged, strict=True):
                    into.extend(
                        Neighbor(item_id, score, leaf, name) for item_id, score, leaf in hits
                    )
        if len(held) > 1:
            merged = [heapq.nlargest(k, hits, key=attrgetter("score")) for hits in merged]
        return merged, missing

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
                PartitionStats(p.name, len(p), p.dim, p.model_version, p.spec, p.rows.dead)
                for p in sorted(self._partitions.values(), key=attrgetter("name"))
            ]

    def stop_rebuilds(self) -> None:
        """Makes a rebuild under way give up at its next step (the process is stopping)."""
        self._stopping.set()

    def due(self) -> list[tuple[str, str]]:
        """The partitions a rebuild is due for, with the spec to build (Partition.due)."""
        with self._lock.read():
            return [(p.name, spec) for p in self._partitions.values() if (spec := p.due())]

    def rebuild(self, name: str, spec: str) -> bool:
        """Rebuilds a partition with a spec while searches and writes go on: copies its live
        rows, builds the index from them, catches up with the rows written meanwhile, and
        swaps it in under a short write lock. Returns whether it was swapped in (not if the
        partition was dropped or replaced meanwhile)."""
        started = time.monotonic()
        with self._lock.read():
            partition = self._partitions.get(name)
            if partition is None:
                return False
            rebuild = partition.begin(spec)
        if not rebuild.build(self._stopping):
            return False
        while True:
            with self._lock.read():
                if self._partitions.get(name) is not partition:
                    return False
                tail = partition.catch_up(rebuild)
            rebuild.add(tail)
            if len(tail) < CATCH_UP_LEFT:
                break
        with self._lock.write():
            if self._partitions.get(name) is not partition:
                return False
            before = partition.spec
            partition.install(rebuild)
        log.info(
            "partition %s rebuilt as %s (was %s): %d vectors in %.1fs",
            name,
            spec,
            before,
            len(partition),
            time.monotonic() - started,
        )
        return True

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
    ) -> tuple[dict[str, list[str]], dict[str, list[_Row]], list[str]]:
        """What brings each item to its final state: the ids leaving each partition, the rows
        arriving in each, and the ids whose vectors are missing (those of `deleted`, deleted
        in the batch, cannot come from where they were held)."""
        leaving: dict[str, list[str]] = defaultdict(list)
        arriving: dict[str, list[_Row]] = defaultdict(list)
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
            arriving[name].append((item, vector))
        return leaving, arriving, wanted

    def _move(
        self,
        leaving: dict[str, list[str]],
        arriving: dict[str, list[_Row]],
    ) -> None:
        for name, item_ids in leaving.items():
            self._partitions[name].delete(item_ids)
            for item_id in item_ids:
                self._where.pop(item_id, None)
        for name, rows in arriving.items():
            self._add(name, rows)

    def _add(self, name: str, rows: list[_Row]) -> None:
        partition = self._partitions.get(name)
        dim = rows[0][1].shape[0]
        if partition is None:
            partition = self._partitions[name] = Partition(
                name, self.model_version, dim, self.policy
            )
            log.info("partition %s created: dim %d, model %s", name, dim, self.model_version)
        fits = [row for row in rows if row[1].shape[0] == partition.dim]
        if len(fits) < len(rows):
            log.error(
                "partition %s: %d vectors of another width than %d left out",
                name,
                len(rows) - len(fits),
                partition.dim,
            )
        if fits:
            partition.upsert([item for item, _ in fits], np.stack([v for _, v in fits]))
            self._where.update((item.item_id, name) for item, _ in fits)


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
