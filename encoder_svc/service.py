"""The Encoder gRPC servicer: protobuf in, the embedder, protobuf out."""

import grpc

from common.errors import ItemFailure
from common.vectors import to_bytes
from common.wire import item_error_pb
from encoder_svc.embedder import Answer, Embedded, Embedder
from protos.visualsearch.v1 import common_pb2, encoder_pb2, encoder_pb2_grpc


class EncoderService(encoder_pb2_grpc.EncoderServicer):
    """Serves the embedder's current model version (which may change between calls)."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    async def Embed(
        self, request: encoder_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> encoder_pb2.EmbedResponse:
        answer = await self._embedder.embed(list(request.images), request.top_leaves)
        return _answer_to_pb(answer)

    async def GetModel(
        self, request: encoder_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> encoder_pb2.ModelInfo:
        encoder = self._embedder.encoder
        return encoder_pb2.ModelInfo(
            model_version=encoder.version,
            dim=encoder.dim,
            leaves=encoder.leaves,
            device=encoder.device,
        )


def _answer_to_pb(answer: Answer) -> encoder_pb2.EmbedResponse:
    return encoder_pb2.EmbedResponse(
        model_version=answer.model_version,
        dim=answer.dim,
        results=[_result_to_pb(result) for result in answer.results],
    )


def _result_to_pb(result: Embedded | ItemFailure) -> encoder_pb2.EmbedResult:
    if isinstance(result, ItemFailure):
        return encoder_pb2.EmbedResult(error=item_error_pb(result))
    leaves = [common_pb2.LeafProb(leaf=leaf, prob=prob) for leaf, prob in result.leaves]
    return encoder_pb2.EmbedResult(
        embedding=encoder_pb2.Embedding(vector=to_bytes(result.vector), leaves=leaves)
    )
