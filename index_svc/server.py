"""Runs one index shard: `python -m index_svc.server --shard N`."""

import argparse
import asyncio
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

# Before faiss loads OpenMP: idle threads sleep at once instead of spinning, which on shared
# cores starves the threads with work (PCA64,HNSW32, one query a call: 125 queries/s
# spinning, 6,390 passive, measured by the ANN benchmark's author on this machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import grpc

from common import config as cluster_config
from common.auth import method_roles
from common.routing import Routes
from common.serve import run, serve
from index_svc.follower import Assignment, Follower
from index_svc.gpu import devices
from index_svc.record_client import RecordClient
from index_svc.service import ROLES, SERVICE_NAME, IndexServicer
from index_svc.shard import Shard
from index_svc.snapshots import Snapshots
from index_svc.specs import Policy, SearchParams
from protos.visualsearch.v1 import index_pb2_grpc

log = logging.getLogger(__name__)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--shard", type=int, required=True, help="which of config.index.ports to serve"
    )
    return parser.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> None:
    """Serves shard N until SIGTERM: its partitions restored from a checked snapshot or built
    from the record, then kept current from the record's feed; snapshots on the way out."""
    number = _parse(argv).shard
    config = cluster_config.load()
    index = config.index
    if not 0 <= number < len(index.ports):
        raise SystemExit(f"--shard {number}: config.index.ports has {len(index.ports)} ports")
    policy = _policy(index)
    address, shards = config.shard_addresses[number], config.shard_addresses

    assignment = Assignment(address, Routes(shards, index.replicas), index.drain_grace_s)
    directory = Path(index.data_dir) / f"shard-{number}"
    snapshots = Snapshots(directory)
    follower = Follower(
        Shard(policy, assignment, index.model_version),
        assignment,
        snapshots,
        RecordClient(config.address(config.taxonomy.port), config.auth.token, config.tls),
        config.partition_level,
        index.snapshot_every,
    )
    log.info(
        "shard %d: partitions %s, searched on %s, %d replica(s) of each, state in %s",
        number,
        index.spec or f"Flat below {index.exact_below} vectors, {index.ann_spec} above",
        devices(),
        index.replicas,
        directory,
    )
    following = asyncio.create_task(follower.run())

    def register(server: grpc.aio.Server) -> Iterable[str]:
        index_pb2_grpc.add_IndexServicer_to_server(IndexServicer(follower, index.max_batch), server)
        return [SERVICE_NAME]

    async def on_stop() -> None:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await follower.close()
        snapshots.close()

    await serve(
        f"index-{number}",
        address,
        register,
        config,
        on_stop,
        roles=method_roles(SERVICE_NAME, ROLES),
    )


def _policy(index: cluster_config.IndexConfig) -> Policy:
    return Policy(
        index.spec,
        index.exact_below,
        index.ann_spec,
        index.compact_above,
        SearchParams(index.ef_search, index.nprobe, index.refine),
        SearchParams(index.max_ef_search, index.max_nprobe, index.max_refine),
    )


if __name__ == "__main__":
    run(main())
