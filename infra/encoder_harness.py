"""What the encoder benchmarks share: the model and images measured, callers that keep a model
or the Embed RPC busy, and real encoder processes on loopback."""

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sized
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from catalog.items import open_catalog
from common import config as cluster_config
from common.errors import FailedPrecondition
from encoder_svc import registry
from encoder_svc.preprocess import Limits, decode, normalise
from encoder_svc.registry import ModelMeta
from infra import process, workspace
from protos.visualsearch.v1 import encoder_pb2, encoder_pb2_grpc

MEASURE_S = 0.4  # per in-process engine, batch size and run
CALL_TIMEOUT_S = 30.0
Run = Callable[[Any], object]  # one model call on a batch (array rows or encoded images)


def current_version(catalog_dir: Path) -> Path:
    """The version in use for the catalog: `make train`'s workspace, else the configured one."""
    trained = Path(workspace.overrides(workspace.workdir_for(catalog_dir))["VS_ENCODER_MODELS_DIR"])
    configured = Path(cluster_config.load().encoder.models_dir)
    for models_dir in (trained, configured):
        with contextlib.suppress(FailedPrecondition):
            return registry.current(models_dir).resolve()
    which = "" if catalog_dir == workspace.GENERATED else f" CATALOG={catalog_dir}"
    raise SystemExit(
        f"no model to measure: neither {trained} nor {configured} has a CURRENT version; "
        f"make one with `make train{which}` or pass --version-dir DIR"
    )


def catalog_images(
    catalog_dir: Path, meta: ModelMeta, count: int
) -> tuple[list[bytes], np.ndarray]:
    """The catalog's first `count` images: encoded, and as the model's input."""
    with open_catalog(catalog_dir) as catalog:
        encoded = [catalog.image_bytes(item.id) for item in catalog.items[:count]]
    decoded = np.stack([decode(data, Limits(), meta.preprocess) for data in encoded])
    return encoded, normalise(decoded, meta.preprocess)


def images_per_s(run: Run, batch: Sized, seconds: float = MEASURE_S, callers: int = 1) -> float:
    """Images/s of `callers` threads, each running the batch again and again."""
    run(batch)  # warm: first-run allocations are not what is measured

    def caller(_: int) -> int:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds or count < 3 * len(batch):
            run(batch)
            count += len(batch)
        return count

    started = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        count = sum(pool.map(caller, range(callers)))
    return count / (time.perf_counter() - started)


async def rate(calls: list[Callable[[], Awaitable[int]]], seconds: float) -> float:
    """Items/s of one caller per function, each calling again as soon as it is answered; a
    call returns how many items it served."""
    stop = time.perf_counter() + seconds

    async def caller(call: Callable[[], Awaitable[int]]) -> int:
        served = 0
        while time.perf_counter() < stop:
            served += await call()
        return served

    started = time.perf_counter()
    counts = await asyncio.gather(*(caller(call) for call in calls))
    return sum(counts) / (time.perf_counter() - started)


def embed_requests(encoded: list[bytes], clients: int, size: int) -> list[encoder_pb2.EmbedRequest]:
    """One request of `size` images per client, the images taken in turn from `encoded`."""
    return [
        encoder_pb2.EmbedRequest(
            images=[encoded[(i * size + j) % len(encoded)] for j in range(size)]
        )
        for i in range(clients)
    ]


async def embed_rate(
    stub: encoder_pb2_grpc.EncoderStub, calls: list[encoder_pb2.EmbedRequest], seconds: float
) -> float:
    """Images/s embedded for one caller per request."""

    async def embed(request: encoder_pb2.EmbedRequest) -> int:
        answer = await stub.Embed(request, timeout=CALL_TIMEOUT_S)
        return sum(result.HasField("embedding") for result in answer.results)

    return await rate([partial(embed, request) for request in calls], seconds)


async def get_model_rate(stub: encoder_pb2_grpc.EncoderStub, clients: int, seconds: float) -> float:
    """Calls/s of GetModel, which runs no model: what gRPC alone allows these clients."""

    async def get_model() -> int:
        await stub.GetModel(encoder_pb2.GetModelRequest(), timeout=CALL_TIMEOUT_S)
        return 1

    return await rate([get_model] * clients, seconds)


@contextlib.contextmanager
def encoder_servers(
    version_dir: Path, threads: int, max_call: int, replicas: int = 1
) -> Iterator[list[str]]:
    """`replicas` real encoder processes serving `version_dir`, each `--replica N` of free
    loopback ports, its batch runners on `threads` onnxruntime threads each; always stopped.

    Returns:
        The processes' addresses, in replica order.
    """
    settings = cluster_config.load().encoder
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        models_dir = Path(scratch) / "models"
        models_dir.mkdir()
        (models_dir / version_dir.name).symlink_to(version_dir)
        registry.set_current(models_dir, version_dir.name)
        ports = process.free_ports(replicas)
        environment = {
            "VS_HOST": "127.0.0.1",
            "VS_ENCODER_PORTS": ",".join(map(str, ports)),
            "VS_ENCODER_MODELS_DIR": str(models_dir),
            "VS_ENCODER_THREADS": str(threads),  # of each runner
            "VS_ENCODER_VARIANT": "fp32",
            "VS_ENCODER_MAX_BATCH": str(max(max_call, settings.max_batch)),
            "VS_ENCODER_RELOAD_S": "0",
            "VS_GRACE_S": "1",
        }
        servers = []
        try:
            for n, port in enumerate(ports):
                log = Path(scratch) / f"encoder-{n}.log"
                address = f"127.0.0.1:{port}"
                args = ["--replica", str(n)]
                servers.append(process.start("encoder_svc.server", args, address, log, environment))
            yield [f"127.0.0.1:{port}" for port in ports]
        finally:
            for server in servers:
                process.stop(server, grace_s=15)
