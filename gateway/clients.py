"""The gateway's calls to the encoder, the taxonomy and the shards; protobuf stays in here."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common import vectors, wire
from common.clients import balanced_target, call, channel, errors_for
from common.config import ClusterConfig
from common.errors import ItemFailure
from common.routing import Routes
from common.wire import item_failure
from gateway.routing import TreeView
from protos.visualsearch.v1 import (
    common_pb2,
    encoder_pb2,
    encoder_pb2_grpc,
    index_pb2,
    index_pb2_grpc,
    taxonomy_pb2,
    taxonomy_pb2_grpc,
)

LeafProbs = list[tuple[str, float]]


@dataclass(frozen=True)
class Embedded:
    """One image's embedding and leaf probabilities, or the failure that stands in for them."""

    vector: np.ndarray | None
    leaves: LeafProbs
    failure: ItemFailure | None


@dataclass(frozen=True)
class Item:
    id: str
    leaf: str  # on the way in: the seller's leaf, or "" to let the classifier choose
    predicted: bool = False
    title: str = ""
    colour: str = ""
    usage: str = ""
    predictions: tuple[tuple[str, float], ...] = ()  # the classifier's likeliest leaves
    vector: bytes = b""  # on the way in: the embedding, little-endian float32
    model_version: str = ""


@dataclass(frozen=True)
class Neighbour:
    item_id: str
    score: float
    leaf: str


@dataclass(frozen=True)
class Ranked:
    item: Item
    score: float
    visual_score: float
    tree_distance: int
    step: int = 0  # how far the rerank's back-off widened (common.proto's Step)
    related_via: str = ""


@dataclass(frozen=True)
class StoredVector:
    item_id: str
    partition: str
    leaf: str
    vector: np.ndarray
    model_version: str


class Cluster:
    """Channels to every service the gateway calls, opened once per process."""

    def __init__(self, config: ClusterConfig) -> None:
        self._level = config.partition_level
        self._shard_list, self._replicas = config.shard_addresses, config.index.replicas
        self._taxonomy_address = config.address(config.taxonomy.port)
        self._channels = {
            address: channel(address, config.auth.token, tls=config.tls)
            for address in (self._taxonomy_address, *config.shard_addresses)
        }
        # one channel over every encoder replica, each Embed to the next in turn
        encoders = balanced_target(config.encoder_addresses)
        self._channels[encoders] = channel(
            encoders, config.auth.token, balanced=True, tls=config.tls
        )
        self._encoder = encoder_pb2_grpc.EncoderStub(self._channels[encoders])
        self._taxonomy = taxonomy_pb2_grpc.TaxonomyStub(self._channels[self._taxonomy_address])
        self._shards = {
            address: index_pb2_grpc.IndexStub(self._channels[address])
            for address in config.shard_addresses
        }

    async def close(self) -> None:
        for open_channel in self._channels.values():
            await open_channel.close(grace=None)

    async def embed(
        self, images: Sequence[bytes], top_leaves: int, timeout: float
    ) -> tuple[str, list[Embedded]]:
        """Embeds images; returns the model version and one outcome per image, in order."""
        request = encoder_pb2.EmbedRequest(images=images, top_leaves=top_leaves)
        reply = await call(self._encoder.Embed, request, timeout, "encoder")
        return reply.model_version, [_embedded(result) for result in reply.results]

    async def tree(self, timeout: float, wait_for_ready: bool = False) -> TreeView:
        request = taxonomy_pb2.GetTreeRequest()
        tree = await call(self._taxonomy.GetTree, request, timeout, "taxonomy", wait_for_ready)
        nodes = wire.node_infos(tree)
        related = [(link.a_path, link.b_path) for link in tree.related]
        old = {ref.path: ref.id for ref in tree.former}
        routes = Routes(self._shard_list, self._replicas, [wire.route(r) for r in tree.routes])
        return TreeView.build(
            tree.version, tree.seq, nodes, old, related, self._level, routes, list(tree.split)
        )

    async def tree_changes(self, from_seq: int) -> AsyncIterator[int]:
        """The feed position of every tree edit and routing change after `from_seq`.

        A follower too far behind gets the feed's head at once: reload, then go on.
        """
        request = taxonomy_pb2.WatchRequest(from_seq=from_seq, tree_only=True)
        stream = self._taxonomy.Watch(request)
        try:
            async for change in stream:
                yield change.seq
        except grpc.aio.AioRpcError as error:
            raise errors_for(error, "taxonomy") from error

    async def get_items(self, ids: Sequence[str], timeout: float) -> tuple[list[Item], list[str]]:
        request = taxonomy_pb2.GetItemsRequest(ids=ids)
        reply = await call(self._taxonomy.GetItems, request, timeout, "taxonomy")
        return [_item(item) for item in reply.items], list(reply.missing_ids)

    async def put_items(
        self, items: Sequence[Item], timeout: float
    ) -> tuple[list[str], list[ItemFailure], int]:
        """Records items with their vectors; returns the leaf each went to ("" if refused),
        the refusals, and the feed position of the commit."""
        request = taxonomy_pb2.PutItemsRequest(items=[_item_pb(item) for item in items])
        reply = await call(self._taxonomy.PutItems, request, timeout, "taxonomy")
        return list(reply.leaves), [item_failure(error) for error in reply.errors], reply.seq

    async def delete_items(self, ids: Sequence[str], timeout: float) -> tuple[int, int]:
        """Deletes items; returns how many were held and the feed position of the commit."""
        request = taxonomy_pb2.DeleteItemsRequest(ids=ids)
        reply = await call(self._taxonomy.DeleteItems, request, timeout, "taxonomy")
        return int(reply.deleted), reply.seq

    async def rerank(
        self,
        query_leaves: LeafProbs,
        candidates: Sequence[Neighbour],
        k: int,
        categories: Sequence[str],
        timeout: float,
    ) -> list[Ranked]:
        request = taxonomy_pb2.RerankRequest(
            query_leaves=[common_pb2.LeafProb(leaf=leaf, prob=prob) for leaf, prob in query_leaves],
            candidates=[
                taxonomy_pb2.Candidate(item_id=c.item_id, score=c.score, leaf=c.leaf)
                for c in candidates
            ],
            k=k,
            categories=categories,
        )
        reply = await call(self._taxonomy.Rerank, request, timeout, "taxonomy")
        return [
            Ranked(_item(r.item), r.score, r.visual_score, r.tree_distance, r.step, r.related_via)
            for r in reply.items
        ]

    async def search(
        self,
        shard: str,
        query: np.ndarray,
        partitions: Sequence[str],
        k: int,
        exclude_ids: Sequence[str],
        timeout: float,
        min_seq: int = 0,
        within: Sequence[int] = (),
    ) -> tuple[list[Neighbour], list[str]]:
        """The shard's neighbours (only those whose leaf is one of the nodes `within`, if any
        are named), and the partitions it does not hold (not assigned to it)."""
        request = index_pb2.SearchVectorsRequest(
            query=vectors.to_bytes(query),
            partitions=partitions,
            k=k,
            exclude_ids=exclude_ids,
            min_seq=min_seq,
            filter=index_pb2.Filter(leaf_ids=within),
        )
        reply = await call(self._shards[shard].SearchVectors, request, timeout, f"shard {shard}")
        neighbours = [Neighbour(n.item_id, n.score, n.leaf) for n in reply.neighbors]
        return neighbours, list(reply.missing_partitions)

    async def fetch(
        self, shard: str, ids: Sequence[str], timeout: float, min_seq: int = 0
    ) -> list[StoredVector]:
        request = index_pb2.FetchRequest(item_ids=ids, min_seq=min_seq)
        reply = await call(self._shards[shard].Fetch, request, timeout, f"shard {shard}")
        return [
            StoredVector(
                v.item_id, v.partition, v.leaf, vectors.from_bytes(v.vector), v.model_version
            )
            for v in reply.vectors
        ]

    async def serving(self, shard: str, timeout: float) -> bool:
        """Whether the shard's health service says it serves."""
        request = health_pb2.HealthCheckRequest(service="")
        stub = health_pb2_grpc.HealthStub(self._channels[shard])
        reply = await call(stub.Check, request, timeout, f"shard {shard}")
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def caught_up(self, shard: str, seq: int, timeout: float) -> None:
        """Returns once the shard has applied the feed up to `seq`."""
        request = index_pb2.StatsRequest(min_seq=seq)
        await call(self._shards[shard].Stats, request, timeout, f"shard {shard}")


def _embedded(result: encoder_pb2.EmbedResult) -> Embedded:
    if result.WhichOneof("outcome") == "error":
        return Embedded(None, [], item_failure(result.error))
    leaves = [(leaf.leaf, leaf.prob) for leaf in result.embedding.leaves]
    return Embedded(vectors.from_bytes(result.embedding.vector), leaves, None)


def _item(item: taxonomy_pb2.Item) -> Item:
    predicted = item.leaf_source == taxonomy_pb2.LEAF_SOURCE_PREDICTED
    return Item(item.id, item.leaf, predicted, item.title, item.colour, item.usage)


def _item_pb(item: Item) -> taxonomy_pb2.Item:
    source = (
        taxonomy_pb2.LEAF_SOURCE_PREDICTED if item.predicted else taxonomy_pb2.LEAF_SOURCE_GIVEN
    )
    return taxonomy_pb2.Item(
        id=item.id,
        leaf=item.leaf,
        leaf_source=source,
        title=item.title,
        colour=item.colour,
        usage=item.usage,
        predicted=[common_pb2.LeafProb(leaf=leaf, prob=prob) for leaf, prob in item.predictions],
        vector=item.vector,
        model_version=item.model_version,
    )
