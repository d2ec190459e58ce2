"""The Index gRPC servicer: protobuf in, the shard's core out of the event loop, protobuf out."""

import asyncio

import grpc
import numpy as np

from common import vectors
from common.errors import InvalidArgument
from common.wire import item_error_pb
from index_svc.record import Record
from index_svc.shard import Neighbor, PartitionStats, Shard
from protos.visualsearch.v1 import index_pb2, index_pb2_grpc

ROLES = {"reader": ["SearchVectors", "Fetch", "Stats"], "writer": ["Upsert", "DeleteVectors"]}

MAX_K = 1000
SERVICE_NAME = index_pb2.DESCRIPTOR.services_by_name["Index"].full_name


class IndexServicer(index_pb2_grpc.IndexServicer):
    def __init__(self, shard: Shard, max_batch: int) -> None:
        self._shard = shard
        self._max_batch = max_batch

    async def Upsert(
        self, request: index_pb2.UpsertRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.UpsertResponse:
        self._check_batch("vectors", len(request.vectors))
        records = [_record_from_pb(vector) for vector in request.vectors]
        result = await asyncio.to_thread(self._shard.upsert, records)
        return index_pb2.UpsertResponse(
            upserted=result.upserted, errors=[item_error_pb(f) for f in result.failures]
        )

    async def DeleteVectors(
        self, request: index_pb2.DeleteVectorsRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.DeleteVectorsResponse:
        self._check_batch("item_ids", len(request.item_ids))
        deleted = await asyncio.to_thread(self._shard.delete, list(request.item_ids))
        return index_pb2.DeleteVectorsResponse(deleted=deleted)

    async def SearchVectors(
        self, request: index_pb2.SearchVectorsRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.SearchVectorsResponse:
        if not 1 <= request.k <= MAX_K:
            raise InvalidArgument(f"k must be in 1..{MAX_K}, got {request.k}")
        if not request.partitions:
            raise InvalidArgument("no partitions named")
        self._check_batch("exclude_ids", len(request.exclude_ids))
        query = vectors.from_bytes(request.query)
        neighbors, missing = await asyncio.to_thread(
            self._shard.search,
            query,
            list(request.partitions),
            request.k,
            list(request.exclude_ids),
        )
        return index_pb2.SearchVectorsResponse(
            neighbors=[_neighbor_to_pb(n) for n in neighbors], missing_partitions=missing
        )

    async def Fetch(
        self, request: index_pb2.FetchRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.FetchResponse:
        self._check_batch("item_ids", len(request.item_ids))
        found, missing = await asyncio.to_thread(self._shard.fetch, list(request.item_ids))
        return index_pb2.FetchResponse(
            vectors=[_record_to_pb(record) for record in found], missing_ids=missing
        )

    async def Stats(
        self, request: index_pb2.StatsRequest, context: grpc.aio.ServicerContext
    ) -> index_pb2.StatsResponse:
        stats = await asyncio.to_thread(self._shard.stats)
        return index_pb2.StatsResponse(partitions=[_stats_to_pb(s) for s in stats])

    def _check_batch(self, field: str, size: int) -> None:
        if size > self._max_batch:
            raise InvalidArgument(f"{size} {field} in one call; at most {self._max_batch}")


def _record_from_pb(vector: index_pb2.Vector) -> Record:
    return Record(
        item_id=vector.item_id,
        partition=vector.partition,
        leaf=vector.leaf,
        vector=_floats(vector.vector),
        model_version=vector.model_version,
    )


def _floats(data: bytes) -> np.ndarray:
    # bytes that are not whole float32s stay bytes, so the shard refuses that record alone
    return np.frombuffer(data, dtype="<f4" if len(data) % 4 == 0 else np.uint8)


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
        partition=stats.name, count=stats.count, dim=stats.dim, model_version=stats.model_version
    )
