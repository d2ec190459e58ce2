"""Runs the gateway: `python -m gateway.server` (config from infra/cluster.toml and VS_*)."""

from collections.abc import Iterable

import grpc

from common import config as cluster_config
from common.errors import VisualSearchError
from common.serve import run, serve
from gateway.clients import Cluster
from gateway.follower import TreeFollower
from gateway.health import ShardHealth
from gateway.ingest import Writer
from gateway.search import Gateway
from gateway.service import VisualSearchService, roles
from protos.visualsearch.v1 import gateway_pb2, gateway_pb2_grpc

START_S = 60.0  # how long the gateway waits for the taxonomy at start


async def main() -> None:
    config = cluster_config.load()
    cluster = Cluster(config)
    tree = TreeFollower(cluster)
    gateway = config.gateway
    health = ShardHealth(cluster.serving, gateway.eject_after, gateway.probe_s)
    try:
        await tree.start(START_S)  # the gateway serves once it knows the tree
    except VisualSearchError as error:
        raise SystemExit(f"gateway cannot start: {error}") from None
    health.start()

    def register(server: grpc.aio.Server) -> Iterable[str]:
        gateway_pb2_grpc.add_VisualSearchServicer_to_server(
            VisualSearchService(Gateway(cluster, config, tree, health), Writer(cluster, config)),
            server,
        )
        return [gateway_pb2.DESCRIPTOR.services_by_name["VisualSearch"].full_name]

    async def on_stop() -> None:
        await health.stop()
        await tree.stop()
        await cluster.close()

    await serve(
        "gateway",
        config.address(config.gateway.port),
        register,
        config,
        on_stop,
        roles=roles(),
        public=True,  # callers present tokens, not the cluster's certificate
    )


if __name__ == "__main__":
    run(main())
