"""A shard's snapshots: written and read back whole, or set aside and never served."""

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from common.errors import FailedPrecondition
from common.feed import UPSERT, Change, ItemState
from index_svc.partition import Partition
from index_svc.shard import Shard
from index_svc.snapshots import MANIFEST, Snapshots
from index_svc.specs import Policy

DIM = 8


def _partition(name: str, n: int, seed: int) -> Partition:
    partition = Partition(name, "m1", DIM, Policy())
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    items = [ItemState(f"{name}-{i}", 7, f"Leaf{name}", int(name)) for i in range(n)]
    partition.upsert(items, vectors)
    return partition


@pytest.fixture
def snapshots(tmp_path: Path) -> Iterator[Snapshots]:
    snapshots = Snapshots(tmp_path / "shard")
    yield snapshots
    snapshots.close()


def _files(snapshot: Path) -> list[str]:
    return sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())


def _written(snapshots: Snapshots) -> Path:
    return snapshots.write(5, "m1", [_partition("10", 3, 1), _partition("20", 2, 2)])


def test_a_snapshot_reads_back_as_written(snapshots: Snapshots) -> None:
    original = _partition("10", 4, 1)
    snapshots.write(9, "m1", [original, _partition("20", 2, 2)])

    loaded = snapshots.load(Policy())

    assert loaded is not None
    assert (loaded.seq, loaded.model_version) == (9, "m1")
    assert {p.name: len(p) for p in loaded.partitions} == {"10": 4, "20": 2}
    (partition,) = [p for p in loaded.partitions if p.name == "10"]
    vector, leaf = partition.fetch("10-3")
    np.testing.assert_array_equal(vector, original.fetch("10-3")[0])
    assert leaf == "Leaf10"


def test_a_newer_snapshot_replaces_the_older(snapshots: Snapshots) -> None:
    snapshots.write(1, "m1", [_partition("10", 1, 1)])
    snapshots.write(2, "m1", [_partition("10", 2, 1)])

    loaded = snapshots.load(Policy())

    assert loaded is not None and loaded.seq == 2 and len(loaded.partitions[0]) == 2
    assert [p.name for p in snapshots.directory.iterdir() if p.name != "LOCK"] == [
        "snapshot-000000000002"
    ]


def test_no_snapshot_loads_as_none(snapshots: Snapshots) -> None:
    assert snapshots.load(Policy()) is None


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE: dict[str, Callable[[Path], None]] = {
    "flip": _flip_a_bit,
    "truncate": _truncate,
    "remove": Path.unlink,
}


def _every_file(tmp_path: Path) -> list[str]:
    snapshots = Snapshots(tmp_path)
    try:
        return _files(_written(snapshots))
    finally:
        snapshots.close()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_any_damaged_file_sets_the_snapshot_aside_and_nothing_is_served(
    tmp_path: Path, damage: str
) -> None:
    names = _every_file(tmp_path / "probe")
    assert MANIFEST in names and len(names) == 7  # the manifest, three files per partition
    for name in names:
        snapshots = Snapshots(tmp_path / damage / name)
        try:
            snapshot = _written(snapshots)
            DAMAGE[damage](snapshot / name)

            assert snapshots.load(Policy()) is None, f"{damage} {name}"
            (aside,) = [p.name for p in snapshots.directory.iterdir() if p.name != "LOCK"]
            assert aside.startswith("damaged-") and aside.endswith(snapshot.name)
            assert snapshots.load(Policy()) is None
        finally:
            snapshots.close()


def test_an_extra_file_sets_the_snapshot_aside(snapshots: Snapshots) -> None:
    snapshot = _written(snapshots)
    (snapshot / "part-10" / "stray").write_bytes(b"x")

    assert snapshots.load(Policy()) is None
    assert [p.name.startswith("damaged-") for p in snapshots.directory.glob("*-*")] == [True]


def test_a_damaged_newest_snapshot_is_not_replaced_by_anything_else(
    snapshots: Snapshots,
) -> None:
    snapshots.write(1, "m1", [_partition("10", 1, 1)])
    newest = snapshots.write(2, "m1", [_partition("10", 2, 1)])
    _flip_a_bit(newest / "part-10" / "index.faiss")

    assert snapshots.load(Policy()) is None
    written_again = snapshots.write(3, "m1", [_partition("20", 1, 3)])
    loaded = snapshots.load(Policy())
    assert loaded is not None and loaded.seq == 3 and written_again.exists()


def test_an_interrupted_write_is_removed_and_not_served(snapshots: Snapshots) -> None:
    torn = snapshots.directory / ".tmp-snapshot-000000000007"
    torn.mkdir()
    (torn / MANIFEST).write_text("{")

    assert snapshots.load(Policy()) is None
    assert not torn.exists()


def test_a_shard_restores_its_owned_partitions_from_its_snapshot(tmp_path: Path) -> None:
    vector = np.arange(DIM, dtype="<f4")
    shard = Shard(Policy(), lambda name: True, "m1")
    shard.apply(
        [
            Change(seq, UPSERT, item=ItemState(i, 1, "L", p, "m1", vector.tobytes()), item_id=i)
            for seq, (i, p) in enumerate([("a", 10), ("b", 20)], start=1)
        ]
    )
    snapshots = Snapshots(tmp_path)
    try:
        shard.snapshot(snapshots.write)
        loaded = snapshots.load(Policy())
    finally:
        snapshots.close()
    assert loaded is not None

    restored = Shard(Policy(), lambda name: name == "20", "m1")
    restored.restore(loaded)

    assert (restored.seq, restored.model_version, restored.count) == (2, "m1", 1)
    (record,), missing = restored.fetch(["b", "a"])
    assert record.partition == "20" and missing == ["a"]
    np.testing.assert_array_equal(record.vector, vector)


def test_a_closed_directory_can_be_taken_again(tmp_path: Path) -> None:
    first = Snapshots(tmp_path)
    _written(first)
    first.close()

    second = Snapshots(tmp_path)
    try:
        loaded = second.load(Policy())
    finally:
        second.close()
    assert loaded is not None and loaded.seq == 5


def test_a_directory_in_use_is_refused_by_another_process(tmp_path: Path) -> None:
    # The lock is per process (fcntl.lockf); a second process is what it keeps out.
    script = "from index_svc.snapshots import Snapshots; from pathlib import Path; import sys\n"
    script += "Snapshots(Path(sys.argv[1])); print('held'); sys.stdin.read()\n"
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(FailedPrecondition, match="in use"):
            Snapshots(tmp_path)
    finally:
        holder.communicate("")


def test_a_snapshot_of_another_format_is_set_aside_and_not_read(tmp_path: Path) -> None:
    snapshots = Snapshots(tmp_path)
    path = snapshots.write(5, "m1", [_partition("10", 3, 0)])
    manifest = json.loads((path / MANIFEST).read_text())
    del manifest["format"], manifest["checksum"]  # as written before formats were recorded
    manifest["checksum"] = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    (path / MANIFEST).write_text(json.dumps(manifest))

    assert snapshots.load(Policy()) is None
    assert [p.name.endswith(path.name) for p in tmp_path.glob("damaged-*")] == [True]
