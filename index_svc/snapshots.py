"""A shard's snapshots: checksummed copies of its partitions at one feed position.

    <dir>/LOCK                      locked (fcntl.lockf) while a process serves the directory
    <dir>/snapshot-<seq>/           one sub-directory per partition (Partition.save)
    <dir>/snapshot-<seq>/MANIFEST   JSON: its format, seq and the feed it is a position in,
                                    model version, the routing table, the SHA-256 of every
                                    file, and the SHA-256 of all that
    <dir>/damaged-<time>-<name>/    a snapshot that failed its check, set aside for a person

A snapshot is only an accelerator: the record is the truth. One that is missing, torn,
fails any checksum or was written in another format is set aside with a log line and the
shard rebuilds from the record; a damaged snapshot is never served. A new snapshot is
written beside the old one, fsynced and renamed into place before the old one is removed.
"""

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import FailedPrecondition
from common.feed import Route
from index_svc.partition import Partition
from index_svc.specs import Policy

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST"
FORMAT = 2  # 2: a partition keeps its raw vectors and each row's leaf id, colour and usage
_SNAPSHOT = re.compile(r"^snapshot-(\d+)$")


@dataclass(frozen=True)
class Loaded:
    seq: int
    model_version: str
    partitions: list[Partition]
    routes: list[Route]  # the routing table as of `seq`
    feed_id: str  # the feed `seq` is a position in


class Snapshots:
    """The snapshots of one shard directory, held by this process alone."""

    def __init__(self, directory: Path) -> None:
        """Locks the directory (creating it).

        Raises:
            FailedPrecondition: another process holds the directory.
        """
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._lock_fd = _lock(directory)
        self._writing = threading.Lock()  # a stop's last snapshot may meet a periodic one

    def load(self, policy: Policy) -> Loaded | None:
        """The newest snapshot that passes its checks, its partitions under `policy`; None if
        there is none. Every snapshot that fails is set aside; temporaries of an interrupted
        write are removed."""
        for path in self.directory.glob(".tmp-*"):
            shutil.rmtree(path, ignore_errors=True)
        for path in sorted(self._snapshots(), key=_seq_of, reverse=True):
            try:
                return _read(path, policy)
            except Exception as error:
                self._set_aside(path, error)
        return None

    def write(
        self,
        seq: int,
        model_version: str,
        partitions: Iterable[Partition],
        routes: Iterable[Route] = (),
        feed_id: str = "",
    ) -> Path:
        """Writes a snapshot of `partitions` and the routing table at feed position `seq`,
        then removes older ones."""
        with self._writing:
            return self._write(seq, model_version, partitions, routes, feed_id)

    def _write(
        self,
        seq: int,
        model_version: str,
        partitions: Iterable[Partition],
        routes: Iterable[Route],
        feed_id: str,
    ) -> Path:
        final = self.directory / f"snapshot-{seq:012d}"
        if final.exists():
            return final
        temporary = self.directory / f".tmp-{final.name}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        for partition in partitions:
            partition.save(temporary / f"part-{partition.name}")
        files = {
            str(path.relative_to(temporary)): _sha256(path)
            for path in sorted(temporary.rglob("*"))
            if path.is_file()
        }
        rows = [[r.partition_id, r.serving, r.target, r.ready] for r in routes]
        body = {
            "format": FORMAT,
            "seq": seq,
            "feed_id": feed_id,
            "model_version": model_version,
            "routes": rows,
            "files": files,
        }
        manifest = {**body, "checksum": _checksum(body)}
        (temporary / MANIFEST).write_text(json.dumps(manifest))
        _fsync_tree(temporary)
        temporary.rename(final)
        _fsync(self.directory)
        for path in self._snapshots():
            if path != final:
                shutil.rmtree(path)
        log.info("%s: snapshot at seq %d written", self.directory, seq)
        return final

    def close(self) -> None:
        os.close(self._lock_fd)

    def _snapshots(self) -> list[Path]:
        return [p for p in self.directory.iterdir() if _SNAPSHOT.match(p.name)]

    def _set_aside(self, path: Path, error: Exception) -> None:
        when = f"{time.strftime('%Y%m%dT%H%M%S')}.{time.time_ns() % 10**9:09d}"
        aside = self.directory / f"damaged-{when}-{path.name}"
        log.error(
            "%s fails its check (%s: %s); set aside as %s, never served: the partitions "
            "are rebuilt from the record",
            path,
            type(error).__name__,
            error,
            aside.name,
        )
        path.rename(aside)


def _read(path: Path, policy: Policy) -> Loaded:
    """Reads a snapshot after checking every file against its manifest.

    Raises:
        ValueError: the manifest is missing, torn or fails its checksum, or a file is missing,
            extra or differs from its checksum.
    """
    manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text())
    checksum = manifest.pop("checksum", None)
    if checksum != _checksum(manifest):
        raise ValueError("the manifest fails its checksum")
    if manifest.get("format", 1) != FORMAT:
        raise ValueError(f"written in snapshot format {manifest.get('format', 1)}, not {FORMAT}")
    files = {
        str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and p.name != MANIFEST
    }
    if files != set(manifest["files"]):
        raise ValueError(f"files {sorted(files ^ set(manifest['files']))} missing or unknown")
    for name, digest in manifest["files"].items():
        if _sha256(path / name) != digest:
            raise ValueError(f"{name} fails its checksum")
    partitions = [Partition.load(part, policy) for part in sorted(path.iterdir()) if part.is_dir()]
    routes = [Route(p, tuple(s), tuple(t), tuple(r)) for p, s, t, r in manifest["routes"]]
    return Loaded(
        manifest["seq"], manifest["model_version"], partitions, routes, manifest["feed_id"]
    )


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _seq_of(path: Path) -> int:
    match = _SNAPSHOT.match(path.name)
    return int(match.group(1)) if match else -1


def _lock(directory: Path) -> int:
    fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise FailedPrecondition(f"{directory} is in use by another process") from None
    return fd


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            _fsync(path)
    for path in [*(p for p in root.rglob("*") if p.is_dir()), root]:
        _fsync(path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
