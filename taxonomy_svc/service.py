"""The Taxonomy gRPC servicer: protobuf in, the tree and the store, protobuf out."""

import asyncio
import dataclasses
from collections.abc import Sequence

import grpc
from sqlalchemy.orm import Session, sessionmaker

from common import paths
from common.config import TaxonomyConfig
from common.errors import InvalidArgument, ItemFailure
from common.wire import item_error_pb
from protos.visualsearch.v1 import taxonomy_pb2, taxonomy_pb2_grpc
from taxonomy_svc import store
from taxonomy_svc.rerank import Candidate, Ranked, RerankResult, rerank
from taxonomy_svc.tree import Tree

_SOURCES = {
    "given": taxonomy_pb2.LEAF_SOURCE_GIVEN,
    "predicted": taxonomy_pb2.LEAF_SOURCE_PREDICTED,
}
_SOURCE_NAMES = {value: name for name, value in _SOURCES.items()}


class TaxonomyService(taxonomy_pb2_grpc.TaxonomyServicer):
    """Serves the tree loaded at start and the items in the database."""

    def __init__(
        self, sessions: sessionmaker[Session], tree: Tree, version: int, config: TaxonomyConfig
    ) -> None:
        self._sessions = sessions
        self._tree = tree
        self._tree_pb = _tree_to_pb(tree, version)
        self._config = config

    async def GetTree(
        self, request: taxonomy_pb2.GetTreeRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.Tree:
        return self._tree_pb

    async def Ancestors(
        self, request: taxonomy_pb2.AncestorsRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.AncestorsResponse:
        if not request.path:
            raise InvalidArgument("path is empty")
        return taxonomy_pb2.AncestorsResponse(paths=self._tree.ancestors(request.path))

    async def GetItems(
        self, request: taxonomy_pb2.GetItemsRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.GetItemsResponse:
        _require(request.ids, "ids")
        found, missing = await asyncio.to_thread(self._get_items, list(request.ids))
        return taxonomy_pb2.GetItemsResponse(
            items=[_item_to_pb(item) for item in found], missing_ids=missing
        )

    async def PutItems(
        self, request: taxonomy_pb2.PutItemsRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.PutItemsResponse:
        _require(request.items, "items")
        records = [_item_from_pb(item) for item in request.items]
        failures = await asyncio.to_thread(self._put_items, records)
        return taxonomy_pb2.PutItemsResponse(
            stored=len(records) - len(failures),
            errors=[item_error_pb(failure) for failure in failures],
        )

    async def DeleteItems(
        self, request: taxonomy_pb2.DeleteItemsRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.DeleteItemsResponse:
        _require(request.ids, "ids")
        deleted = await asyncio.to_thread(self._delete_items, list(request.ids))
        return taxonomy_pb2.DeleteItemsResponse(deleted=deleted)

    async def Rerank(
        self, request: taxonomy_pb2.RerankRequest, context: grpc.aio.ServicerContext
    ) -> taxonomy_pb2.RerankResponse:
        query = [(leaf.leaf, leaf.prob) for leaf in request.query_leaves]
        candidates = [Candidate(c.item_id, c.score, c.leaf) for c in request.candidates]
        result, known = await asyncio.to_thread(self._rerank, query, candidates, request.k)
        return taxonomy_pb2.RerankResponse(
            items=[_ranked_to_pb(ranked, known.get(ranked.item_id)) for ranked in result.items],
            dropped=result.dropped,
        )

    def _get_items(self, ids: list[str]) -> tuple[list[store.ItemRecord], list[str]]:
        with self._sessions() as session:
            return store.get_items(session, ids)

    def _put_items(self, records: list[store.ItemRecord]) -> list[ItemFailure]:
        with self._sessions.begin() as session:
            return store.put_items(session, records)

    def _delete_items(self, ids: list[str]) -> int:
        with self._sessions.begin() as session:
            return store.delete_items(session, ids)

    def _rerank(
        self, query: list[tuple[str, float]], candidates: list[Candidate], k: int
    ) -> tuple[RerankResult, dict[str, store.ItemRecord]]:
        """Reranks with the database's leaf for every candidate it knows (one query)."""
        with self._sessions() as session:
            found, _ = store.get_items(session, [c.item_id for c in candidates])
        known = {item.id: item for item in found}
        placed = [
            dataclasses.replace(c, leaf=known[c.item_id].leaf) if c.item_id in known else c
            for c in candidates
        ]
        config = self._config
        result = rerank(self._tree, query, placed, k, config.max_distance, config.visual_weight)
        return result, known


def _require(values: Sequence[object], name: str) -> None:
    if not values:
        raise InvalidArgument(f"{name} is empty")


def _tree_to_pb(tree: Tree, version: int) -> taxonomy_pb2.Tree:
    nodes = [
        taxonomy_pb2.Node(
            path=path,
            name=path.rsplit(paths.SEP, 1)[-1],
            parent=tree.parent(path),
            depth=tree.depth(path),
            is_leaf=tree.is_leaf(path),
        )
        for path in tree.nodes()
    ]
    return taxonomy_pb2.Tree(version=version, nodes=nodes)


def _item_to_pb(item: store.ItemRecord) -> taxonomy_pb2.Item:
    return taxonomy_pb2.Item(
        id=item.id,
        leaf=item.leaf,
        leaf_source=_SOURCES[item.leaf_source],
        title=item.title,
        colour=item.colour,
        usage=item.usage,
    )


def _item_from_pb(item: taxonomy_pb2.Item) -> store.ItemRecord:
    return store.ItemRecord(
        id=item.id,
        leaf=item.leaf,
        leaf_source=_SOURCE_NAMES.get(item.leaf_source, ""),
        title=item.title,
        colour=item.colour,
        usage=item.usage,
    )


def _ranked_to_pb(ranked: Ranked, item: store.ItemRecord | None) -> taxonomy_pb2.RankedItem:
    return taxonomy_pb2.RankedItem(
        item=_item_to_pb(item) if item else taxonomy_pb2.Item(id=ranked.item_id, leaf=ranked.leaf),
        score=ranked.score,
        visual_score=ranked.visual,
        tree_distance=ranked.tree_distance,
    )
