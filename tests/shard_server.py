"""A taxonomy and an index shard as processes on loopback, each keeping its port across restarts."""

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from infra import process
from protos.visualsearch.v1 import index_pb2, index_pb2_grpc, taxonomy_pb2, taxonomy_pb2_grpc
from tests.taxonomy_server import READER, TOKENS, WRITER, bearer, seed

DIM = 8
MODEL = "m1"
WAIT_S = 60.0  # how long a call with min_seq may wait for a shard that rebuilds
# Partitions are the second-level nodes (partition_level 2), named by their id on the wire.
TREE = """101 - Apparel
102 - Apparel > Topwear
103 - Apparel > Topwear > Tshirts
104 - Apparel > Topwear > Shirts
201 - Footwear
202 - Footwear > Shoes
203 - Footwear > Shoes > Casual Shoes
301 - Accessories
302 - Accessories > Bags
303 - Accessories > Bags > Handbags
"""
PARTITION_OF = {
    "Apparel/Topwear/Tshirts": "102",
    "Apparel/Topwear/Shirts": "102",
    "Footwear/Shoes/Casual Shoes": "202",
    "Accessories/Bags/Handbags": "302",
}
LEAVES = sorted(PARTITION_OF)
PARTITIONS = sorted(set(PARTITION_OF.values()))
# Short reconnect backoff: a client keeps its channel while the server it calls restarts.
_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 300),
]


def vector(seed: int) -> bytes:
    """A float32 vector of DIM, as little-endian bytes, the same for the same seed."""
    return np.random.default_rng(seed).standard_normal(DIM).astype("<f4").tobytes()


def item(item_id: str, leaf: str, seed: int) -> taxonomy_pb2.Item:
    return taxonomy_pb2.Item(
        id=item_id,
        leaf=leaf,
        leaf_source=taxonomy_pb2.LEAF_SOURCE_GIVEN,
        vector=vector(seed),
        model_version=MODEL,
    )


def connect(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=_OPTIONS)


@dataclass
class Service:
    """One service's process: started, killed and started again on the same address."""

    module: str
    args: list[str]
    address: str
    log: Path
    env: dict[str, str]
    child: subprocess.Popen[bytes] | None = None
    _log_start: int = 0  # where the current run's lines begin in the log

    def start(self) -> None:
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        self.child = process.start(self.module, self.args, self.address, self.log, self.env)

    def kill(self) -> None:
        """SIGKILL: no drain, no snapshot, no clean close."""
        assert self.child is not None
        self.child.kill()
        self.child.wait()

    def stop(self) -> int:
        """SIGTERM (SIGKILL if it does not exit); the exit code."""
        assert self.child is not None
        return process.stop(self.child)

    def output(self) -> str:
        """What the current (or last) run has logged."""
        with self.log.open("rb") as file:
            file.seek(self._log_start)
            return file.read().decode(errors="replace")


@dataclass
class Cluster:
    """A taxonomy over folder/taxonomy.sqlite and shard 0, the only shard, under folder/shards."""

    folder: Path
    taxonomy: Service
    shard: Service
    more_ports: list[int] = field(default_factory=list)  # of the shards the caller starts
    _channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def shard_dir(self) -> Path:
        return self.folder / "shards" / "shard-0"

    def record(self) -> taxonomy_pb2_grpc.TaxonomyStub:
        channel = connect(self.taxonomy.address)
        self._channels.append(channel)
        return taxonomy_pb2_grpc.TaxonomyStub(channel)

    def index(self) -> index_pb2_grpc.IndexStub:
        channel = connect(self.shard.address)
        self._channels.append(channel)
        return index_pb2_grpc.IndexStub(channel)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


@contextmanager
def running(folder: Path, more_shards: int = 0, **settings: str) -> Iterator[Cluster]:
    """Seeds TREE (once per folder), starts the taxonomy and then the shard; always stops both.

    `more_shards` further shards, which the caller starts on `Cluster.more_ports`, are named
    in the configuration after shard 0. `settings` are VS_* overrides for both processes
    (VS_INDEX_SNAPSHOT_EVERY="50", say).
    """
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "taxonomy.sqlite"
    if not database.exists():
        seed(database, TREE)
    (folder / "tokens.toml").write_text(TOKENS)
    (folder / "cluster.toml").write_text("")
    taxonomy_port, shard_port, *more_ports = process.free_ports(2 + more_shards)
    env = {
        "VS_CONFIG": str(folder / "cluster.toml"),
        "VS_TAXONOMY_PORT": str(taxonomy_port),
        "VS_TAXONOMY_DATABASE": str(database),
        "VS_INDEX_PORTS": ",".join(str(port) for port in (shard_port, *more_ports)),
        "VS_INDEX_DATA_DIR": str(folder / "shards"),
        "VS_PARTITION_LEVEL": "2",
        "VS_GRACE_S": "1",
        **settings,
    }
    taxonomy_env = {**env, "VS_AUTH_TOKENS_FILE": str(folder / "tokens.toml")}
    shard_env = {**env, "VS_AUTH_TOKEN": READER}  # auth off on the shard, on at the taxonomy
    cluster = Cluster(
        folder,
        Service("taxonomy_svc.server", [], f"127.0.0.1:{taxonomy_port}",
                folder / "taxonomy.log", taxonomy_env),
        Service("index_svc.server", ["--shard", "0"], f"127.0.0.1:{shard_port}",
                folder / "shard.log", shard_env),
        more_ports=more_ports,
    )  # fmt: skip
    try:
        cluster.taxonomy.start()
        cluster.shard.start()
        yield cluster
    finally:
        cluster.close()
        for service in (cluster.shard, cluster.taxonomy):
            if service.child is not None:
                process.stop(service.child)


def put(
    stub: taxonomy_pb2_grpc.TaxonomyStub, items: Sequence[taxonomy_pb2.Item], timeout: float = 10.0
) -> int:
    """Records the items (every one must be accepted); the feed position of the commit."""
    answer = stub.PutItems(
        taxonomy_pb2.PutItemsRequest(items=items), timeout=timeout, metadata=bearer(WRITER)
    )
    assert not answer.errors, answer.errors
    return int(answer.seq)


def delete(stub: taxonomy_pb2_grpc.TaxonomyStub, ids: Sequence[str], timeout: float = 10.0) -> int:
    """Deletes the items; the feed position of the commit (0 if none was held)."""
    answer = stub.DeleteItems(
        taxonomy_pb2.DeleteItemsRequest(ids=ids), timeout=timeout, metadata=bearer(WRITER)
    )
    return int(answer.seq)


def scan(stub: taxonomy_pb2_grpc.TaxonomyStub) -> tuple[int, dict[str, bytes]]:
    """The record's feed position and every item's vector as of it."""
    request = taxonomy_pb2.ScanRequest()
    chunks = list(stub.Scan(request, timeout=WAIT_S, metadata=bearer(READER), wait_for_ready=True))
    return chunks[0].seq, {i.item_id: i.vector for chunk in chunks for i in chunk.items}


def fetch(stub: index_pb2_grpc.IndexStub, ids: Sequence[str], min_seq: int) -> dict[str, bytes]:
    """The vectors the shard holds of these ids once it has applied the feed up to min_seq."""
    held: dict[str, bytes] = {}
    for start in range(0, len(ids), 1000):
        answer = stub.Fetch(
            index_pb2.FetchRequest(item_ids=ids[start : start + 1000], min_seq=min_seq),
            timeout=WAIT_S,
            wait_for_ready=True,
        )
        held.update((found.item_id, found.vector) for found in answer.vectors)
    return held


def stats(stub: index_pb2_grpc.IndexStub, min_seq: int) -> index_pb2.StatsResponse:
    request = index_pb2.StatsRequest(min_seq=min_seq)
    return stub.Stats(request, timeout=WAIT_S, wait_for_ready=True)  # type: ignore[no-any-return]


def environment_int(name: str, default: int) -> int:
    """An integer setting of a test run from the environment (KILL_CYCLES=50, say)."""
    return int(os.environ.get(name) or default)
