"""Runs the taxonomy: `python -m taxonomy_svc.server` (config from infra/cluster.toml and VS_*)."""

import asyncio
import logging
from collections.abc import Iterable

import grpc
from sqlalchemy.orm import sessionmaker

from common import config as cluster_config
from common.serve import run, serve
from protos.visualsearch.v1 import taxonomy_pb2, taxonomy_pb2_grpc
from taxonomy_svc.db import make_engine
from taxonomy_svc.record import Record
from taxonomy_svc.service import TaxonomyService, roles

log = logging.getLogger(__name__)


async def main() -> None:
    config = cluster_config.load()
    taxonomy = config.taxonomy
    engine = await asyncio.to_thread(make_engine, taxonomy.database, taxonomy.synchronous)
    record = await asyncio.to_thread(
        Record,
        sessionmaker(engine),
        config.partition_level,
        taxonomy.feed_keep,
        config.shard_addresses,
        config.index.replicas,
        taxonomy.split_above,
    )
    log.info(
        "taxonomy tree version %d: %d nodes; feed at %d",
        record.version,
        len(record.tree.active_ids()),
        record.seq,
    )
    servicer = TaxonomyService(record, config.taxonomy)

    def register(server: grpc.aio.Server) -> Iterable[str]:
        taxonomy_pb2_grpc.add_TaxonomyServicer_to_server(servicer, server)
        return [taxonomy_pb2.DESCRIPTOR.services_by_name["Taxonomy"].full_name]

    async def on_stop() -> None:
        engine.dispose()

    await serve(
        "taxonomy",
        config.address(config.taxonomy.port),
        register,
        config,
        on_stop,
        roles=roles(),
    )


if __name__ == "__main__":
    run(main())
