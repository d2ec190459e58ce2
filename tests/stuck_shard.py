"""A shard that never answers a search in time, or refuses every one, as its own process:
`python -m tests.stuck_shard ADDRESS slow|refuse`. It serves the Index service through the
cluster's serve loop (health included) and prints a line when a search is called off, so a
test can see that the work below a call stops with it."""

import asyncio
import sys
from collections.abc import Iterable

import grpc

from common.config import ClusterConfig
from common.errors import InvalidArgument
from common.serve import run, serve
from protos.visualsearch.v1 import index_pb2, index_pb2_grpc

SLOW_S = 60.0
CANCELLED = "search cancelled after"


class StuckIndex(index_pb2_grpc.IndexServicer):
    def __init__(self, mode: str) -> None:
        self._mode = mode

    async def SearchVectors(
        self, request: index_pb2.SearchVectorsRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.SearchVectorsResponse:
        if self._mode == "refuse":
            raise InvalidArgument("query has 8 floats; model m2 has 16")
        started = asyncio.get_running_loop().time()
        try:
            await asyncio.sleep(SLOW_S)
        except asyncio.CancelledError:
            waited = asyncio.get_running_loop().time() - started
            print(f"{CANCELLED} {waited:.2f}s", flush=True)
            raise
        return index_pb2.SearchVectorsResponse()


async def main(address: str, mode: str) -> None:
    def register(server: grpc.aio.Server) -> Iterable[str]:
        index_pb2_grpc.add_IndexServicer_to_server(StuckIndex(mode), server)
        return [index_pb2.DESCRIPTOR.services_by_name["Index"].full_name]

    await serve("stuck-shard", address, register, ClusterConfig(grace_s=1.0, metrics_offset=0))


if __name__ == "__main__":
    run(main(sys.argv[1], sys.argv[2]))
