"""The write-ahead log: one framed, checksummed, fsynced record per acknowledged write.

A frame is `<u32 payload length><u32 crc32 of payload><payload>`. A payload is one write:
    b"U" <u32 header length> <JSON header: [[item_id, partition, leaf, model_version, dim]...]>
         <the vectors' little-endian float32s, concatenated in header order>
    b"D" <JSON list of item ids>
"""

import dataclasses
import json
import logging
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index_svc.record import Record

log = logging.getLogger(__name__)

FRAME = struct.Struct("<II")
HEADER_LENGTH = struct.Struct("<I")
UPSERT = b"U"
DELETE = b"D"


@dataclasses.dataclass(frozen=True)
class Delete:
    item_ids: list[str]


Entry = list[Record] | Delete


class Log:
    """An append-only log file; `append` returns once the record is on disk."""

    def __init__(self, path: Path, records: int = 0) -> None:
        self.path = path
        self.records = records
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.size = os.fstat(self._fd).st_size

    def append(self, payload: bytes) -> None:
        """Writes one frame and fsyncs it; on failure the file is cut back to its last frame."""
        frame = FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            _write_all(self._fd, frame)
            os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self.size)
            raise
        self.size += len(frame)
        self.records += 1

    def close(self) -> None:
        os.close(self._fd)


def recover(path: Path) -> list[bytes]:
    """Reads the payloads of a log, cutting off a torn or corrupt tail.

    A crash in the middle of `append` leaves a partial frame at the end; that write was
    never acknowledged, so it and anything after it is dropped and the file truncated.

    Returns:
        The payloads of the whole frames, oldest first.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    payloads, end = _frames(data)
    if end < len(data):
        log.warning("%s: dropping %d bytes of torn or corrupt tail", path, len(data) - end)
        with path.open("r+b") as file:
            file.truncate(end)
            os.fsync(file.fileno())
    return payloads


def encode_upsert(records: Sequence[Record]) -> bytes:
    header = [[r.item_id, r.partition, r.leaf, r.model_version, r.vector.shape[0]] for r in records]
    header_bytes = json.dumps(header).encode()
    floats = np.concatenate([r.vector for r in records]).astype("<f4", copy=False)
    return UPSERT + HEADER_LENGTH.pack(len(header_bytes)) + header_bytes + floats.tobytes()


def encode_delete(item_ids: Sequence[str]) -> bytes:
    return DELETE + json.dumps(list(item_ids)).encode()


def decode(payload: bytes) -> Entry:
    """The write a payload records.

    Raises:
        ValueError: the payload is of no known kind.
    """
    kind, body = payload[:1], payload[1:]
    if kind == DELETE:
        return Delete(json.loads(body))
    if kind != UPSERT:
        raise ValueError(f"log payload of unknown kind {kind!r}")
    (length,) = HEADER_LENGTH.unpack_from(body)
    header = json.loads(body[HEADER_LENGTH.size : HEADER_LENGTH.size + length])
    floats = np.frombuffer(body, dtype="<f4", offset=HEADER_LENGTH.size + length)
    ends = np.cumsum([dim for *_, dim in header])
    vectors = np.split(floats, ends[:-1])
    return [
        Record(item_id, partition, leaf, vector, model_version)
        for (item_id, partition, leaf, model_version, _), vector in zip(
            header, vectors, strict=True
        )
    ]


def _frames(data: bytes) -> tuple[list[bytes], int]:
    """The payloads of the whole, intact frames at the start of `data`, and where they end."""
    payloads, offset = [], 0
    while offset + FRAME.size <= len(data):
        length, crc = FRAME.unpack_from(data, offset)
        start = offset + FRAME.size
        payload = data[start : start + length]
        # no write has an empty payload: a zero length is a zero-filled (torn) tail
        if not length or len(payload) < length or zlib.crc32(payload) != crc:
            break
        payloads.append(payload)
        offset = start + length
    return payloads, offset


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
