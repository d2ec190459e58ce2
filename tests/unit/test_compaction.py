"""Tombstones on an HNSW partition (FAISS cannot remove from one): deleted ids are never
returned, before and after a compaction that runs while searches and writes go on."""

import threading

import numpy as np

from common.feed import DELETE, UPSERT, Change, ItemState
from index_svc.shard import Shard
from index_svc.specs import Policy

DIM = 16
PARTITION = 10
N = 20_000


def _vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((50, DIM))
    vectors = centres[rng.integers(0, 50, n)] + 0.3 * rng.standard_normal((n, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _item(item_id: str, vector: np.ndarray) -> ItemState:
    return ItemState(item_id, 1, "A/B/C", PARTITION, "m1", vector.astype("<f4").tobytes())


class _Writer:
    """Applies the feed's upserts and deletes in small batches, as a follower does, and
    remembers what it deleted and what it put."""

    def __init__(self, shard: Shard, seq: int) -> None:
        self.shard, self.seq = shard, seq
        self.deleted: set[str] = set()
        self.put: set[str] = set()
        self.lock = threading.Lock()

    def step(self, number: int) -> None:
        new = [f"new-{number}-{i}" for i in range(5)]
        changes = [
            Change(self.seq + i + 1, UPSERT, item=_item(item_id, vector), item_id=item_id)
            for i, (item_id, vector) in enumerate(zip(new, _vectors(5, number), strict=True))
        ]
        gone = f"item-{N - 1 - number}"
        changes.append(Change(self.seq + 6, DELETE, item_id=gone))
        self.seq += 6
        self.shard.apply(changes)
        with self.lock:
            self.put.update(new)
            self.deleted.add(gone)

    def deleted_now(self) -> set[str]:
        with self.lock:
            return set(self.deleted)


def test_deleted_ids_are_never_returned_before_during_and_after_compaction() -> None:
    shard = Shard(Policy(spec="HNSW16", compact_above=0.2), lambda name: True, "m1")
    vectors = _vectors(N, 0)
    shard.reset(1, "m1", [_item(f"item-{i}", v) for i, v in enumerate(vectors)])
    writer = _Writer(shard, 1)
    first_deleted = [f"item-{i}" for i in range(0, 10_000, 2)]  # 25% of the rows
    shard.apply([Change(2 + i, DELETE, item_id=item) for i, item in enumerate(first_deleted)])
    writer.seq = 1 + len(first_deleted)
    writer.deleted.update(first_deleted)
    assert shard.stats()[0].tombstones == len(first_deleted)
    assert shard.due() == [(str(PARTITION), "HNSW16")]

    failures: list[str] = []
    searches = [0]
    stop = threading.Event()

    def search() -> None:
        rng = np.random.default_rng(threading.get_ident() % 1000)
        while not stop.is_set():
            gone = writer.deleted_now()  # deleted before this search began
            queries = vectors[rng.integers(0, N, 8)]
            results, _ = shard.search(queries, [str(PARTITION)], 10)
            searches[0] += 1
            for hits in results:
                returned = {hit.item_id for hit in hits} & gone
                if returned or len(hits) != 10:
                    failures.append(f"{len(hits)} hits, deleted returned: {sorted(returned)}")

    def write() -> None:
        number = 0
        while not stop.is_set():
            writer.step(number)
            number += 1

    threads = [threading.Thread(target=search) for _ in range(2)]
    threads.append(threading.Thread(target=write))
    for thread in threads:
        thread.start()
    try:
        seq_before = shard.seq
        assert shard.rebuild(str(PARTITION), "HNSW16")
        written_during = shard.seq - seq_before
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert not failures, failures[:5]
    assert searches[0] > 0 and written_during > 0  # the rebuild ran while both went on
    stats = shard.stats()[0]
    # the tombstones before it are gone; those left come from deletes made while it ran
    assert stats.tombstones <= len(writer.deleted) - len(first_deleted)
    assert stats.count == N + len(writer.put) - len(writer.deleted)
    _, missing = shard.fetch(sorted(writer.put))
    assert not missing  # writes made during the rebuild are in the result
    assert not shard.fetch(sorted(writer.deleted))[0]
    for hits in shard.search(vectors[:200], [str(PARTITION)], 10)[0]:
        assert not {hit.item_id for hit in hits} & writer.deleted and len(hits) == 10
