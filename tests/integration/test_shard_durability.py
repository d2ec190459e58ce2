"""A shard keeps every acknowledged write through crashes, torn log tails and snapshots."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index_svc.record import Record
from index_svc.shard import Shard

ROOT = Path(__file__).resolve().parents[2]
DIM = 8
TOPS = "Apparel/Topwear"
SHOES = "Footwear/Shoes"


def _vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _record(item_id: str, seed: int, partition: str = TOPS) -> Record:
    return Record(item_id, partition, f"{partition}/Leaf", _vector(seed), "m1")


def _write_history(shard: Shard) -> None:
    """Upserts, a replacement, a move to another partition and a delete: one call each."""
    shard.upsert([_record(f"t{i}", i) for i in range(20)])
    shard.upsert([_record(f"s{i}", 100 + i, SHOES) for i in range(5)])
    shard.upsert([_record("t1", 1000)])
    shard.upsert([_record("t2", 2, SHOES)])
    shard.delete(["t3", "s4"])


def _assert_history(shard: Shard) -> None:
    counts = {stat.name: stat.count for stat in shard.stats()}
    assert (counts[TOPS], counts[SHOES]) == (18, 5)
    found, missing = shard.fetch(["t0", "t1", "t2", "t3", "s4"])
    assert missing == ["t3", "s4"]
    by_id = {record.item_id: record for record in found}
    np.testing.assert_array_equal(by_id["t1"].vector, _vector(1000))
    assert by_id["t2"].partition == SHOES
    hits, _ = shard.search(_vector(5), [TOPS, SHOES], 1)
    assert hits[0].item_id == "t5"


def _log(directory: Path) -> Path:
    (log,) = directory.glob("wal-*.log")
    return log


def test_acknowledged_writes_survive_a_killed_process(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from index_svc.shard import Shard\n"
        "from tests.integration.test_shard_durability import _write_history\n"
        "_write_history(Shard.open(Path(sys.argv[1])))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, env=env, timeout=120
    )

    assert done.returncode == -signal.SIGKILL
    _assert_history(Shard.open(tmp_path))


def test_reopening_without_a_clean_close_finds_every_write(tmp_path: Path) -> None:
    _write_history(Shard.open(tmp_path))

    reopened = Shard.open(tmp_path)

    _assert_history(reopened)
    assert not (tmp_path / "CURRENT").exists()


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00\x01garbage",
        b"\xff\x00\x00\x00\x12\x34\x56\x78partial",  # a frame header promising more bytes
        bytes(64),  # zeros where a crash left the file longer than its data
    ],
)
def test_a_torn_tail_is_dropped_and_everything_before_kept(tmp_path: Path, tail: bytes) -> None:
    _write_history(Shard.open(tmp_path))
    log = _log(tmp_path)
    intact = log.stat().st_size
    with log.open("ab") as file:
        file.write(tail)

    reopened = Shard.open(tmp_path)

    _assert_history(reopened)
    assert log.stat().st_size == intact
    reopened.upsert([_record("after", 77, "Accessories/Bags")])
    assert Shard.open(tmp_path).fetch(["after"])[1] == []


def test_a_corrupt_last_record_is_dropped(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path)
    _write_history(shard)
    shard.upsert([_record("last", 55)])
    log = _log(tmp_path)
    data = bytearray(log.read_bytes())
    data[-3] ^= 0xFF
    log.write_bytes(bytes(data))

    reopened = Shard.open(tmp_path)

    _assert_history(reopened)
    assert reopened.fetch(["last"])[1] == ["last"]


def test_snapshots_then_later_writes_are_all_found(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path, snapshot_every=4)
    _write_history(shard)  # five writes: a snapshot after the fourth, the fifth in the log
    shard.upsert([_record("late", 66, "Accessories/Bags")])

    reopened = Shard.open(tmp_path)

    assert (tmp_path / "CURRENT").read_text().strip() == "1"
    assert _log(tmp_path).stat().st_size > 0
    assert len(list(tmp_path.glob("snapshot-*"))) == 1
    _assert_history(reopened)
    assert reopened.fetch(["late"])[1] == []


def test_a_log_past_its_byte_limit_is_snapshotted(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path, snapshot_bytes=1)

    _write_history(shard)

    assert _log(tmp_path).stat().st_size == 0
    _assert_history(Shard.open(tmp_path))


def test_a_clean_close_snapshots_and_empties_the_log(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path)
    _write_history(shard)

    shard.close()

    assert _log(tmp_path).stat().st_size == 0
    reopened = Shard.open(tmp_path)
    _assert_history(reopened)
    reopened.close()
    assert (tmp_path / "CURRENT").read_text().strip() == "1"


def test_leftovers_of_an_interrupted_snapshot_are_ignored(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path, snapshot_every=2)
    _write_history(shard)
    (tmp_path / ".tmp-snapshot-000003" / "part-00000").mkdir(parents=True)
    (tmp_path / "snapshot-000003").mkdir()
    (tmp_path / "wal-000003.log").write_bytes(b"half")

    reopened = Shard.open(tmp_path)

    _assert_history(reopened)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["CURRENT", "LOCK", "snapshot-000002", "wal-000002.log"]


def test_a_second_process_cannot_open_a_held_directory(tmp_path: Path) -> None:
    shard = Shard.open(tmp_path)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from common.errors import FailedPrecondition\n"
        "from index_svc.shard import Shard\n"
        "try:\n    Shard.open(Path(sys.argv[1]))\n"
        "except FailedPrecondition:\n    sys.exit(3)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, env=env, timeout=120
        )
    finally:
        shard.close()

    assert done.returncode == 3
