"""Encoder replicas: two encoder processes on loopback, the gateway's one channel over both."""

import asyncio
import collections
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.config import ClusterConfig, EncoderConfig
from encoder_svc import registry
from gateway.clients import Cluster
from infra import process
from tests.images import noise
from tests.integration.test_encoder_server import _copy_version, _environment, models_dir

__all__ = ["models_dir"]  # the tiny exported model, a fixture shared with the server test

REPLICAS = 2
CALLS = 20
TIMEOUT_S = 10.0


def _replica_models(models_dir: Path, root: Path, n: int) -> Path:
    """A models directory whose current version is the shared model renamed `replica-N`, so
    that every answer names the process that gave it."""
    models = root / f"models-{n}"
    shutil.copytree(models_dir, models)
    _copy_version(models, registry.current(models).name, f"replica-{n}")
    registry.set_current(models, f"replica-{n}")
    return models


@pytest.fixture(scope="module")
def ports(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """The ports of REPLICAS encoder processes, each started as `--replica N` of them all;
    always stopped."""
    root = tmp_path_factory.mktemp("replicas")
    ports = process.free_ports(REPLICAS)
    servers = []
    try:
        for n, port in enumerate(ports):
            env = {
                **_environment(_replica_models(models_dir, root, n), port),
                "VS_ENCODER_PORTS": ",".join(map(str, ports)),
            }
            address = f"127.0.0.1:{port}"
            log = root / f"encoder-{n}.log"
            servers.append(
                process.start("encoder_svc.server", ["--replica", str(n)], address, log, env)
            )
        yield ports
    finally:
        for server in servers:
            process.stop(server, grace_s=15)


async def _versions(config: ClusterConfig, calls: int) -> collections.Counter[str]:
    """The model version of each of `calls` Embed answers, through the gateway's clients."""
    cluster = Cluster(config)
    try:
        answers = [await cluster.embed([noise(i)], 1, TIMEOUT_S) for i in range(calls)]
    finally:
        await cluster.close()
    assert all(len(results) == 1 and results[0].vector is not None for _, results in answers)
    return collections.Counter(version for version, _ in answers)


def test_the_gateway_spreads_embed_over_every_replica(ports: list[int]) -> None:
    config = ClusterConfig(host="127.0.0.1", encoder=EncoderConfig(ports=tuple(ports)))
    served = asyncio.run(_versions(config, CALLS))
    assert set(served) == {f"replica-{n}" for n in range(REPLICAS)}, served
    assert sum(served.values()) == CALLS
