"""Encoder replicas: encoder processes on loopback, the gateway's one channel over them all."""

import asyncio
import collections
import contextlib
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.clients import balanced_target
from common.config import ClusterConfig, EncoderConfig
from common.errors import InvalidArgument
from encoder_svc import registry
from gateway.clients import Cluster
from infra import process
from tests.images import noise
from tests.integration.test_encoder_server import (
    ROOT,
    _child_env,
    _copy_version,
    _environment,
    models_dir,
)

__all__ = ["models_dir"]  # the tiny exported model, a fixture shared with the server test

REPLICAS = 2
CALLS = 20
TIMEOUT_S = 10.0
METRICS_OFFSET = 1000  # the default: a replica's /metrics is on its gRPC port + this


def _replica_models(models_dir: Path, root: Path, n: int) -> Path:
    """A models directory whose current version is the shared model renamed `replica-N`, so
    that every answer names the process that gave it."""
    models = root / f"models-{n}"
    shutil.copytree(models_dir, models)
    _copy_version(models, registry.current(models).name, f"replica-{n}")
    registry.set_current(models, f"replica-{n}")
    return models


@contextlib.contextmanager
def _replicas(
    models_dir: Path, root: Path, ports: list[int]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """An encoder process per port, each started as `--replica N` of them all; always
    stopped."""
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for n, port in enumerate(ports):
            env = {
                **_environment(_replica_models(models_dir, root, n), port),
                "VS_ENCODER_PORTS": ",".join(map(str, ports)),
            }
            log = root / f"encoder-{n}.log"
            address = f"127.0.0.1:{port}"
            servers.append(
                process.start("encoder_svc.server", ["--replica", str(n)], address, log, env)
            )
        yield servers
    finally:
        for server in servers:
            process.stop(server, grace_s=15)


@pytest.fixture(scope="module")
def ports(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """The ports of REPLICAS encoder processes, serving until the module's tests end."""
    ports = process.free_ports(REPLICAS)
    with _replicas(models_dir, tmp_path_factory.mktemp("replicas"), ports):
        yield ports


def _config(ports: list[int]) -> ClusterConfig:
    return ClusterConfig(host="127.0.0.1", encoder=EncoderConfig(ports=tuple(ports)))


async def _versions(cluster: Cluster, calls: int) -> collections.Counter[str]:
    """The model version of each of `calls` Embed answers, each with its embedding."""
    answers = [await cluster.embed([noise(i)], 1, TIMEOUT_S) for i in range(calls)]
    assert all(len(results) == 1 and results[0].vector is not None for _, results in answers)
    return collections.Counter(version for version, _ in answers)


async def _spread(config: ClusterConfig, calls: int) -> collections.Counter[str]:
    cluster = Cluster(config)
    try:
        return await _versions(cluster, calls)
    finally:
        await cluster.close()


def test_the_gateway_spreads_embed_over_every_replica(ports: list[int]) -> None:
    served = asyncio.run(_spread(_config(ports), CALLS))
    assert set(served) == {f"replica-{n}" for n in range(REPLICAS)}, served
    assert sum(served.values()) == CALLS


def _embed_figures(port: int) -> tuple[float, float, float]:
    """A replica's own count of Embed calls answered OK, images run through its model, and
    images waiting, from its /metrics."""
    url = f"http://127.0.0.1:{port + METRICS_OFFSET}/metrics"
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as page:
        families = text_string_to_metric_families(page.read().decode())
        samples = [sample for family in families for sample in family.samples]
    calls = sum(
        s.value
        for s in samples
        if s.name == "visualsearch_requests_total"
        and s.labels.get("method") == "Embed"
        and s.labels.get("code") == "OK"
    )
    (images,) = (s.value for s in samples if s.name == "visualsearch_encoder_batch_images_sum")
    (queued,) = (s.value for s in samples if s.name == "visualsearch_encoder_queue_images")
    return calls, images, queued


def test_each_replica_counts_the_calls_and_images_it_served(ports: list[int]) -> None:
    before = [_embed_figures(port) for port in ports]
    asyncio.run(_spread(_config(ports), CALLS))
    after = [_embed_figures(port) for port in ports]
    calls = [a[0] - b[0] for a, b in zip(after, before, strict=True)]
    images = [a[1] - b[1] for a, b in zip(after, before, strict=True)]
    assert sum(calls) == CALLS and min(calls) > 0, calls
    assert images == calls  # one image a call, each run through its replica's model once
    assert [figures[2] for figures in after] == [0] * REPLICAS


def test_embed_goes_on_when_a_replica_stops(models_dir: Path, tmp_path: Path) -> None:
    ports = process.free_ports(REPLICAS)
    with _replicas(models_dir, tmp_path, ports) as servers:

        async def stop_one() -> tuple[collections.Counter[str], collections.Counter[str]]:
            cluster = Cluster(_config(ports))
            try:
                before = await _versions(cluster, 4)
                await asyncio.to_thread(process.stop, servers[0], 15)
                return before, await _versions(cluster, 10)
            finally:
                await cluster.close()

        before, after = asyncio.run(stop_one())
    assert set(before) == {"replica-0", "replica-1"}
    assert after == {"replica-1": 10}  # every call answered, by the replica left


def test_a_replica_beyond_the_ports_is_refused(models_dir: Path) -> None:
    env = {**_child_env(models_dir), "VS_ENCODER_PORTS": "50990,50991"}
    finished = subprocess.run(
        [sys.executable, "-m", "encoder_svc.server", "--replica", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "--replica 2: config.encoder.ports has 2" in finished.stderr


def test_replicas_are_balanced_over_ipv4_addresses_or_one_address_as_it_is() -> None:
    assert balanced_target(["127.0.0.1:1", "127.0.0.1:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert balanced_target(["localhost:1"]) == "localhost:1"
    with pytest.raises(InvalidArgument, match="localhost:1: several replicas need IPv4"):
        balanced_target(["127.0.0.1:2", "localhost:1"])
