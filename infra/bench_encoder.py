"""Embed over encoder replicas: throughput and one caller's latency, beside in-process onnxruntime.

    python -m infra.bench_encoder [--catalog DIR] [--version-dir DIR] [--replicas 1 2 4]
        [--call-images 1 8 64] [--clients 16] [--runs 3] [--seconds 2.0]
        [--latency-calls 200] [--threads N] [--out var/bench/encoder]

For each count of encoder processes (real servers, each `--replica N` of free loopback ports,
its batch runners on cores / (runners x replicas) onnxruntime threads each, as the server's
default shares the cores), --clients concurrent callers on one round_robin channel over them
all (the gateway's channel) measure images/s at each images-per-call size, and in the same
run in-process onnxruntime fp32 at that batch size by one caller on --threads threads. Then
one caller's p50 latency: Embed of one image, GetModel (no model run) and, in-process, the
model at batch 1 and decode + model of one image. Every figure is the median of --runs runs;
a ratio is the median of the runs' ratios. Prints a table and writes JSON to --out. A
benchmark, not a test: it asserts nothing.
"""

import argparse
import asyncio
import datetime
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from catalog.generate import generate
from common import clients
from common import config as cluster_config
from encoder_svc.preprocess import Limits, decode, normalise
from encoder_svc.registry import ModelMeta
from encoder_svc.runtime import Encoder
from encoder_svc.server import threads_per_runner
from infra import workspace
from infra.encoder_harness import (
    catalog_images,
    current_version,
    embed_rate,
    embed_requests,
    encoder_servers,
    images_per_s,
)
from infra.stats import median_ratio
from protos.visualsearch.v1 import encoder_pb2, encoder_pb2_grpc

TIMEOUT_S = 30.0
Figures = dict[str, list[float]]  # "rpc 8", "in-process 8", "p50 embed", ...: one per run


def main() -> None:
    args = _arguments()
    catalog_dir = args.catalog.resolve() if args.catalog else generate(workspace.GENERATED)
    version_dir = args.version_dir.resolve() if args.version_dir else current_version(catalog_dir)
    meta = ModelMeta.load(version_dir)
    encoded, inputs = catalog_images(catalog_dir, meta, max(args.call_images))
    fp32 = Encoder.load(version_dir, args.threads, "fp32")
    runners = cluster_config.load().encoder.batch_runners
    print(f"model {meta.version} from {version_dir}; images from {catalog_dir}")
    results: dict[int, Figures] = {}
    for replicas in args.replicas:
        threads = _server_threads(args.threads, replicas)
        print(f"{replicas} encoder process(es), {runners} runners of {threads} threads each ...")
        with encoder_servers(version_dir, threads, max(args.call_images), replicas) as addresses:
            results[replicas] = asyncio.run(_measure(addresses, fp32, encoded, inputs, args))
    _print(results, args)
    path = _write(results, args, meta.version)
    print(f"\nwritten: {path}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: the generated one)")
    parser.add_argument(
        "--version-dir", type=Path, help="model version (default: the catalog's current one)"
    )
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--call-images", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--clients", type=int, default=16, help="concurrent Embed callers")
    parser.add_argument("--runs", type=int, default=3, help="runs of which medians are shown")
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="each throughput figure's measuring time"
    )
    parser.add_argument("--latency-calls", type=int, default=200, help="calls timed per run")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="in-process onnxruntime threads, and shared by the encoder processes' runners",
    )
    parser.add_argument("--out", type=Path, default=Path("var/bench/encoder"))
    return parser.parse_args()


def _server_threads(threads: int, replicas: int) -> int:
    """The onnxruntime threads of each batch runner: `threads` shared as the server's default
    (threads 0) shares the machine's cores."""
    return threads_per_runner(threads, cluster_config.load().encoder.batch_runners, replicas)


async def _measure(
    addresses: list[str],
    fp32: Encoder,
    encoded: list[bytes],
    inputs: np.ndarray,
    args: argparse.Namespace,
) -> Figures:
    """Each run: per call size, Embed images/s then in-process images/s; then latencies."""
    figures: Figures = {}
    target = clients.balanced_target(addresses)
    async with clients.channel(target, balanced=True) as channel:
        stub = encoder_pb2_grpc.EncoderStub(channel)
        for size in args.call_images:  # warm every replica
            await embed_rate(stub, embed_requests(encoded, args.clients, size), 0.5)
        for _ in range(args.runs):
            for size in args.call_images:
                calls = embed_requests(encoded, args.clients, size)
                measured = {
                    f"rpc {size}": await embed_rate(stub, calls, args.seconds),
                    f"in-process {size}": images_per_s(fp32.embed, inputs[:size], args.seconds),
                }
                for key, value in measured.items():
                    figures.setdefault(key, []).append(value)
            for key, value in (await _latencies(stub, fp32, encoded, inputs, args)).items():
                figures.setdefault(key, []).append(value)
    return figures


async def _latencies(
    stub: encoder_pb2_grpc.EncoderStub,
    fp32: Encoder,
    encoded: list[bytes],
    inputs: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Median seconds of one caller's calls, one after another."""
    one = encoder_pb2.EmbedRequest(images=encoded[:1])

    async def embed() -> object:
        return await stub.Embed(one, timeout=TIMEOUT_S)

    async def get_model() -> object:
        return await stub.GetModel(encoder_pb2.GetModelRequest(), timeout=TIMEOUT_S)

    async def model() -> object:
        return fp32.embed(inputs[:1])

    async def decode_model() -> object:
        decoded = decode(encoded[0], Limits(), fp32.params)[None]
        return fp32.embed(normalise(decoded, fp32.params))

    calls = {"embed": embed, "get_model": get_model, "model": model, "decode+model": decode_model}
    return {f"p50 {name}": await _p50(call, args.latency_calls) for name, call in calls.items()}


async def _p50(call: Callable[[], Awaitable[object]], count: int) -> float:
    await call()  # warm
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _print(results: dict[int, Figures], args: argparse.Namespace) -> None:
    print(
        f"\nEmbed images/s: {args.clients} concurrent clients on one round_robin channel over "
        f"the encoder processes; in-process: onnxruntime fp32, one caller on {args.threads} "
        f"threads, at the call's batch size, measured in the same runs (medians of {args.runs})"
    )
    print(
        f"{'processes':>9s} {'images/call':>11s} {'RPC images/s':>13s} "
        f"{'in-process':>11s} {'RPC / it':>9s}"
    )
    for replicas, figures in results.items():
        for size in args.call_images:
            rpc, local = figures[f"rpc {size}"], figures[f"in-process {size}"]
            print(
                f"{replicas:9d} {size:11d} {statistics.median(rpc):13.0f} "
                f"{statistics.median(local):11.0f} {median_ratio(rpc, local):8.2f}x"
            )
    print(
        "\np50 ms of one caller, one image: Embed RPC, GetModel RPC (no model), in-process "
        "model at batch 1, in-process decode + model"
    )
    print(f"{'processes':>9s} {'Embed':>8s} {'GetModel':>9s} {'model':>8s} {'decode+model':>13s}")
    for replicas, figures in results.items():
        row = [
            statistics.median(figures[f"p50 {name}"]) * 1000
            for name in ("embed", "get_model", "model", "decode+model")
        ]
        print(f"{replicas:9d} {row[0]:8.2f} {row[1]:9.2f} {row[2]:8.2f} {row[3]:13.2f}")


def _write(results: dict[int, Figures], args: argparse.Namespace, version: str) -> Path:
    """The figures of every run and their medians, with what was measured, as JSON."""
    now = datetime.datetime.now(datetime.UTC)
    document: dict[str, Any] = {
        "when": now.isoformat(timespec="seconds"),
        "model_version": version,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "encoder_config": vars(cluster_config.load().encoder),  # VS_* of the servers on top
        "threads_per_runner": {
            str(replicas): _server_threads(args.threads, replicas) for replicas in results
        },
        "processes": {
            str(replicas): {
                key: {"median": statistics.median(runs), "runs": runs}
                for key, runs in figures.items()
            }
            for replicas, figures in results.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"encoder-{now:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(document, indent=1, default=list) + "\n")
    return path


if __name__ == "__main__":
    main()
