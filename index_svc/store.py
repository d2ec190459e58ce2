"""A shard's directory: the current snapshot, the log of writes since, and the switch to new ones.

    <dir>/LOCK               locked (fcntl.lockf) while a process serves the directory
    <dir>/CURRENT            the generation in use, e.g. "3"; absent means 0, no snapshot
    <dir>/snapshot-000003/   one sub-directory per partition (Partition.save)
    <dir>/wal-000003.log     the writes acknowledged since that snapshot

A checkpoint writes generation g+1 beside g and switches CURRENT with os.replace, so a crash
at any moment leaves one whole (snapshot, log) pair in use; the other generation's files are
removed at the next open.
"""

import fcntl
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from common.errors import FailedPrecondition, Unavailable
from index_svc import wal
from index_svc.partition import Partition
from index_svc.record import Record

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
_GENERATION_FILE = re.compile(r"^(?:\.tmp-)?(?:snapshot-(\d+)|wal-(\d+)\.log)$")


class Store:
    """Durable state of one shard directory; the caller serialises calls."""

    def __init__(self, directory: Path, generation: int, lock_fd: int, log: wal.Log) -> None:
        self.directory = directory
        self.generation = generation
        self._lock_fd = lock_fd
        self._log: wal.Log | None = log

    @classmethod
    def open(cls, directory: Path) -> tuple["Store", list[Partition], Iterator[wal.Entry]]:
        """Locks a directory and reads its last snapshot and the log written since.

        Returns:
            The store, the snapshot's partitions, and the logged writes to replay on them.

        Raises:
            FailedPrecondition: another process holds the directory.
        """
        directory.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(directory)
        generation = _current(directory)
        _remove_other_generations(directory, generation)
        snapshot = directory / _snapshot_name(generation)
        partitions = _read_snapshot(snapshot) if generation else []
        log_path = directory / _log_name(generation)
        payloads = wal.recover(log_path)
        store = cls(directory, generation, lock_fd, wal.Log(log_path, len(payloads)))
        _fsync_dir(directory)
        return store, partitions, (wal.decode(payload) for payload in payloads)

    @property
    def closed(self) -> bool:
        return self._log is None

    @property
    def log_records(self) -> int:
        return self._open_log().records

    @property
    def log_bytes(self) -> int:
        return self._open_log().size

    def log_upsert(self, records: Sequence[Record]) -> None:
        """Makes an upsert durable before it is applied."""
        self._open_log().append(wal.encode_upsert(records))

    def log_delete(self, item_ids: Sequence[str]) -> None:
        """Makes a delete durable before it is applied."""
        self._open_log().append(wal.encode_delete(item_ids))

    def checkpoint(self, partitions: Iterable[Partition]) -> None:
        """Writes a snapshot of `partitions`, switches to it and starts an empty log."""
        old_log, new = self._open_log(), self.generation + 1
        temporary = self.directory / f".tmp-{_snapshot_name(new)}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        for number, partition in enumerate(partitions):
            partition.save(temporary / f"part-{number:05d}")
        _fsync_tree(temporary)
        temporary.rename(self.directory / _snapshot_name(new))
        new_log = wal.Log(self.directory / _log_name(new))
        try:
            _point_current(self.directory, new)
        except OSError:
            new_log.close()
            raise
        self._log, self.generation = new_log, new
        old_log.close()
        _fsync_dir(self.directory)
        _remove_other_generations(self.directory, new)
        log.info("%s: snapshot %d written", self.directory, new)

    def close(self) -> None:
        """Closes the log and releases the directory."""
        if self._log is not None:
            self._log.close()
            self._log = None
            os.close(self._lock_fd)

    def _open_log(self) -> wal.Log:
        if self._log is None:
            raise Unavailable(f"shard store {self.directory} is closed")
        return self._log


def _snapshot_name(generation: int) -> str:
    return f"snapshot-{generation:06d}"


def _log_name(generation: int) -> str:
    return f"wal-{generation:06d}.log"


def _lock(directory: Path) -> int:
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise FailedPrecondition(f"{directory} is in use by another process") from None
    return fd


def _current(directory: Path) -> int:
    path = directory / CURRENT
    return int(path.read_text()) if path.exists() else 0


def _point_current(directory: Path, generation: int) -> None:
    """Switches CURRENT to `generation` in one atomic rename (the caller fsyncs the directory)."""
    temporary = directory / f".tmp-{CURRENT}"
    with temporary.open("w") as file:
        file.write(f"{generation}\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, directory / CURRENT)


def _read_snapshot(snapshot: Path) -> list[Partition]:
    return [Partition.load(path) for path in sorted(snapshot.iterdir()) if path.is_dir()]


def _remove_other_generations(directory: Path, generation: int) -> None:
    """Removes snapshots, logs and temporaries that are not those of `generation`."""
    for path in directory.iterdir():
        match = _GENERATION_FILE.match(path.name)
        if match is None:
            continue
        number = int(match.group(1) or match.group(2))
        if path.name.startswith(".tmp-") or number != generation:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            _fsync_path(path)
    for path in [*(p for p in root.rglob("*") if p.is_dir()), root]:
        _fsync_dir(path)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    _fsync_path(directory)
