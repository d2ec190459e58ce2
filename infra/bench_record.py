"""The record and its followers: ingest (beside the old shard log), searchable, rebuild, search.

    python -m infra.bench_record [--items 20000] [--dim 160] [--rebuild-sizes 100000,1000000]
        [--writes 300] [--rate 50] [--repeats 3] [--seconds 3] [--clients 4] [--old-commit 8409fad]

Every process is started here on loopback (infra.process), on a generated tree (4 top-level
nodes, 2 partitions under each at level 2, 2 leaves under each partition) and clustered random
vectors, in a temporary folder that is removed at the end. Timing starts once the load average
is below 2 (waited for up to 5 minutes, then it goes on and says so):

0. record vs shard-owned log: the write path below the gateway in the design before the record
   (commit 8409fad, `--old-commit`: the gateway's GetItems, PutItems without the vector, then
   the shard's Upsert, which fsyncs its write-ahead log before answering), its services run from
   `git archive` of that commit with their own generated stubs and called with that commit's
   messages, beside part 1's PutItems with vectors: items/s in batches; for single items at a
   steady rate the time to the acknowledgement and until a shard has applied the write.
1. ingest: PutItems items/s in batches (64 and 512 items a call) with SQLite synchronous=FULL
   and NORMAL; single-item PutItems at a steady rate, and the time from each answer until a
   shard's Stats(min_seq=seq) returns. Reference: a GetTree(version_only) round trip.
2. rebuild: one partition of each size, loaded with big PutItems batches; a shard's time from
   process start to ready when it builds from a scan of the record, and when it restores the
   snapshot it wrote. Reference: the interpreter starting and importing the shard's server.
3. search: SearchVectors queries/s of concurrent clients against one shard, and against two
   shards holding the same partition (VS_INDEX_REPLICAS=2), the calls spread round-robin.

A benchmark, not a test: it asserts nothing. On shared cores only the ratios of one run mean
much.
"""

import argparse
import ast
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.protobuf import descriptor_pool, message_factory
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import sessionmaker

from common import paths
from common.progress import progress
from common.serve import channel_options
from infra import process
from protos.visualsearch.v1 import index_pb2, index_pb2_grpc, taxonomy_pb2, taxonomy_pb2_grpc
from taxonomy_svc import ops
from taxonomy_svc.db import make_engine
from taxonomy_svc.record import Record

PARTITION_LEVEL = 2
TOPS, GROUPS, LEAVES = 4, 2, 2  # top-level nodes, partitions under each, leaves under each
CENTROIDS = 8
MODEL = "bench-v1"
LOAD_BATCH = 5000  # items per PutItems call when loading a partition
TIMEOUT = 60.0
READY_TIMEOUT_S = 1800.0
POLL_S = 0.025
BATCHES = (64, 512)
OLD_COMMIT = "8409fad"  # the last commit whose shards owned their data (Index.Upsert, a log)
QUIET_LOAD = 2.0  # timing waits for the 1-minute load average to fall below this ...
QUIET_WAIT_S = 300.0  # ... for at most this long
SETTINGS = ("FULL", "NORMAL")
RUNS = 3  # timed runs of each batch figure
CORES_NOTE = (
    "this machine has 2 shared cores: every server and the clients share them, so replicas "
    "cannot add CPU here; a second replica can at most use the core one shard process leaves "
    "idle, and figures move with the other work on the cores"
)


def main() -> None:
    args = _arguments()
    command = "python -m infra.bench_record " + " ".join(sys.argv[1:])
    console = Console()
    console.width = max(console.width, 124)
    print(f"command: {command}")
    print(f"machine: {os.cpu_count()} cores visible; {CORES_NOTE}")
    print(f"load before timing: {_quiet()}")
    started = time.monotonic()
    with _Cluster() as cluster:
        old = _bench_old(cluster, args)
        ingest = _bench_ingest(cluster, args)
        _print_old(console, old, ingest, args, command)
        _print_ingest(console, ingest, args, command)
        rebuilds, searches = [], None
        for n, size in enumerate(args.rebuild_sizes):
            rebuild, search = _bench_rebuild(cluster, args, size, search=n == 0)
            rebuilds.append(rebuild)
            searches = searches or search
            _print_rebuild(console, rebuilds[-1:], args, command)
        if searches is not None:
            _print_search(console, searches, args, command)
    print(f"wall time: {time.monotonic() - started:.0f}s; load at the end: {_load():.2f}")


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _quiet() -> str:
    """Waits up to QUIET_WAIT_S for the load average to fall below QUIET_LOAD; says how it went."""
    start = time.monotonic()
    while (load := _load()) >= QUIET_LOAD and time.monotonic() - start < QUIET_WAIT_S:
        time.sleep(5.0)
    waited = time.monotonic() - start
    if load >= QUIET_LOAD:
        return f"{load:.2f} after waiting {waited:.0f}s for it to fall below {QUIET_LOAD:g}: busy"
    return f"{load:.2f} (waited {waited:.0f}s for it to fall below {QUIET_LOAD:g})"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000, help="items per ingest figure")
    parser.add_argument("--dim", type=int, default=160, help="vector dimension")
    parser.add_argument(
        "--rebuild-sizes",
        type=lambda text: [int(size) for size in text.split(",") if size],
        default=[100_000],
        help="vectors in the rebuilt partition, comma-separated (e.g. 100000,1000000)",
    )
    parser.add_argument("--writes", type=int, default=300, help="single-item writes timed")
    parser.add_argument("--rate", type=float, default=50.0, help="single-item writes a second")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each rebuild and search")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of a search run")
    parser.add_argument("--clients", type=int, default=4, help="concurrent search clients")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--old-commit", default=OLD_COMMIT, help="the commit whose shard owned its log (part 0)"
    )
    return parser.parse_args()


# --- processes -------------------------------------------------------------------------------


class _Cluster:
    """A temporary folder and every process started in it; all stopped and removed on exit."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bench_record_"))
        self.config = self.folder / "cluster.toml"
        self.config.write_text("")  # defaults and VS_* only, never infra/cluster.toml
        self.children: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> "_Cluster":
        return self

    def __exit__(self, *_: object) -> None:
        for child in reversed(self.children):
            process.stop(child, grace_s=10.0)
        shutil.rmtree(self.folder, ignore_errors=True)

    def env(self, **settings: str) -> dict[str, str]:
        return {
            "VS_CONFIG": str(self.config),
            "VS_PARTITION_LEVEL": str(PARTITION_LEVEL),
            "VS_AUTH_TOKENS_FILE": "",
            **settings,
        }

    def spawn(self, module: str, args: Sequence[str], log: str, env: dict[str, str]) -> "Child":
        child = process.spawn(module, args, self.folder / log, env)
        self.children.append(child)
        return Child(child, self.folder / log)

    def stop(self, child: "Child") -> int:
        code = process.stop(child.popen, grace_s=60.0)
        self.children.remove(child.popen)
        return code

    @contextmanager
    def taxonomy(self, name: str, synchronous: str) -> Iterator["Taxonomy"]:
        """A taxonomy server on a new database holding the generated tree."""
        database = self.folder / f"{name}.sqlite"
        _seed(database)
        (port,) = process.free_ports()
        env = self.env(
            VS_TAXONOMY_PORT=str(port),
            VS_TAXONOMY_DATABASE=str(database),
            VS_TAXONOMY_SYNCHRONOUS=synchronous,
        )
        address = f"127.0.0.1:{port}"
        child = self.spawn("taxonomy_svc.server", [], f"{name}.log", env)
        try:
            process.wait_serving(address, child.popen, child.log, time.monotonic() + TIMEOUT)
            with grpc.insecure_channel(address, options=channel_options()) as channel:
                yield Taxonomy(port, taxonomy_pb2_grpc.TaxonomyStub(channel))
        finally:
            self.stop(child)

    def shard(self, taxonomy: int, ports: Sequence[int], number: int, data: str) -> "Shard":
        """Starts shard `number` of `ports` (every partition on each of them) without waiting."""
        env = self.env(
            VS_TAXONOMY_PORT=str(taxonomy),
            VS_INDEX_PORTS=",".join(map(str, ports)),
            VS_INDEX_REPLICAS=str(len(ports)),
            VS_INDEX_DATA_DIR=str(self.folder / data),
        )
        started = time.perf_counter()
        child = self.spawn("index_svc.server", ["--shard", str(number)], f"{data}.log", env)
        return Shard(child, f"127.0.0.1:{ports[number]}", started)


@dataclass
class Child:
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class Taxonomy:
    port: int
    stub: taxonomy_pb2_grpc.TaxonomyStub
    partitions: dict[str, str] = field(default_factory=dict)  # partition path: node id

    def __post_init__(self) -> None:
        tree = self.stub.GetTree(taxonomy_pb2.GetTreeRequest(), timeout=TIMEOUT)
        self.partitions = {n.path: str(n.id) for n in tree.nodes if n.depth == PARTITION_LEVEL}


@dataclass
class Shard:
    child: Child
    address: str
    started: float

    def wait_ready(self) -> float:
        """Seconds from process start until Stats says ready (polled every POLL_S)."""
        with grpc.insecure_channel(self.address) as channel:
            stub = index_pb2_grpc.IndexStub(channel)
            while True:
                try:
                    if stub.Stats(index_pb2.StatsRequest(), timeout=1.0).ready:
                        return time.perf_counter() - self.started
                except grpc.RpcError:
                    pass
                if self.child.popen.poll() is not None:
                    raise RuntimeError(f"{self.address} exited:\n{process.tail(self.child.log)}")
                if time.perf_counter() - self.started > READY_TIMEOUT_S:
                    raise RuntimeError(f"{self.address} not ready:\n{process.tail(self.child.log)}")
                time.sleep(POLL_S)

    def count(self) -> int:
        with grpc.insecure_channel(self.address) as channel:
            stats = index_pb2_grpc.IndexStub(channel).Stats(index_pb2.StatsRequest(), timeout=10)
        return sum(p.count for p in stats.partitions)


def _tree_lines() -> str:
    return "".join(
        f"T{t} > G{t}{g} > L{t}{g}{leaf}\n"
        for t in range(TOPS)
        for g in range(GROUPS)
        for leaf in range(LEAVES)
    )


def _seed(database: Path) -> None:
    """The generated tree, imported as one edit (what the seed command does)."""
    engine = make_engine(str(database))
    try:
        record = Record(sessionmaker(engine), partition_level=PARTITION_LEVEL)
        record.apply(ops.Import("lines", _tree_lines()), record.version, "bench")
    finally:
        engine.dispose()


def _leaves() -> list[str]:
    return [
        paths.join(f"T{t}", f"G{t}{g}", f"L{t}{g}{leaf}")
        for t in range(TOPS)
        for g in range(GROUPS)
        for leaf in range(LEAVES)
    ]


# --- data ------------------------------------------------------------------------------------


class _Vectors:
    """Unit vectors scattered around a few fixed centroids."""

    def __init__(self, dim: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.centroids = self.rng.normal(size=(CENTROIDS, dim)).astype(np.float32)

    def take(self, n: int) -> np.ndarray:
        picked = self.centroids[self.rng.integers(0, CENTROIDS, n)]
        noisy = picked + 0.4 * self.rng.normal(size=picked.shape).astype(np.float32)
        result: np.ndarray = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype("<f4")
        return result


def _items(
    vectors: _Vectors, prefix: str, start: int, n: int, leaves: Sequence[str]
) -> list[taxonomy_pb2.Item]:
    rows = vectors.take(n)
    return [
        taxonomy_pb2.Item(
            id=f"{prefix}-{start + i}",
            leaf=leaves[(start + i) % len(leaves)],
            leaf_source=taxonomy_pb2.LEAF_SOURCE_GIVEN,
            title=f"thing {start + i}",
            vector=rows[i].tobytes(),
            model_version=MODEL,
        )
        for i in range(n)
    ]


def _put(stub: taxonomy_pb2_grpc.TaxonomyStub, items: list[taxonomy_pb2.Item]) -> int:
    reply = stub.PutItems(taxonomy_pb2.PutItemsRequest(items=items), timeout=TIMEOUT)
    if reply.errors:
        raise RuntimeError(f"PutItems refused {len(reply.errors)}: {reply.errors[0]}")
    return int(reply.seq)


# --- 0. the shard-owned log of the old design ------------------------------------------------

OLD_SEED = """
import sys
from sqlalchemy.orm import sessionmaker
from taxonomy_svc import ops
from taxonomy_svc.db import make_engine
from taxonomy_svc.record import Record
engine = make_engine(sys.argv[1])
record = Record(sessionmaker(engine), partition_level=int(sys.argv[2]))
record.apply(ops.Import("lines", sys.argv[3]), record.version, "bench")
engine.dispose()
"""


@dataclass
class Old:
    rates: dict[int, list[float]]  # batch: items/s of each run
    ack_ms: list[float]  # single item: GetItems sent to the shard's Upsert answer
    stage_ms: dict[str, list[float]]  # single item: each call's round trip


class _OldMessages:
    """The old commit's messages, from its generated modules' serialized descriptors.

    They go into a descriptor pool of their own: HEAD's generated modules already hold files of
    the same names (and other contents) in the default pool, so the old modules cannot be
    imported beside them.
    """

    def __init__(self, tree: Path) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        for name in ("common", "index", "taxonomy"):
            self.pool.AddSerializedFile(_serialized(tree / f"protos/visualsearch/v1/{name}_pb2.py"))

    def __getattr__(self, name: str) -> Any:
        found = self.pool.FindMessageTypeByName(f"visualsearch.v1.{name}")
        return message_factory.GetMessageClass(found)


def _serialized(module: Path) -> bytes:
    """The FileDescriptorProto a generated module adds to the pool (its one bytes literal)."""
    for node in ast.walk(ast.parse(module.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "AddSerializedFile"
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    raise RuntimeError(f"{module}: no AddSerializedFile(b'...') found")


class _OldWriter:
    """What the old gateway did per batch below the embedding, against one old shard.

    GetItems (the items' shards before, for a move), PutItems without vectors, then Upsert of
    the vectors to the shard of their partitions, one call after another.
    """

    def __init__(self, messages: _OldMessages, taxonomy: grpc.Channel, index: grpc.Channel):
        self.m = messages
        self.get = self._call(taxonomy, "Taxonomy/GetItems", "GetItems")
        self.put = self._call(taxonomy, "Taxonomy/PutItems", "PutItems")
        self.upsert = self._call(index, "Index/Upsert", "Upsert")
        self.stage_ms: dict[str, list[float]] = {"GetItems": [], "PutItems": [], "Upsert": []}

    def _call(self, channel: grpc.Channel, method: str, name: str) -> grpc.UnaryUnaryMultiCallable:
        return channel.unary_unary(
            f"/visualsearch.v1.{method}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=getattr(self.m, f"{name}Response").FromString,
        )

    def write(self, items: list[taxonomy_pb2.Item], timed: bool = False) -> None:
        m = self.m
        marks = [time.perf_counter()]
        self.get(m.GetItemsRequest(ids=[item.id for item in items]), timeout=TIMEOUT)
        marks.append(time.perf_counter())
        old = [
            m.Item(id=i.id, leaf=i.leaf, leaf_source=i.leaf_source, title=i.title) for i in items
        ]
        reply = self.put(m.PutItemsRequest(items=old), timeout=TIMEOUT)
        if reply.errors:
            raise RuntimeError(f"old PutItems refused {len(reply.errors)}: {reply.errors[0]}")
        marks.append(time.perf_counter())
        vectors = [
            m.Vector(
                item_id=item.id,
                partition=paths.partition_of(leaf, PARTITION_LEVEL),
                leaf=leaf,
                vector=item.vector,
                model_version=item.model_version,
            )
            for item, leaf in zip(items, reply.leaves, strict=True)
        ]
        answer = self.upsert(m.UpsertRequest(vectors=vectors), timeout=TIMEOUT)
        if answer.errors or answer.upserted != len(items):
            raise RuntimeError(f"old Upsert: {answer.upserted} of {len(items)}, {answer.errors}")
        marks.append(time.perf_counter())
        if timed:
            for stage, start, end in zip(self.stage_ms, marks[:-1], marks[1:], strict=True):
                self.stage_ms[stage].append((end - start) * 1e3)


def _bench_old(cluster: _Cluster, args: argparse.Namespace) -> Old:
    """The old taxonomy and one old shard, from `git archive` of args.old_commit."""
    tree = cluster.folder / "old-tree"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", args.old_commit],
        cwd=process.ROOT, check=True, capture_output=True,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    database = cluster.folder / "old-taxonomy.sqlite"
    subprocess.run(
        [sys.executable, "-c", OLD_SEED, str(database), str(PARTITION_LEVEL), _tree_lines()],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True,
    )  # fmt: skip
    taxonomy_port, shard_port = process.free_ports(2)
    env = cluster.env(
        VS_TAXONOMY_PORT=str(taxonomy_port),
        VS_TAXONOMY_DATABASE=str(database),
        VS_INDEX_PORTS=str(shard_port),
        VS_INDEX_DATA_DIR=str(cluster.folder / "old-shards"),
    )
    children = [
        _spawn_old(cluster, tree, "taxonomy_svc.server", [], "old-taxonomy.log", env),
        _spawn_old(cluster, tree, "index_svc.server", ["--shard", "0"], "old-shard.log", env),
    ]
    addresses = [f"127.0.0.1:{taxonomy_port}", f"127.0.0.1:{shard_port}"]
    try:
        for child, address in zip(children, addresses, strict=True):
            process.wait_serving(address, child.popen, child.log, time.monotonic() + TIMEOUT)
        with (
            grpc.insecure_channel(addresses[0], options=channel_options()) as taxonomy,
            grpc.insecure_channel(addresses[1], options=channel_options()) as index,
        ):
            writer = _OldWriter(_OldMessages(tree), taxonomy, index)
            vectors, leaves = _Vectors(args.dim, args.seed), _leaves()
            writer.write(_items(vectors, "old-warm", 0, 64, leaves))
            result = Old({}, [], writer.stage_ms)
            for batch in BATCHES:
                result.rates[batch] = _batch_rates(
                    f"OLD GetItems+PutItems+Upsert x{batch}",
                    _calls(vectors, "old-b", batch, args.items, leaves),
                    writer.write,
                )

            def write(n: int) -> None:
                items = _items(vectors, "old-one", n, 1, leaves)
                sent = time.perf_counter()
                writer.write(items, timed=True)
                result.ack_ms.append((time.perf_counter() - sent) * 1e3)

            _steady(args, "OLD single-item writes", write)
    finally:
        for child in reversed(children):
            cluster.stop(child)
    return result


def _spawn_old(
    cluster: _Cluster, tree: Path, module: str, args: Sequence[str], log: str, env: dict[str, str]
) -> Child:
    """process.spawn, but in the old tree: its code, its stubs, its working directory."""
    environment = {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1", **env}
    with (cluster.folder / log).open("ab") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=tree,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    cluster.children.append(child)
    return Child(child, cluster.folder / log)


# --- 1. ingest -------------------------------------------------------------------------------


@dataclass
class Ingest:
    rates: dict[tuple[str, int], list[float]]  # (synchronous, batch): items/s of each run
    put_ms: dict[str, list[float]]  # synchronous: single-item PutItems round trips
    visible_ms: dict[str, list[float]]  # synchronous: PutItems answer to Stats(min_seq)
    tree_ms: list[float]  # GetTree(version_only) round trips
    stats_ms: list[float]  # Index Stats() round trips


def _bench_ingest(cluster: _Cluster, args: argparse.Namespace) -> Ingest:
    vectors, leaves = _Vectors(args.dim, args.seed), _leaves()
    result = Ingest({}, {}, {}, [], [])
    for synchronous in SETTINGS:
        with cluster.taxonomy(f"ingest-{synchronous.lower()}", synchronous) as taxonomy:
            stub = taxonomy.stub
            _put(stub, _items(vectors, "warm", 0, 64, leaves))
            result.tree_ms += _round_trips(
                partial(stub.GetTree, taxonomy_pb2.GetTreeRequest(version_only=True), timeout=10),
                100,
            )
            for batch in BATCHES:
                result.rates[(synchronous, batch)] = _batch_rates(
                    f"{synchronous} PutItems x{batch}",
                    _calls(vectors, "b", batch, args.items, leaves),
                    partial(_put, stub),
                )
            put_ms, visible_ms, stats_ms = _searchable(cluster, taxonomy, vectors, args)
            result.put_ms[synchronous], result.visible_ms[synchronous] = put_ms, visible_ms
            result.stats_ms += stats_ms
    return result


def _searchable(
    cluster: _Cluster, taxonomy: Taxonomy, vectors: _Vectors, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float]]:
    """Single-item PutItems at a steady rate, each answer's seq awaited on a following shard."""
    (port,) = process.free_ports()
    data = f"follow-{taxonomy.port}"
    shard = cluster.shard(taxonomy.port, [port], 0, data)
    try:
        shard.wait_ready()
        leaves, put_ms, visible_ms = _leaves(), [], []
        with grpc.insecure_channel(shard.address) as channel:
            index = index_pb2_grpc.IndexStub(channel)
            stats_ms = _round_trips(lambda: index.Stats(index_pb2.StatsRequest(), timeout=10), 100)

            def write(n: int) -> None:
                items = _items(vectors, f"one-{taxonomy.port}", n, 1, leaves)
                sent = time.perf_counter()
                seq = _put(taxonomy.stub, items)
                answered = time.perf_counter()
                index.Stats(index_pb2.StatsRequest(min_seq=seq), timeout=30)
                seen = time.perf_counter()
                put_ms.append((answered - sent) * 1e3)
                visible_ms.append((seen - answered) * 1e3)

            _steady(args, "single-item writes", write)
    finally:
        cluster.stop(shard.child)
    return put_ms, visible_ms, stats_ms


def _calls(
    vectors: _Vectors, prefix: str, batch: int, items: int, leaves: Sequence[str]
) -> list[list[list[taxonomy_pb2.Item]]]:
    """RUNS runs of whole calls of `batch` items, about `items` in all (rounded up)."""
    per_run = max(1, -(-items // RUNS // batch))
    return [
        [
            _items(vectors, f"{prefix}{batch}-r{run}", c * batch, batch, leaves)
            for c in range(per_run)
        ]
        for run in range(RUNS)
    ]


def _batch_rates(
    desc: str,
    runs: list[list[list[taxonomy_pb2.Item]]],
    write: Callable[[list[taxonomy_pb2.Item]], object],
) -> list[float]:
    """Items/s of each run of calls, each call written (and answered) before the next."""
    rates = []
    for calls in progress(runs, desc=desc, unit="run"):
        start = time.perf_counter()
        for items in calls:
            write(items)
        rates.append(sum(map(len, calls)) / (time.perf_counter() - start))
    return rates


def _steady(args: argparse.Namespace, desc: str, write: Callable[[int], None]) -> None:
    """Calls write(0 .. args.writes - 1) at args.rate a second (late ones go at once)."""
    begin = time.perf_counter()
    for n in progress(range(args.writes), desc=desc, unit="write"):
        time.sleep(max(0.0, begin + n / args.rate - time.perf_counter()))
        write(n)


def _round_trips(call: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n + 10):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return times[10:]


# --- 2. rebuild ------------------------------------------------------------------------------


@dataclass
class Rebuild:
    size: int
    load_rate: float  # items/s of the big PutItems batches
    scan_s: list[float]
    restore_s: list[float]
    counts: tuple[int, int]  # vectors held after the build and after the restore
    import_s: list[float]  # interpreter start and import of index_svc.server


@dataclass
class Search:
    one: list[float]  # queries/s of each run against one shard
    two: list[float]  # against two replicas
    size: int


def _bench_rebuild(
    cluster: _Cluster, args: argparse.Namespace, size: int, search: bool
) -> tuple[Rebuild, Search | None]:
    vectors = _Vectors(args.dim, args.seed + size)
    with cluster.taxonomy(f"rebuild-{size}", "NORMAL") as taxonomy:
        leaf = paths.join("T0", "G00", "L000")
        partition = taxonomy.partitions[paths.join("T0", "G00")]
        start = time.perf_counter()
        with progress(total=size, desc=f"loading {size:,} items", unit="item") as bar:
            for first in range(0, size, LOAD_BATCH):
                n = min(LOAD_BATCH, size - first)
                _put(taxonomy.stub, _items(vectors, "p", first, n, [leaf]))
                bar.update(n)
        load_rate = size / (time.perf_counter() - start)
        result = Rebuild(size, load_rate, [], [], (0, 0), _import_times(args.repeats))
        (port,) = process.free_ports()
        for _ in progress(range(args.repeats), desc=f"rebuilds of {size:,}", unit="run"):
            data = f"rebuild-{size}"
            shutil.rmtree(cluster.folder / data, ignore_errors=True)
            built = cluster.shard(taxonomy.port, [port], 0, data)
            result.scan_s.append(built.wait_ready())
            counts = [built.count()]
            cluster.stop(built.child)  # SIGTERM: a last snapshot if anything came after the build's
            restored = cluster.shard(taxonomy.port, [port], 0, data)
            result.restore_s.append(restored.wait_ready())
            counts.append(restored.count())
            cluster.stop(restored.child)
            result.counts = (counts[0], counts[1])
        found = _bench_search(cluster, taxonomy, partition, vectors, args, size) if search else None
    return result, found


def _import_times(n: int) -> list[float]:
    """Seconds for a fresh interpreter to import the shard's server: the fixed start cost."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import index_svc.server"], check=True, cwd=process.ROOT
        )
        times.append(time.perf_counter() - start)
    return times


# --- 3. search -------------------------------------------------------------------------------


def _bench_search(
    cluster: _Cluster,
    taxonomy: Taxonomy,
    partition: str,
    vectors: _Vectors,
    args: argparse.Namespace,
    size: int,
) -> Search:
    """One shard and a pair of replicas, all three running; their runs alternate."""
    ports = process.free_ports(3)
    shards = [
        cluster.shard(taxonomy.port, ports[:1], 0, "search-one"),
        cluster.shard(taxonomy.port, ports[1:], 0, "search-two-0"),
        cluster.shard(taxonomy.port, ports[1:], 1, "search-two-1"),
    ]
    try:
        for shard in shards:
            shard.wait_ready()
            if shard.count() != size:
                raise RuntimeError(f"{shard.address} holds {shard.count()}, not {size}")
        queries = [row.tobytes() for row in vectors.take(64)]
        result = Search([], [], size)
        for _ in progress(range(args.repeats), desc="search runs", unit="run"):
            for kept, addresses in ((result.one, [shards[0].address]),
                                    (result.two, [s.address for s in shards[1:]])):  # fmt: skip
                kept.append(asyncio.run(_queries(addresses, partition, queries, args)))
    finally:
        for shard in shards:
            cluster.stop(shard.child)
    return result


async def _queries(
    addresses: list[str], partition: str, queries: list[bytes], args: argparse.Namespace
) -> float:
    """Queries/s of `args.clients` concurrent callers over `args.seconds`, after a warm-up."""
    channels = [grpc.aio.insecure_channel(a, options=channel_options()) for a in addresses]
    stubs = [index_pb2_grpc.IndexStub(c) for c in channels]
    done = 0
    warm_until = time.perf_counter() + 0.5
    until = warm_until + args.seconds

    async def client(number: int) -> None:
        nonlocal done
        n = number
        while (now := time.perf_counter()) < until:
            request = index_pb2.SearchVectorsRequest(
                query=queries[n % len(queries)], partitions=[partition], k=10
            )
            reply = await stubs[n % len(stubs)].SearchVectors(request, timeout=10)
            if reply.missing_partitions:
                raise RuntimeError(f"partition {partition} is missing")
            done += now >= warm_until
            n += 1

    try:
        await asyncio.gather(*(client(i) for i in range(args.clients)))
    finally:
        for channel in channels:
            await channel.close(None)
    return done / args.seconds


# --- tables ----------------------------------------------------------------------------------


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title)
    for n, column in enumerate(columns):
        table.add_column(column, justify="left" if n == 0 else "right")
    return table


def _print_old(
    console: Console, old: Old, ingest: Ingest, args: argparse.Namespace, cmd: str
) -> None:
    table = _table(
        "0. Write path below the gateway: shard-owned log (old) vs the record (medians; "
        "latencies p50 / p99 in ms)",
        ("figure", f"old ({args.old_commit})", "record, FULL", "record, NORMAL", "FULL/old"),
    )
    for batch in BATCHES:
        before = statistics.median(old.rates[batch])
        full, normal = (statistics.median(ingest.rates[(s, batch)]) for s in SETTINGS)
        table.add_row(
            f"x{batch} items/s", f"{before:,.0f}", f"{full:,.0f}", f"{normal:,.0f}",
            f"{full / before:.2f}",
        )  # fmt: skip
    searchable = {
        s: [a + b for a, b in zip(ingest.put_ms[s], ingest.visible_ms[s], strict=True)]
        for s in SETTINGS
    }
    for name, figures in (
        ("x1 write to acknowledged", ingest.put_ms),
        ("x1 write to applied on a shard", searchable),
    ):
        table.add_row(
            name, _p50_p99(old.ack_ms), _p50_p99(figures["FULL"]), _p50_p99(figures["NORMAL"]),
            f"{statistics.median(figures['FULL']) / statistics.median(old.ack_ms):.2f}",
        )  # fmt: skip
    stages = " + ".join(f"{statistics.median(ms):.2f}" for ms in old.stage_ms.values())
    table.add_row(f"old x1: {' + '.join(old.stage_ms)}", stages, "", "", "")
    console.print(table)
    console.print(
        f"command: {cmd}\n"
        "what is timed: the write path below the gateway, called directly; the encoder's "
        "embedding is the same in both designs and left out (the vectors are generated "
        "beforehand), and so is the gateway's own work. old: the services of "
        f"{args.old_commit} (git archive, their own stubs; called with that commit's messages), "
        "one shard holding every partition; per call, as the old gateway did one after another: "
        "GetItems (included: the old gateway read the items' shards before the write), "
        "PutItems without vectors (its SQLite hard-wired to synchronous=NORMAL), then Upsert, "
        "acknowledged once the shard's log is fsynced, so an acknowledged write was already "
        "searchable there: its 'applied' is its acknowledgement. record: part 1's figures "
        "(PutItems with vector and model_version, one commit); applied: from the write's "
        "start until a following shard's Stats(min_seq=seq) returns, one more round trip "
        "(ref in part 1). "
        f"batches: {args.items:,} items per batch size in {RUNS} timed runs (median), dim "
        f"{args.dim}; single items: {args.writes} at {args.rate:g}/s, old run before the "
        f"record's\n{CORES_NOTE}",
        highlight=False,
    )


def _print_ingest(console: Console, ingest: Ingest, args: argparse.Namespace, cmd: str) -> None:
    ref = statistics.median(ingest.tree_ms)
    table = _table(
        "1. Ingest into the record (medians; latencies p50 / p99 in ms)",
        ("figure", "synchronous=FULL", "synchronous=NORMAL", "NORMAL/FULL", "FULL / ref"),
    )
    for batch in BATCHES:
        full = statistics.median(ingest.rates[("FULL", batch)])
        normal = statistics.median(ingest.rates[("NORMAL", batch)])
        per_item_ms = 1e3 / full
        table.add_row(
            f"PutItems x{batch}, items/s", f"{full:,.0f}", f"{normal:,.0f}",
            f"{normal / full:.2f}", f"{per_item_ms / ref:.2f} per item",
        )  # fmt: skip
    for name, figures in (
        ("PutItems x1 round trip", ingest.put_ms),
        ("answer -> shard Stats(min_seq)", ingest.visible_ms),
    ):
        high, low = figures["FULL"], figures["NORMAL"]
        table.add_row(
            name, _p50_p99(high), _p50_p99(low),
            f"{statistics.median(low) / statistics.median(high):.2f}",
            f"{statistics.median(high) / ref:.1f}",
        )  # fmt: skip
    table.add_row("ref: GetTree(version_only)", f"{ref:.2f}", "", "", "1.0")
    table.add_row(
        "ref: Index Stats()", f"{statistics.median(ingest.stats_ms):.2f}", "", "",
        f"{statistics.median(ingest.stats_ms) / ref:.1f}",
    )  # fmt: skip
    console.print(table)
    console.print(
        f"command: {cmd}\n"
        f"batches: {args.items:,} items per batch size and setting in {RUNS} timed runs (median), "
        f"dim {args.dim}, a new taxonomy server and database per setting; single-item writes: "
        f"{args.writes} at {args.rate:g}/s, each answer's seq awaited with Stats(min_seq) on "
        f"a shard following that server's feed; ref: median round trip of 100 calls\n"
        f"{CORES_NOTE}",
        highlight=False,
    )


def _print_rebuild(
    console: Console, rebuilds: list[Rebuild], args: argparse.Namespace, cmd: str
) -> None:
    table = _table(
        "2. Shard rebuild: process start to ready, s (median of runs)",
        ("partition", "load items/s", "from scan", "from snapshot", "snapshot/scan",
         "ref: import", "vectors"),
    )  # fmt: skip
    for r in rebuilds:
        scan, restore = statistics.median(r.scan_s), statistics.median(r.restore_s)
        table.add_row(
            f"{r.size:,} x {args.dim}", f"{r.load_rate:,.0f}",
            f"{scan:.2f} ({min(r.scan_s):.2f}-{max(r.scan_s):.2f})",
            f"{restore:.2f} ({min(r.restore_s):.2f}-{max(r.restore_s):.2f})",
            f"{restore / scan:.2f}", f"{statistics.median(r.import_s):.2f}",
            f"{r.counts[0]:,} / {r.counts[1]:,}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"command: {cmd}\n"
        f"{args.repeats} runs: a shard on a fresh folder builds its one partition from the "
        "record's Scan (and writes a snapshot), is stopped with SIGTERM, and starts again from "
        "that snapshot; ready: polled with Index.Stats every 25 ms; load: PutItems of "
        f"{LOAD_BATCH:,} items (synchronous=NORMAL); ref: `python -c 'import index_svc.server'`"
        f", the fixed cost of any start\n{CORES_NOTE}",
        highlight=False,
    )


def _print_search(console: Console, search: Search, args: argparse.Namespace, cmd: str) -> None:
    one = statistics.median(search.one)
    table = _table(
        f"3. SearchVectors, {args.clients} concurrent clients, k=10, one partition of "
        f"{search.size:,}",
        ("shards", "queries/s median", "runs", "vs one shard"),
    )
    for name, runs in (("one shard", search.one), ("two replicas, round-robin", search.two)):
        median = statistics.median(runs)
        table.add_row(
            name, f"{median:,.0f}", ", ".join(f"{r:,.0f}" for r in runs), f"{median / one:.2f}"
        )
    console.print(table)
    console.print(
        f"command: {cmd}\n"
        f"{args.repeats} runs of {args.seconds:g}s each after 0.5s of warm-up, the two set-ups "
        "alternating while all three shards run; clients: asyncio in this process\n"
        f"{CORES_NOTE}",
        highlight=False,
    )


def _p50_p99(values: list[float]) -> str:
    p99 = statistics.quantiles(values, n=100)[-1] if len(values) > 1 else values[0]
    return f"{statistics.median(values):.2f} / {p99:.2f}"


if __name__ == "__main__":
    main()
