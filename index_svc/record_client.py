"""The shard's calls to the record (the taxonomy service); protobuf stays in here."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from common import wire
from common.clients import call, channel, errors_for
from common.config import TlsConfig
from common.feed import Change, ItemState, Route
from common.routing import NodeInfo
from protos.visualsearch.v1 import taxonomy_pb2, taxonomy_pb2_grpc

CALL_S = 30.0  # deadline of one unary call


@dataclass(frozen=True)
class TreeState:
    """The current tree as a shard needs it: its nodes, the routing table, the splits, and
    the feed position and identity they were read at."""

    version: int
    seq: int
    feed_id: str
    nodes: list[NodeInfo]
    routes: list[Route]
    split: list[int]


class RecordClient:
    """One channel to the taxonomy service, opened once per shard process."""

    def __init__(self, address: str, token: str, tls: TlsConfig | None = None) -> None:
        self._channel = channel(address, token, tls=tls)
        self._stub = taxonomy_pb2_grpc.TaxonomyStub(self._channel)

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def tree(self) -> TreeState:
        """The current tree, waiting for the taxonomy to serve."""
        request = taxonomy_pb2.GetTreeRequest()
        tree = await call(self._stub.GetTree, request, CALL_S, "taxonomy", wait_for_ready=True)
        routes = [wire.route(route) for route in tree.routes]
        return TreeState(
            tree.version, tree.seq, tree.feed_id, wire.node_infos(tree), routes, list(tree.split)
        )

    async def scan(
        self, partitions: Sequence[int], item_ids: Sequence[str], model_version: str
    ) -> tuple[list[ItemState], int, str]:
        """The items (with vectors of `model_version`), the position and the version."""
        request = taxonomy_pb2.ScanRequest(
            partitions=partitions, item_ids=item_ids, model_version=model_version
        )
        items: list[ItemState] = []
        seq, version = 0, ""
        try:
            async for chunk in self._stub.Scan(request):
                seq, version = chunk.seq, chunk.model_version
                items.extend(wire.item_state(item) for item in chunk.items)
        except grpc.aio.AioRpcError as error:
            raise errors_for(error, "taxonomy") from error
        return items, seq, version

    async def changes(self, from_seq: int, feed_id: str) -> AsyncIterator[Change | None]:
        """The feed's entries after `from_seq` as they commit; None: rebuild from a scan.

        Raises:
            VisualSearchError: the stream broke (the taxonomy went away, say).
        """
        request = taxonomy_pb2.WatchRequest(from_seq=from_seq, feed_id=feed_id)
        try:
            async for message in self._stub.Watch(request):
                yield wire.change(message)
        except grpc.aio.AioRpcError as error:
            raise errors_for(error, "taxonomy") from error

    async def partition_ready(self, partition: int, address: str, seq: int) -> Route:
        """Reports a partition this shard, a target of its move, has built as of `seq`."""
        request = taxonomy_pb2.PartitionReadyRequest(
            partition_id=partition, address=address, seq=seq
        )
        return wire.route(await call(self._stub.PartitionReady, request, CALL_S, "taxonomy"))
