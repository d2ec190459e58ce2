"""A shard: the partitions one process serves, with per-record validation and durable writes."""

import dataclasses
import heapq
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from operator import attrgetter
from pathlib import Path

import numpy as np

from common import paths
from common.errors import FailedPrecondition, InvalidArgument, ItemFailure, VisualSearchError
from index_svc import wal
from index_svc.backend import backend_class
from index_svc.partition import Partition
from index_svc.record import Record
from index_svc.rwlock import RWLock
from index_svc.store import Store

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Neighbor:
    item_id: str
    score: float  # higher is closer
    leaf: str
    partition: str


@dataclasses.dataclass(frozen=True)
class UpsertResult:
    upserted: int
    failures: list[ItemFailure]


@dataclasses.dataclass(frozen=True)
class PartitionStats:
    name: str
    count: int
    dim: int
    model_version: str


class Shard:
    """Partitions by name, safe to call from many threads.

    A partition is created by its first vector, which fixes its dimension and model
    version. Writes are logged (fsynced) before they are applied and acknowledged.
    """

    def __init__(
        self,
        store: Store,
        partitions: Iterable[Partition],
        kind: str,
        snapshot_every: int,
        snapshot_bytes: int,
    ) -> None:
        self._store = store
        self._partitions = {partition.name: partition for partition in partitions}
        self._where = {
            item_id: partition.name
            for partition in self._partitions.values()
            for item_id in partition.item_ids()
        }
        self._kind = kind
        self._snapshot_every = snapshot_every
        self._snapshot_bytes = snapshot_bytes
        self._lock = RWLock()

    @classmethod
    def open(
        cls,
        directory: Path,
        kind: str = "flat",
        snapshot_every: int = 10_000,
        snapshot_bytes: int = 256_000_000,
    ) -> "Shard":
        """Loads a shard directory: its last snapshot, then the writes logged since.

        Args:
            directory: the shard's own directory, created if absent.
            kind: backend of the partitions created from now on (index_svc.backend.KINDS).
            snapshot_every: logged writes after which a snapshot is written.
            snapshot_bytes: log size after which a snapshot is written.

        Raises:
            InvalidArgument: the backend kind is unknown.
            FailedPrecondition: another process holds the directory.
        """
        backend_class(kind)
        store, partitions, entries = Store.open(directory)
        shard = cls(store, partitions, kind, snapshot_every, snapshot_bytes)
        for entry in entries:
            if isinstance(entry, wal.Delete):
                shard._apply_delete(entry.item_ids)
            else:
                shard._apply_upsert(entry)
        return shard

    @property
    def count(self) -> int:
        """Vectors held, over all partitions."""
        return len(self._where)

    def upsert(self, records: Sequence[Record]) -> UpsertResult:
        """Adds or replaces vectors by item id; an item moving partition leaves the old one.

        A record that fails validation fails alone, reported in `failures`; the others are
        logged durably, then applied. Of two records with one id, the later one wins.
        """
        with self._lock.write():
            accepted, failures = self._validate(records)
            if accepted:
                self._store.log_upsert(accepted)
                self._apply_upsert(accepted)
                self._checkpoint_if_due()
        return UpsertResult(len(accepted), failures)

    def delete(self, item_ids: Iterable[str]) -> int:
        """Removes items by id; returns how many were held."""
        with self._lock.write():
            present = [item_id for item_id in dict.fromkeys(item_ids) if item_id in self._where]
            if present:
                self._store.log_delete(present)
                self._apply_delete(present)
                self._checkpoint_if_due()
        return len(present)

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
            missing = [name for name in names if name not in self._partitions]
            hits = [
                Neighbor(item_id, score, leaf, name)
                for name in names
                if name in self._partitions
                for item_id, score, leaf in self._partitions[name].search(query, k, exclude)
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

    def close(self) -> None:
        """Writes a snapshot if anything was logged since the last one; releases the directory."""
        with self._lock.write():
            if self._store.closed:
                return
            if self._store.log_records:
                self._store.checkpoint(self._partitions.values())
            self._store.close()

    def _validate(self, records: Sequence[Record]) -> tuple[list[Record], list[ItemFailure]]:
        shapes = {name: (p.dim, p.model_version) for name, p in self._partitions.items()}
        accepted, failures = [], []
        for index, record in enumerate(records):
            try:
                _check(record, shapes.get(record.partition))
            except VisualSearchError as error:
                failures.append(ItemFailure(index, record.item_id, error.code, str(error)))
                continue
            shapes.setdefault(record.partition, (record.vector.shape[0], record.model_version))
            accepted.append(record)
        return accepted, failures

    def _apply_upsert(self, records: Sequence[Record]) -> None:
        latest = {record.item_id: record for record in records}
        self._leave_old_partitions(latest.values())
        groups: dict[str, list[Record]] = defaultdict(list)
        for record in latest.values():
            groups[record.partition].append(record)
        for name, group in groups.items():
            partition = self._partitions.get(name) or self._create(group[0])
            partition.upsert(
                [record.item_id for record in group],
                np.stack([record.vector for record in group]),
                [record.leaf for record in group],
            )
            self._where.update((record.item_id, name) for record in group)

    def _leave_old_partitions(self, records: Iterable[Record]) -> None:
        moving: dict[str, list[str]] = defaultdict(list)
        for record in records:
            old = self._where.get(record.item_id)
            if old is not None and old != record.partition:
                moving[old].append(record.item_id)
        for name, item_ids in moving.items():
            self._partitions[name].delete(item_ids)

    def _create(self, first: Record) -> Partition:
        partition = Partition(
            first.partition, first.model_version, first.vector.shape[0], self._kind
        )
        self._partitions[partition.name] = partition
        log.info(
            "partition %s created: dim %d, model %s",
            partition.name,
            partition.dim,
            partition.model_version,
        )
        return partition

    def _apply_delete(self, item_ids: Iterable[str]) -> None:
        groups: dict[str, list[str]] = defaultdict(list)
        for item_id in item_ids:
            name = self._where.pop(item_id, None)
            if name is not None:
                groups[name].append(item_id)
        for name, group in groups.items():
            self._partitions[name].delete(group)

    def _checkpoint_if_due(self) -> None:
        store = self._store
        if store.log_records < self._snapshot_every and store.log_bytes < self._snapshot_bytes:
            return
        try:
            store.checkpoint(self._partitions.values())
        except OSError:
            # the write that got here is logged and applied: acknowledge it all the same
            log.exception("snapshot of %s failed; the log still holds every write", store.directory)


def _check(record: Record, held: tuple[int, str] | None) -> None:
    """Refuses a record with a clear message; `held` is its partition's (dim, model version)."""
    if not record.item_id:
        raise InvalidArgument("item_id is empty")
    _check_path("partition", record.partition)
    _check_path("leaf", record.leaf)
    vector = record.vector
    if vector.dtype != np.float32 or vector.ndim != 1 or not vector.size:
        raise InvalidArgument(
            f"vector of {vector.nbytes} bytes ({vector.dtype}, shape {vector.shape}) "
            "is not a float32 vector"
        )
    if not np.isfinite(vector).all():
        raise InvalidArgument("vector holds NaN or infinity")
    if held is None:
        return
    dim, model_version = held
    if vector.shape[0] != dim:
        raise InvalidArgument(
            f"vector has dimension {vector.shape[0]}, partition {record.partition!r} holds {dim}"
        )
    if record.model_version != model_version:
        raise FailedPrecondition(
            f"model version {record.model_version!r} differs from {model_version!r} "
            f"of partition {record.partition!r}"
        )


def _check_path(field: str, path: str) -> None:
    try:
        paths.split(path)
    except InvalidArgument as error:
        raise InvalidArgument(f"{field}: {error}") from None
