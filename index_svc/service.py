"""The Index gRPC servicer: protobuf in, the shard's core out of the event loop, protobuf out."""

import asyncio

import grpc
import numpy as np

from common import vectors
from common.errors import InvalidArgument, NotFound
from index_svc.follower import Follower
from index_svc.record import Record
from index_svc.shard import Neighbor, PartitionStats
from index_svc.specs import Filter, SearchParams
from protos.visualsearch.v1 import index_pb2, index_pb2_grpc

ROLES = {"reader": ["SearchVectors", "SearchBatch", "Fetch", "Stats"]}

MAX_K = 1000
SERVICE_NAME = index_pb2.DESCRIPTOR.services_by_name["Index"].full_name


class IndexServicer(index_pb2_grpc.IndexServicer):
    def __init__(self, follower: Follower, max_batch: int) -> None:
        self._follower = follower
        self._shard = follower.shard
        self._max_batch = max_batch

    async def SearchVectors(
        self, request: index_pb2.SearchVectorsRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.SearchVectorsResponse:
        (neighbors,), missing = await self._search([request.query], request, context)
        return index_pb2.SearchVectorsResponse(
            neighbors=[_neighbor_to_pb(n) for n in neighbors], missing_partitions=missing
        )

    async def SearchBatch(
        self, request: index_pb2.SearchBatchRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.SearchBatchResponse:
        self._check_batch("queries", len(request.queries))
        results, missing = await self._search(list(request.queries), request, context)
        every = [neighbor for neighbors in results for neighbor in neighbors]
        item_ids, scores, leaves, partitions = zip(*every, strict=True) if every else ([],) * 4
        return index_pb2.SearchBatchResponse(
            counts=[len(neighbors) for neighbors in results],
            item_ids=item_ids,
            scores=vectors.to_bytes(np.asarray(scores, dtype=np.float32)),
            leaves=leaves,
            partitions=partitions,
            missing_partitions=missing,
        )

    async def _search(
        self,
        queries: list[bytes],
        request: index_pb2.SearchVectorsRequest | index_pb2.SearchBatchRequest,
        context: grpc.aio.ServicerContext,
    ) -> tuple[list[list[Neighbor]], list[str]]:
        if not 1 <= request.k <= MAX_K:
            raise InvalidArgument(f"k must be in 1..{MAX_K}, got {request.k}")
        if not request.partitions:
            raise InvalidArgument("no partitions named")
        if not queries:
            raise InvalidArgument("no queries")
        for name in request.partitions:
            if not name.isdigit():
                raise NotFound(f"no partition {name!r}: partitions are named by node id")
        self._check_batch("exclude_ids", len(request.exclude_ids))
        matrix = _matrix(queries)
        await self._seen(request.min_seq, context)
        return await asyncio.to_thread(
            self._shard.search,
            matrix,
            list(request.partitions),
            request.k,
            SearchParams(request.params.ef_search, request.params.nprobe, request.params.refine),
            Filter(
                tuple(request.filter.leaf_ids),
                tuple(request.filter.colours),
                tuple(request.filter.usages),
            ),
            list(request.exclude_ids),
        )

    async def Fetch(
        self, request: index_pb2.FetchRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.FetchResponse:
        self._check_batch("item_ids", len(request.item_ids))
        await self._seen(request.min_seq, context)
        found, missing = await asyncio.to_thread(self._shard.fetch, list(request.item_ids))
        return index_pb2.FetchResponse(
            vectors=[_record_to_pb(record) for record in found], missing_ids=missing
        )

    async def Stats(
        self, request: index_pb2.StatsRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.StatsResponse:
        if request.min_seq:
            await self._seen(request.min_seq, context)
        stats = await asyncio.to_thread(self._shard.stats)
        return index_pb2.StatsResponse(
            partitions=[_stats_to_pb(s) for s in stats],
            seq=self._shard.seq,
            ready=self._follower.ready,
            model_version=self._shard.model_version,
        )

    async def _seen(self, min_seq: int, context: grpc.aio.ServicerContext) -> None:
        """Waits until the shard is built and has applied the feed up to `min_seq`."""
        if min_seq < 0:
            raise InvalidArgument(f"min_seq is {min_seq}; it cannot be negative")
        remaining = context.time_remaining()
        # stop a little short of the caller's deadline, so it hears why (UNAVAILABLE, how far
        # behind) rather than DEADLINE_EXCEEDED
        patience = None if remaining is None else max(0.0, remaining - max(0.05, remaining / 20))
        await self._follower.wait_for(min_seq, patience)

    def _check_batch(self, field: str, size: int) -> None:
        if size > self._max_batch:
            raise InvalidArgument(f"{size} {field} in one call; at most {self._max_batch}")


def _record_to_pb(record: Record) -> index_pb2.Vector:
    return index_pb2.Vector(
        item_id=record.item_id,
        partition=record.partition,
        leaf=record.leaf,
        vector=vectors.to_bytes(record.vector),
        model_version=record.model_version,
    )


def _neighbor_to_pb(neighbor: Neighbor) -> index_pb2.Neighbor:
    return index_pb2.Neighbor(
        item_id=neighbor.item_id,
        score=neighbor.score,
        leaf=neighbor.leaf,
        partition=neighbor.partition,
    )


def _stats_to_pb(stats: PartitionStats) -> index_pb2.PartitionStats:
    return index_pb2.PartitionStats(
        partition=stats.name,
        count=stats.count,
        dim=stats.dim,
        model_version=stats.model_version,
        spec=stats.spec,
        tombstones=stats.tombstones,
    )


def _matrix(queries: list[bytes]) -> np.ndarray:
    """The queries as one float32 matrix.

    Raises:
        InvalidArgument: a query is not whole finite float32s, or they differ in length.
    """
    rows = [vectors.from_bytes(query) for query in queries]
    if len({len(row) for row in rows}) > 1:
        raise InvalidArgument(f"queries of dimensions {sorted({len(r) for r in rows})} in one call")
    return np.stack(rows)
