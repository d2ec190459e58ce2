"""A shard is the record's projection through SIGKILLs of itself or of the taxonomy, under
writes and searches, and never serves a damaged snapshot.

`make test` runs 3 kill cycles of each kind; for more:
    KILL_CYCLES=50 .venv/bin/python -m pytest tests/integration/test_shard_follows_record.py
"""

import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from protos.visualsearch.v1 import index_pb2
from tests.shard_server import (
    LEAVES,
    PARTITIONS,
    Cluster,
    delete,
    environment_int,
    fetch,
    item,
    put,
    running,
    scan,
    stats,
    vector,
)

KILL_CYCLES = environment_int("KILL_CYCLES", 3)
BATCH = 5  # items per PutItems of the writer
_SNAPSHOT = re.compile(r"^snapshot-\d+$")


@dataclass
class Ledger:
    """What the writer asked of the record and what the record acknowledged."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[str, bytes] = field(default_factory=dict)  # every id ever put, with its vector
    acked: dict[str, bytes] = field(default_factory=dict)  # puts answered with a seq
    deleted: dict[str, int] = field(default_factory=dict)  # acknowledged deletes: their seq
    doubtful: set[str] = field(default_factory=set)  # deletes sent, never answered
    seq: int = 0  # the last position acknowledged

    def live(self) -> set[str]:
        """Ids acknowledged and neither deleted nor possibly deleted."""
        return set(self.acked) - set(self.deleted) - self.doubtful


class Writer(threading.Thread):
    """Puts batches of items with vectors through the taxonomy, deleting a few now and then;
    `paused()` holds it between two calls."""

    def __init__(self, cluster: Cluster, ledger: Ledger, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self._record = cluster.record()
        self._ledger = ledger
        self._rng = rng
        self._turn = threading.Lock()
        self.stopping = threading.Event()
        self.failed_calls = 0

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._turn:
            yield

    def run(self) -> None:
        batch = 0
        while not self.stopping.is_set():
            with self._turn:
                batch += 1
                self._put(batch)
                if batch % 3 == 0:
                    self._delete()
            time.sleep(0.02)

    def _put(self, batch: int) -> None:
        items = [
            item(f"w{batch}-{j}", LEAVES[(batch + j) % len(LEAVES)], batch * BATCH + j)
            for j in range(BATCH)
        ]
        ledger = self._ledger
        with ledger.lock:
            ledger.sent.update((i.id, i.vector) for i in items)
        try:
            seq = put(self._record, items, timeout=5.0)
        except grpc.RpcError:
            self.failed_calls += 1  # the taxonomy died: committed or not, nobody knows
            return
        with ledger.lock:
            ledger.acked.update((i.id, i.vector) for i in items)
            ledger.seq = max(ledger.seq, seq)

    def _delete(self) -> None:
        ledger = self._ledger
        with ledger.lock:
            ids = self._rng.sample(sorted(ledger.live()), min(2, len(ledger.live())))
            ledger.doubtful.update(ids)
        if not ids:
            return
        try:
            seq = delete(self._record, ids, timeout=5.0)
        except grpc.RpcError:
            self.failed_calls += 1
            return
        with ledger.lock:
            ledger.deleted.update((item_id, seq) for item_id in ids)
            ledger.doubtful.difference_update(ids)
            ledger.seq = max(ledger.seq, seq)


class Searcher(threading.Thread):
    """Searches every partition over and over, each time with min_seq = the last position
    acknowledged; notes any answer with a duplicate, an id never written or one deleted."""

    def __init__(self, cluster: Cluster, ledger: Ledger, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self._index = cluster.index()
        self._ledger = ledger
        self._rng = rng
        self.stopping = threading.Event()
        self.answered = 0
        self.problems: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            with self._ledger.lock:
                min_seq = self._ledger.seq
                gone = {i for i, seq in self._ledger.deleted.items() if seq <= min_seq}
            request = index_pb2.SearchVectorsRequest(
                query=vector(self._rng.randrange(1 << 30)),
                partitions=PARTITIONS,
                k=50,
                min_seq=min_seq,
            )
            try:
                answer = self._index.SearchVectors(request, timeout=3.0)
            except grpc.RpcError as error:  # the shard is down or still catching up
                if error.code() not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    self.problems.append(f"{error.code()}: {error.details()}")
                continue
            self._judge([n.item_id for n in answer.neighbors], gone, min_seq)

    def _judge(self, ids: list[str], gone: set[str], min_seq: int) -> None:
        with self._ledger.lock:
            unknown = set(ids) - set(self._ledger.sent)
        if len(set(ids)) != len(ids):
            self.problems.append(f"duplicates at min_seq {min_seq}: {sorted(ids)}")
        if unknown or gone & set(ids):
            self.problems.append(
                f"at min_seq {min_seq}: never written {sorted(unknown)}, "
                f"deleted {sorted(gone & set(ids))}"
            )
        self.answered += 1


def _check(cluster: Cluster, ledger: Ledger, writer: Writer) -> None:
    """With no write in flight: the shard, once at the last acknowledged position, holds every
    live acknowledged item with its vector, nothing deleted, nothing never written, each once,
    and exactly what the record holds."""
    index = cluster.index()
    with writer.paused():
        with ledger.lock:
            sent, acked, deleted = dict(ledger.sent), dict(ledger.acked), dict(ledger.deleted)
            live, last = ledger.live(), ledger.seq
        held = fetch(index, sorted(sent), last)
        assert live <= held.keys(), f"acknowledged but missing: {sorted(live - held.keys())[:10]}"
        assert not held.keys() & deleted.keys(), sorted(held.keys() & deleted.keys())
        assert held.keys() <= sent.keys()
        assert all(held[i] == acked.get(i, sent[i]) for i in held)
        record_seq, record = scan(cluster.record())
        assert live <= record.keys() and not record.keys() & deleted.keys()
        if record_seq != last:  # writes the taxonomy committed but never answered
            held = fetch(index, sorted(sent), record_seq)
        assert held == record
        counted = stats(index, record_seq)
        assert sum(p.count for p in counted.partitions) == len(held)  # each id held once
        assert counted.seq == record_seq


def _under_load(
    tmp_path: Path, crash: Callable[[Cluster, random.Random], None]
) -> tuple[Ledger, Writer, Searcher]:
    """Runs KILL_CYCLES of `crash` while a writer and a searcher go on; checks after each."""
    rng = random.Random(KILL_CYCLES)
    ledger = Ledger()
    with running(tmp_path, VS_INDEX_SNAPSHOT_EVERY="40") as cluster:
        writer, searcher = Writer(cluster, ledger, rng), Searcher(cluster, ledger, rng)
        writer.start()
        searcher.start()
        try:
            for _ in range(KILL_CYCLES):
                time.sleep(rng.uniform(0.1, 1.0))
                crash(cluster, rng)
                _check(cluster, ledger, writer)
        finally:
            writer.stopping.set()
            searcher.stopping.set()
            writer.join()
            searcher.join()
        _check(cluster, ledger, writer)
    print(  # shown with -s: the counts a closing note quotes
        f"{KILL_CYCLES} cycles: {len(ledger.acked)} items acknowledged, {len(ledger.deleted)} "
        f"deleted, {searcher.answered} searches, {writer.failed_calls} writes refused"
    )
    return ledger, writer, searcher


def _kill_shard(cluster: Cluster, rng: random.Random) -> None:
    cluster.shard.kill()
    time.sleep(rng.uniform(0.0, 0.3))  # writes it misses
    cluster.shard.start()
    if rng.random() < 0.3:  # again, while it restores or catches up
        time.sleep(rng.uniform(0.0, 0.3))
        cluster.shard.kill()
        cluster.shard.start()


def _kill_taxonomy(cluster: Cluster, rng: random.Random) -> None:
    cluster.taxonomy.kill()
    time.sleep(rng.uniform(0.0, 0.3))
    cluster.taxonomy.start()


def test_a_shard_killed_at_random_moments_holds_every_acknowledged_write(
    tmp_path: Path,
) -> None:
    ledger, writer, searcher = _under_load(tmp_path, _kill_shard)

    assert writer.failed_calls == 0
    assert len(ledger.acked) > KILL_CYCLES * BATCH and ledger.deleted
    assert searcher.problems == [] and searcher.answered > 0


def test_acknowledged_writes_survive_a_killed_taxonomy_and_the_shard_catches_up(
    tmp_path: Path,
) -> None:
    ledger, _, searcher = _under_load(tmp_path, _kill_taxonomy)

    assert len(ledger.acked) > KILL_CYCLES * BATCH and ledger.deleted
    assert searcher.problems == [] and searcher.answered > 0


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE: dict[str, Callable[[Path], None]] = {
    "flip": _flip,
    "truncate": _truncate,
    "remove": Path.unlink,
}


def _snapshot(cluster: Cluster) -> Path:
    (found,) = [p for p in cluster.shard_dir.iterdir() if _SNAPSHOT.match(p.name)]
    return found


def _fill(cluster: Cluster) -> tuple[int, dict[str, bytes]]:
    """Items in every partition, one commit per leaf, applied by the shard; the last seq and
    each id's vector."""
    record, seq = cluster.record(), 0
    vectors: dict[str, bytes] = {}
    for n, leaf in enumerate(LEAVES):
        items = [item(f"{n}-{j}", leaf, 100 * n + j) for j in range(6)]
        seq = put(record, items)
        vectors.update((i.id, i.vector) for i in items)
    assert fetch(cluster.index(), sorted(vectors), seq) == vectors
    return seq, vectors


def test_every_damaged_snapshot_is_set_aside_and_the_shard_rebuilds_exactly(
    tmp_path: Path,
) -> None:
    with running(tmp_path) as cluster:
        seq, vectors = _fill(cluster)
        assert cluster.shard.stop() == 0
        good = _snapshot(cluster)
        files = sorted(p.relative_to(good) for p in good.rglob("*") if p.is_file())
        assert {f.name for f in files} == {"MANIFEST", "index.faiss", "meta.json", "vectors.npy"}
        assert len(files) == 1 + 3 * len(PARTITIONS)
        pristine = tmp_path / "pristine"
        good.rename(pristine)
        damaged: dict[str, str] = {}  # snapshot directory: what was done to it
        for number, (kind, file) in enumerate(
            [(kind, file) for kind in DAMAGE for file in files], start=1
        ):
            copy = cluster.shard_dir / f"snapshot-{number:012d}"
            shutil.copytree(pristine, copy)
            DAMAGE[kind](copy / file)
            damaged[copy.name] = f"{kind} {file}"
        extra = cluster.shard_dir / f"snapshot-{len(damaged) + 1:012d}"
        shutil.copytree(pristine, extra)
        (extra / "part-999").mkdir()
        (extra / "part-999" / "meta.json").write_text("{}")
        damaged[extra.name] = "an unknown file"

        cluster.shard.start()
        held = fetch(cluster.index(), sorted(vectors), seq)
        output = cluster.shard.output()

    assert held == vectors
    set_aside = {
        match.group(1)
        for p in cluster.shard_dir.iterdir()
        if (match := re.match(r"^damaged-.+-(snapshot-\d+)$", p.name))
    }
    assert set_aside == set(damaged), (sorted(os.listdir(cluster.shard_dir)), output[-3000:])
    for name, what in damaged.items():
        assert re.search(rf"{name} fails its check .* never served", output), what
    assert "restored" not in output
    assert re.search(rf"built {len(vectors)} vectors in {len(PARTITIONS)} partitions", output)


def test_a_damaged_newest_snapshot_falls_back_to_an_older_good_one(tmp_path: Path) -> None:
    with running(tmp_path) as cluster:
        first, vectors = _fill(cluster)
        assert cluster.shard.stop() == 0
        older = _snapshot(cluster)
        kept = tmp_path / "older"
        shutil.copytree(older, kept)
        cluster.shard.start()
        later = put(cluster.record(), [item("late", LEAVES[0], 999)])
        vectors["late"] = vector(999)
        assert fetch(cluster.index(), ["late"], later)
        assert cluster.shard.stop() == 0
        newest = _snapshot(cluster)
        kept.rename(older)
        _flip(newest / "part-102" / "index.faiss")

        cluster.shard.start()
        held = fetch(cluster.index(), sorted(vectors), later)
        output = cluster.shard.output()

    assert held == vectors
    assert re.search(rf"{newest.name} fails its check", output)
    assert re.search(rf"restored {len(vectors) - 1} vectors at seq {first} ", output)
    assert [p for p in cluster.shard_dir.glob(f"damaged-*-{newest.name}") if p.is_dir()]
