"""The public VisualSearch servicer: protobuf in, the gateway's flows, protobuf out."""

from typing import cast

import grpc

from common.auth import method_roles
from common.errors import ItemFailure
from common.wire import item_error_pb
from gateway.ingest import NewItem, Writer
from gateway.search import Gateway, Query, SearchResult
from protos.visualsearch.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc

ROLES = {
    "reader": ["SearchByImage", "SimilarProducts", "SearchMany"],
    "writer": ["Ingest", "DeleteProducts"],
}


def roles() -> dict[str, str]:
    """The role each method needs, by full method name."""
    return method_roles(gateway_pb2.DESCRIPTOR.services_by_name["VisualSearch"].full_name, ROLES)


class VisualSearchService(gateway_pb2_grpc.VisualSearchServicer):
    def __init__(self, gateway: Gateway, writer: Writer) -> None:
        self._gateway = gateway
        self._writer = writer

    async def SearchByImage(
        self, request: gateway_pb2.SearchByImageRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.SearchResponse:
        result = await self._gateway.search_by_image(
            request.image,
            request.k,
            list(request.categories),
            context.time_remaining(),
            request.min_seq,
        )
        return _search_pb(result)

    async def SimilarProducts(
        self, request: gateway_pb2.SimilarProductsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.SearchResponse:
        result = await self._gateway.similar_products(
            request.product_id,
            request.k,
            list(request.categories),
            context.time_remaining(),
            request.min_seq,
        )
        return _search_pb(result)

    async def SearchMany(
        self, request: gateway_pb2.SearchManyRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.SearchManyResponse:
        queries = [Query(query.image, query.product_id) for query in request.queries]
        answers = await self._gateway.search_many(
            queries, request.k, list(request.categories), context.time_remaining(), request.min_seq
        )
        return gateway_pb2.SearchManyResponse(
            answers=[
                gateway_pb2.SearchAnswer(error=item_error_pb(answer))
                if isinstance(answer, ItemFailure)
                else gateway_pb2.SearchAnswer(response=_search_pb(answer))
                for answer in answers
            ]
        )

    async def Ingest(
        self, request: gateway_pb2.IngestRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.IngestResponse:
        items = [
            NewItem(item.id, item.image, item.leaf, item.title, item.colour, item.usage)
            for item in request.items
        ]
        ingested, failures, seq = await self._writer.ingest(
            items, request.wait_visible, context.time_remaining()
        )
        return gateway_pb2.IngestResponse(
            ingested=ingested, errors=[item_error_pb(failure) for failure in failures], seq=seq
        )

    async def DeleteProducts(
        self, request: gateway_pb2.DeleteProductsRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DeleteProductsResponse:
        deleted, seq = await self._writer.delete(
            list(request.ids), request.wait_visible, context.time_remaining()
        )
        return gateway_pb2.DeleteProductsResponse(deleted=deleted, seq=seq)


def _search_pb(result: SearchResult) -> gateway_pb2.SearchResponse:
    return gateway_pb2.SearchResponse(
        results=[
            gateway_pb2.Result(
                item_id=r.item.id,
                score=r.score,
                visual_score=r.visual_score,
                leaf=r.item.leaf,
                title=r.item.title,
                colour=r.item.colour,
                tree_distance=r.tree_distance,
                step=cast(common_pb2.Step, r.step),
                related_via=r.related_via,
            )
            for r in result.results
        ],
        query_leaves=[
            common_pb2.LeafProb(leaf=leaf, prob=prob) for leaf, prob in result.query_leaves
        ],
        partial=result.partial,
        failed_shards=result.failed_shards,
        partitions=result.partitions,
        model_version=result.model_version,
    )
