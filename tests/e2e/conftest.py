"""The real cluster on loopback: a generated catalog, a trained model, a process per service."""

import os
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from catalog.generate import generate
from catalog.items import Catalog, open_catalog
from common import config as cluster_config
from common.config import ClusterConfig
from infra import cluster, process, workspace
from infra.ingest import ingest_catalog
from protos.visualsearch.v1 import gateway_pb2_grpc


@dataclass(frozen=True)
class Running:
    config: ClusterConfig
    catalog: Catalog
    stub: gateway_pb2_grpc.VisualSearchStub


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """Prepares, starts and loads the cluster once; always stops it."""
    root = tmp_path_factory.mktemp("cluster")
    catalog_dir = generate(root / "catalog")
    workdir = root / "work"
    gateway, encoder, taxonomy, shard_a, shard_b = process.free_ports(5)
    settings = {
        **workspace.overrides(workdir),
        "VS_CONFIG": str(cluster_config.DEFAULT_FILE),
        "VS_GATEWAY_PORT": str(gateway),
        "VS_ENCODER_PORTS": str(encoder),
        "VS_TAXONOMY_PORT": str(taxonomy),
        "VS_INDEX_PORTS": f"{shard_a},{shard_b}",
        "VS_INDEX_REPLICAS": "2",  # every partition on both shards
        "VS_INDEX_DRAIN_GRACE_S": "1",
        "VS_GRACE_S": "2",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        workspace.seed(catalog_dir, workdir)
        workspace.train(catalog_dir, workdir)
        config = cluster_config.load()
        cluster.up(config)
    finally:  # the processes have their settings; the session's later tests must not inherit
        _restore(saved)  # them (two replicas, say, in another test's gateway)
    try:
        with grpc.insecure_channel(config.address(gateway)) as channel:
            stub = gateway_pb2_grpc.VisualSearchStub(channel)
            catalog = open_catalog(catalog_dir)
            ingested, errors = ingest_catalog(stub, catalog)
            assert not errors, errors[:3]
            assert ingested == len(catalog)
            yield Running(config, catalog, stub)
    finally:
        cluster.down(config)


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
