"""The gateway under load: saturation throughput, p99 at 70% of it, its own overhead, and one
gateway process against two.

    python -m infra.bench_gateway [--catalog DIR] [--items 1000] [--users 1 2 4 8 16 32]
        [--step 10s] [--paced 20s] [--probes 200] [--out var/bench/gateway]

Starts the cluster on the catalog (the generated one by default) in a scratch copy of its
workspace (the record copied, the model shared, fresh shards; the workspace itself is left as
it was), loads --items of its items, then in one run:

- saturation: SimilarProducts and SearchByImage each at 1, 2, 4, ... callers for --step, until
  two steps in a row add less than 5% to the best calls/s; the best is the saturation
  throughput;
- p99 at 70% of it: a paced run at 0.7 x saturation for --paced (target: p99 <= 2 x p50);
- overhead: --probes SearchByImage calls by one caller, each followed by the same image's Embed
  on the encoder and the search's SearchVectors on each shard asked (the vector and the
  partitions the gateway searched, as many candidates); end-to-end p50 minus the p50s of
  Embed and of the slowest shard's call (target: <= 10% of Embed's p50);
- the saturation again with two gateway processes, the callers spread over both.

Load comes from `python -m infra.load` (Locust), one run per step; each run's JSON and HTML
report stay under --out/runs/. Prints a table and writes --out/summary.json. A benchmark, not
a test: it asserts nothing.
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc

from catalog.generate import generate
from catalog.items import Catalog, open_catalog
from common import config as cluster_config
from common.config import ClusterConfig
from gateway.clients import Cluster
from infra import cluster, process, workspace
from infra.ingest import ingest_catalog
from infra.load_plan import parse_duration, sample
from protos.visualsearch.v1 import (
    encoder_pb2,
    encoder_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    index_pb2,
    index_pb2_grpc,
    taxonomy_pb2,
    taxonomy_pb2_grpc,
)

KINDS = {"SimilarProducts": "similar=1", "SearchByImage": "search=1"}
GROWTH = 1.05  # a step that adds less than this to the best calls/s so far ends the sweep
PACED_SHARE = 0.7
CALL_S = 10.0
T = TypeVar("T")


def main() -> None:
    args = _arguments()
    catalog_dir = args.catalog.resolve() if args.catalog else generate(workspace.GENERATED)
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        _cluster(catalog_dir, args.out / "cluster") as config,
        open_catalog(catalog_dir) as catalog,
    ):
        gateway = config.address(config.gateway.port)
        _load_items(gateway, catalog, args.items)
        bench = _Bench(args, catalog_dir, args.out / "runs")
        bench.run("warm", [gateway], "search=1,similar=1", ["--users", "4", "--duration", "3s"])
        figures: dict[str, Any] = {"catalog": str(catalog_dir), "items": args.items}
        figures["saturation"] = {kind: bench.sweep(kind, [gateway]) for kind in KINDS}
        figures["paced"] = {
            kind: bench.paced(kind, [gateway], figures["saturation"][kind]) for kind in KINDS
        }
        figures["overhead"] = _overhead(config, catalog, args.items, args.probes)
        with _second_gateway(args.out / "cluster") as second:
            figures["two_gateways"] = {kind: bench.sweep(kind, [gateway, second]) for kind in KINDS}
    (args.out / "summary.json").write_text(json.dumps(figures, indent=2) + "\n")
    _print(figures)
    written = [args.out / "summary.json", *_plot(figures, args.out / "saturation.png")]
    print(f"\nwritten: {', '.join(map(str, written))}; load reports under {args.out / 'runs'}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: the generated one)")
    parser.add_argument("--items", type=int, default=1000, help="catalog items loaded and sent")
    parser.add_argument(
        "--users", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32], help="callers per step"
    )
    parser.add_argument("--step", type=parse_duration, default=10.0, help="length of a step")
    parser.add_argument("--paced", type=parse_duration, default=20.0, help="the paced run's length")
    parser.add_argument("--probes", type=int, default=200, help="calls measuring the overhead")
    parser.add_argument("--out", type=Path, default=workspace.ROOT / "var" / "bench" / "gateway")
    return parser.parse_args()


@contextmanager
def _cluster(catalog_dir: Path, scratch: Path) -> Iterator[ClusterConfig]:
    """The cluster on free loopback ports, its state in `scratch`; always stopped."""
    source = workspace.workdir_for(catalog_dir)
    workspace.seed(catalog_dir, source)
    if not workspace.has_model(source):
        workspace.train(catalog_dir, source)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    settings = workspace.overrides(scratch)
    shutil.copy(
        workspace.overrides(source)["VS_TAXONOMY_DATABASE"], settings["VS_TAXONOMY_DATABASE"]
    )
    gateway, encoder, taxonomy, *shards = process.free_ports(5)
    os.environ.update(
        {
            **settings,
            "VS_ENCODER_MODELS_DIR": workspace.overrides(source)["VS_ENCODER_MODELS_DIR"],
            "VS_GATEWAY_PORT": str(gateway),
            "VS_ENCODER_PORTS": str(encoder),
            "VS_TAXONOMY_PORT": str(taxonomy),
            "VS_INDEX_PORTS": ",".join(map(str, shards)),
            "VS_ENCODER_RELOAD_S": "0",
            "VS_GRACE_S": "2",
        }
    )
    config = cluster_config.load()
    print(f"starting the cluster in {scratch} ...", flush=True)
    cluster.up(config)
    try:
        yield config
    finally:
        cluster.down(config)


@contextmanager
def _second_gateway(scratch: Path) -> Iterator[str]:
    """Another gateway process beside the cluster's, on its own port; always stopped."""
    (port,) = process.free_ports()
    config = cluster_config.load()
    address = config.address(port)
    log = scratch / "run" / "gateway-2.log"
    server = process.start("gateway.server", [], address, log, {"VS_GATEWAY_PORT": str(port)})
    try:
        yield address
    finally:
        process.stop(server, grace_s=config.grace_s + 5)


def _load_items(gateway: str, catalog: Catalog, items: int) -> None:
    with grpc.insecure_channel(gateway) as channel:
        stub = gateway_pb2_grpc.VisualSearchStub(channel)
        chosen = sample(catalog.items, items)
        loaded, errors = ingest_catalog(stub, catalog, chosen)
    if errors:
        raise SystemExit(f"{len(errors)} of {len(chosen)} items refused, first: {errors[0]}")
    print(f"loaded {loaded} items", flush=True)


class _Bench:
    """Runs the load generator and reads what it wrote."""

    def __init__(self, args: argparse.Namespace, catalog_dir: Path, runs: Path) -> None:
        self._args, self._catalog, self._runs = args, catalog_dir, runs

    def run(self, name: str, targets: Sequence[str], mix: str, pace: list[str]) -> dict[str, Any]:
        """One load run; its summary.json."""
        out = self._runs / name
        command = [sys.executable, "-m", "infra.load", "--target", ",".join(targets)]
        command += ["--mix", mix, *pace, "--out", str(out), "--catalog", str(self._catalog)]
        command += ["--items", str(self._args.items)]
        print(f"$ python -m infra.load {' '.join(command[3:])}", flush=True)
        subprocess.run(command, check=True, cwd=workspace.ROOT, stdout=subprocess.DEVNULL)
        summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
        return summary

    def sweep(self, kind: str, targets: Sequence[str]) -> dict[str, Any]:
        """Calls/s at each step of callers until two steps in a row add too little (one such
        step may be noise on a shared machine); the best step."""
        steps: list[dict[str, Any]] = []
        stalled = 0
        for users in self._args.users:
            step = f"{kind}-{len(targets)}gw-{users}u"
            pace = ["--users", str(users), "--duration", f"{self._args.step}s"]
            total = self.run(step, targets, KINDS[kind], pace)["total"]
            steps.append({"users": users, **total})
            best = max(steps[:-1], key=lambda s: s["per_s"], default=None)
            grew = best is None or total["per_s"] >= GROWTH * best["per_s"]
            stalled = 0 if grew else stalled + 1
            if stalled == 2:
                break
        top = max(steps, key=lambda s: s["per_s"])
        return {"per_s": top["per_s"], "users": top["users"], "steps": steps}

    def paced(
        self, kind: str, targets: Sequence[str], saturation: dict[str, Any]
    ) -> dict[str, Any]:
        """A run at 70% of the saturation throughput, twice the saturating callers sharing it."""
        rate = PACED_SHARE * saturation["per_s"]
        pace = ["--rate", f"{rate:.2f}", "--users", str(2 * saturation["users"])]
        total = self.run(
            f"{kind}-paced", targets, KINDS[kind], [*pace, "--duration", f"{self._args.paced}s"]
        )
        figures = total["total"]
        p50, p99 = figures["p50_ms"], figures["p99_ms"]
        return {"rate": rate, **figures, "p99_over_p50": p99 / p50 if p50 and p99 else None}


def _overhead(config: ClusterConfig, catalog: Catalog, items: int, probes: int) -> dict[str, float]:
    """Per probe image, one after another by one caller: SearchByImage on the gateway, then the
    calls it makes, made directly (Embed, SearchVectors on each shard it asked, Rerank); the
    p50 of each in ms, and the gateway's own share as the issue defines it."""
    chosen = sample(catalog.items, min(items, probes))
    images = [catalog.image_bytes(item.id) for item in chosen]
    times: dict[str, list[float]] = {}
    with _Probe(config) as probe:
        for n in range(probes):
            for name, seconds in probe.measure(images[n % len(images)]).items():
                times.setdefault(name, []).append(seconds)
    p50 = {name: 1000 * statistics.median(values) for name, values in times.items()}
    p50["overhead"] = p50["end_to_end"] - p50["embed"] - p50["slowest_shard"]
    p50["overhead_share_of_embed"] = p50["overhead"] / p50["embed"]
    p50["beyond_its_calls"] = p50["overhead"] - p50["rerank"]
    return p50


class _Probe:
    """Plain gRPC stubs of the gateway and of the services it calls, for one caller's timings."""

    def __init__(self, config: ClusterConfig) -> None:
        self._tree = asyncio.run(_tree(config))
        self._candidates = config.gateway.candidates
        gateway, encoder = config.address(config.gateway.port), config.encoder_addresses[0]
        taxonomy = config.address(config.taxonomy.port)
        addresses = (gateway, encoder, taxonomy, *config.shard_addresses)
        self._channels = {address: grpc.insecure_channel(address) for address in addresses}
        self._gateway = gateway_pb2_grpc.VisualSearchStub(self._channels[gateway])
        self._encoder = encoder_pb2_grpc.EncoderStub(self._channels[encoder])
        self._taxonomy = taxonomy_pb2_grpc.TaxonomyStub(self._channels[taxonomy])
        self._shards = {a: index_pb2_grpc.IndexStub(self._channels[a]) for a in addresses[3:]}

    def __enter__(self) -> "_Probe":
        return self

    def __exit__(self, *_: object) -> None:
        for channel in self._channels.values():
            channel.close()

    def measure(self, image: bytes) -> dict[str, float]:
        """Seconds of each call for one image: end to end, then its parts."""
        search = gateway_pb2.SearchByImageRequest(image=image)
        answer, end_to_end = _timed(self._gateway.SearchByImage, search)
        embedded, embed = _timed(self._encoder.Embed, encoder_pb2.EmbedRequest(images=[image]))
        embedding = embedded.results[0].embedding
        neighbours, slowest = [], 0.0
        for shard, partitions in self._asked(answer.partitions).items():
            request = index_pb2.SearchVectorsRequest(
                query=embedding.vector, partitions=partitions, k=self._candidates
            )
            found, seconds = _timed(self._shards[shard].SearchVectors, request)
            neighbours.extend(found.neighbors)
            slowest = max(slowest, seconds)
        rerank = taxonomy_pb2.RerankRequest(
            query_leaves=embedding.leaves,
            candidates=[
                taxonomy_pb2.Candidate(item_id=n.item_id, score=n.score, leaf=n.leaf)
                for n in neighbours
            ],
            k=len(answer.results),
        )
        _, reranked = _timed(self._taxonomy.Rerank, rerank)
        return {
            "end_to_end": end_to_end,
            "embed": embed,
            "slowest_shard": slowest,
            "rerank": reranked,
        }

    def _asked(self, paths: Sequence[str]) -> dict[str, list[str]]:
        """The partitions searched (by path) as the shard the gateway asks first for each."""
        asked: dict[str, list[str]] = {}
        for path in paths:
            partition = str(self._tree.ids[path])
            asked.setdefault(self._tree.routes.serving(partition)[0], []).append(partition)
        return asked


def _timed(method: Callable[..., T], request: object) -> tuple[T, float]:
    started = time.perf_counter()
    answer = method(request, timeout=CALL_S)
    return answer, time.perf_counter() - started


async def _tree(config: ClusterConfig) -> Any:
    """The gateway's view of the tree: partition ids by path and the shards serving each."""
    clients = Cluster(config)
    try:
        return await clients.tree(CALL_S)
    finally:
        await clients.close()


ROWS = (  # label, section of the figures, field, format
    ("saturation, 1 gateway: calls/s", "saturation", "per_s", "{:16.1f}"),
    ("  at callers", "saturation", "users", "{:16d}"),
    ("saturation, 2 gateways: calls/s", "two_gateways", "per_s", "{:16.1f}"),
    ("  at callers", "two_gateways", "users", "{:16d}"),
    ("paced at 70%: calls/s", "paced", "per_s", "{:16.1f}"),
    ("  p50 ms", "paced", "p50_ms", "{:16.1f}"),
    ("  p99 ms", "paced", "p99_ms", "{:16.1f}"),
    ("  p99 / p50 (target <= 2)", "paced", "p99_over_p50", "{:16.2f}"),
)


def _print(figures: dict[str, Any]) -> None:
    print(f"\n{'':34s} {'SimilarProducts':>16s} {'SearchByImage':>16s}")
    for label, section, field, form in ROWS:
        values = [figures[section][kind][field] for kind in KINDS]
        cells = [f"{'-':>16s}" if value is None else form.format(value) for value in values]
        print(f"{label:34s} " + " ".join(cells))
    o = figures["overhead"]
    print(
        f"\nSearchByImage by one caller, p50: end to end {o['end_to_end']:.2f} ms, Embed "
        f"{o['embed']:.2f} ms, slowest shard {o['slowest_shard']:.2f} ms; the gateway's own "
        f"{o['overhead']:.2f} ms = {100 * o['overhead_share_of_embed']:.0f}% of Embed "
        "(target <= 10%)"
    )
    print(
        f"  of which Rerank on the taxonomy {o['rerank']:.2f} ms; the gateway beyond its calls "
        f"{o['beyond_its_calls']:.2f} ms"
    )


def _plot(figures: dict[str, Any], file: Path) -> list[Path]:
    """Calls/s and p50 against callers, per call and gateway count; none without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot")
        return []
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, (rate, latency) = plt.subplots(1, 2, figsize=(11, 4.5))
    for section, style in (("saturation", "-o"), ("two_gateways", "--x")):
        for kind in KINDS:
            steps = figures[section][kind]["steps"]
            users = [step["users"] for step in steps]
            label = f"{kind}, {'1 gateway' if section == 'saturation' else '2 gateways'}"
            rate.plot(users, [step["per_s"] for step in steps], style, label=label)
            latency.plot(users, [step["p50_ms"] for step in steps], style, label=label)
    for axis, title in ((rate, "calls/s"), (latency, "p50 latency, ms")):
        axis.set_xscale("log", base=2)
        axis.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:g}"))
        axis.set_xlabel("concurrent callers")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    rate.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(file, dpi=110)
    plt.close(figure)
    return [file]


if __name__ == "__main__":
    main()
