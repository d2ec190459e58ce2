"""Runs one index shard: `python -m index_svc.server --shard N`."""

import argparse
import asyncio
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import grpc

from common import config as cluster_config
from common.auth import method_roles
from common.serve import run, serve
from index_svc.backend import backend_class
from index_svc.service import ROLES, SERVICE_NAME, IndexServicer
from index_svc.shard import Shard
from protos.visualsearch.v1 import index_pb2_grpc

log = logging.getLogger(__name__)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--shard", type=int, required=True, help="which of config.index.ports to serve"
    )
    return parser.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> None:
    """Loads shard N's snapshot and log, then serves it until SIGTERM; snapshots on the way out."""
    number = _parse(argv).shard
    config = cluster_config.load()
    index = config.index
    if not 0 <= number < len(index.ports):
        raise SystemExit(f"--shard {number}: config.index.ports has {len(index.ports)} ports")
    directory = Path(index.data_dir) / f"shard-{number}"
    shard = Shard.open(directory, index.backend, index.snapshot_every, index.snapshot_bytes)
    log.info(
        "shard %d: %s backend on %s, loaded %d vectors in %d partitions from %s",
        number,
        index.backend,
        backend_class(index.backend).device(),
        shard.count,
        len(shard.stats()),
        directory,
    )

    def register(server: grpc.aio.Server) -> Iterable[str]:
        index_pb2_grpc.add_IndexServicer_to_server(IndexServicer(shard, index.max_batch), server)
        return [SERVICE_NAME]

    async def on_stop() -> None:
        await asyncio.to_thread(shard.close)

    await serve(
        f"index-{number}",
        config.address(index.ports[number]),
        register,
        config.grace_s,
        on_stop,
        roles=method_roles(SERVICE_NAME, ROLES),
        auth=config.auth,
    )


if __name__ == "__main__":
    run(main())
