"""A shard process serving one snapshot, for the ANN benchmark: its memory, and how many
queries a second concurrent gRPC callers get from it.

No taxonomy runs beside it: the shard restores its snapshot and serves it, and logs once a
second that following the record failed (expected here). It runs a copy of the code taken
when the benchmark began (`freeze`): a long run in a checkout that someone edits meanwhile
would otherwise write snapshots with one version and read them with another.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from common.serve import channel_options
from index_svc.partition import Partition
from index_svc.snapshots import Snapshots
from index_svc.specs import SearchParams
from infra import process
from protos.visualsearch.v1 import index_pb2, index_pb2_grpc

READY_TIMEOUT_S = 900.0
CALL_TIMEOUT_S = 120.0
MIN_CALLS = 2  # per client and measurement, however long the calls take
PACKAGES = ("common", "index_svc", "protos")  # what `python -m index_svc.server` imports
DAMAGED = "fails its check"  # the shard's log line for a snapshot it will not serve
Request = index_pb2.SearchVectorsRequest | index_pb2.SearchBatchRequest


@dataclass
class ShardProcess:
    popen: subprocess.Popen[bytes]
    address: str
    log: Path
    ready_s: float = 0.0  # from the process's start until Stats said ready

    def rss(self) -> int:
        """Resident memory in bytes (VmRSS of /proc/<pid>/status)."""
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {self.popen.pid}")

    def stats(self) -> index_pb2.StatsResponse:
        with grpc.insecure_channel(self.address) as channel:
            stub = index_pb2_grpc.IndexStub(channel)
            return stub.Stats(index_pb2.StatsRequest(), timeout=10.0)  # type: ignore[no-any-return]

    def wait_ready(self) -> float:
        """Seconds until Stats says ready.

        Raises:
            RuntimeError: the shard exited, refused its snapshot, or was not ready in time.
        """
        started = time.monotonic()
        while time.monotonic() - started < READY_TIMEOUT_S:
            if self.popen.poll() is not None or DAMAGED in self.log.read_text(errors="replace"):
                raise RuntimeError(f"{self.address} failed:\n{process.tail(self.log)}")
            try:
                if self.stats().ready:
                    return time.monotonic() - started
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.address} not ready:\n{process.tail(self.log)}")


def freeze(folder: Path) -> Path:
    """Copies the packages a shard runs into `folder`/code; returns that folder."""
    code = folder / "code"
    for package in PACKAGES:
        shutil.copytree(
            process.ROOT / package, code / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return code


@contextmanager
def serving(
    folder: Path, partitions: Sequence[Partition], model_version: str, spec: str = ""
) -> Iterator[ShardProcess]:
    """Writes the partitions as shard 0's snapshot under `folder` (an absolute path), starts
    that shard on it with the code `freeze` copied there (VS_INDEX_SPEC=spec, so that it
    never rebuilds them) and waits until it is ready; stops it and removes the snapshot on
    the way out."""
    data = folder / "shards"
    snapshots = Snapshots(data / "shard-0")
    try:
        snapshots.write(1, model_version, partitions)
    finally:
        snapshots.close()
    (folder / "cluster.toml").write_text("")
    port, unused = process.free_ports(2)
    env = {
        "VS_CONFIG": str(folder / "cluster.toml"),  # defaults and these, not infra/cluster.toml
        "VS_AUTH_TOKENS_FILE": "",
        "VS_INDEX_PORTS": str(port),
        "VS_INDEX_DATA_DIR": str(data),
        "VS_TAXONOMY_PORT": str(unused),  # nothing listens: the shard serves its snapshot
        "VS_INDEX_SPEC": spec,
        "VS_INDEX_MODEL_VERSION": model_version,
        "VS_GRACE_S": "1",
    }
    log = folder / f"shard-{spec or 'empty'}.log".replace(",", "_")
    popen = _spawn(folder / "code", log, env)
    try:
        shard = ShardProcess(popen, f"127.0.0.1:{port}", log)
        shard.ready_s = shard.wait_ready()
        yield shard
    finally:
        process.stop(popen, grace_s=30.0)
        shutil.rmtree(data, ignore_errors=True)


def _spawn(code: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`python -m index_svc.server --shard 0` in the frozen code, as infra.process.spawn."""
    environment = {**os.environ, "PYTHONPATH": str(code), "PYTHONUNBUFFERED": "1", **env}
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "index_svc.server", "--shard", "0"],
            cwd=code,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def requests(
    queries: np.ndarray, batch: int, partition: str, k: int, params: SearchParams
) -> list[Request]:
    """The queries as SearchVectors (batch 1) or SearchBatch requests of `batch` queries."""
    wire = index_pb2.SearchParams(
        ef_search=params.ef_search, nprobe=params.nprobe, refine=params.refine
    )
    rows = [np.ascontiguousarray(q, dtype="<f4").tobytes() for q in queries]
    if batch == 1:
        return [
            index_pb2.SearchVectorsRequest(query=row, partitions=[partition], k=k, params=wire)
            for row in rows
        ]
    return [
        index_pb2.SearchBatchRequest(
            queries=rows[start : start + batch], partitions=[partition], k=k, params=wire
        )
        for start in range(0, len(rows) - batch + 1, batch)
    ]


class Client:
    """grpc.aio calls to one shard from this process, on an event loop of its own."""

    def __init__(self, address: str) -> None:
        self._runner = asyncio.Runner()
        self._address = address
        self._channel: grpc.aio.Channel | None = None
        self._stubs: index_pb2_grpc.IndexStub | None = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        if self._channel is not None:
            self._runner.run(self._channel.close(None))
        self._runner.close()

    def answers(self, request: Request) -> list[list[str]]:
        """The item ids of each query's neighbours."""
        return self._runner.run(self._answers(request))

    def rate(self, calls: list[Request], in_flight: int, seconds: float) -> float:
        """Queries a second of `in_flight` concurrent callers over `seconds` (each makes at
        least MIN_CALLS calls), after one warm-up call each."""
        return self._runner.run(self._rate(calls, in_flight, seconds))

    def _stub(self) -> index_pb2_grpc.IndexStub:
        if self._stubs is None:
            self._channel = grpc.aio.insecure_channel(self._address, options=channel_options())
            self._stubs = index_pb2_grpc.IndexStub(self._channel)
        return self._stubs

    async def _send(self, request: Request) -> Any:
        if isinstance(request, index_pb2.SearchVectorsRequest):
            return await self._stub().SearchVectors(request, timeout=CALL_TIMEOUT_S)
        return await self._stub().SearchBatch(request, timeout=CALL_TIMEOUT_S)

    async def _answers(self, request: Request) -> list[list[str]]:
        """The item ids of each query's neighbours; SearchBatch answers in columns."""
        reply = await self._send(request)
        if reply.missing_partitions:
            raise RuntimeError(f"the shard does not hold {list(reply.missing_partitions)}")
        if isinstance(request, index_pb2.SearchVectorsRequest):
            return [[neighbor.item_id for neighbor in reply.neighbors]]
        ends = np.cumsum(list(reply.counts)).tolist()
        ids = list(reply.item_ids)
        return [ids[end - count : end] for end, count in zip(ends, reply.counts, strict=True)]

    async def _rate(self, calls: list[Request], in_flight: int, seconds: float) -> float:
        per_call = _queries_in(calls[0])
        await asyncio.gather(*(self._answers(calls[i % len(calls)]) for i in range(in_flight)))
        started = time.perf_counter()
        until = started + seconds
        made = [0] * in_flight

        async def caller(number: int) -> None:
            n = number
            while time.perf_counter() < until or made[number] < MIN_CALLS:
                await self._send(calls[n % len(calls)])
                made[number] += 1
                n += in_flight

        await asyncio.gather(*(caller(i) for i in range(in_flight)))
        return sum(made) * per_call / (time.perf_counter() - started)


def _queries_in(request: Request) -> int:
    return 1 if isinstance(request, index_pb2.SearchVectorsRequest) else len(request.queries)
