"""Protobuf conversions every servicer and client shares."""

from common.errors import ItemFailure
from common.feed import DELETE, EDIT, ROUTE, SPLIT, UPSERT, Change, ItemState, Route
from common.routing import NodeInfo
from protos.visualsearch.v1 import common_pb2, taxonomy_pb2


def item_error_pb(failure: ItemFailure) -> common_pb2.ItemError:
    return common_pb2.ItemError(
        index=failure.index, item_id=failure.item_id, code=failure.code, message=failure.message
    )


def item_failure(error: common_pb2.ItemError) -> ItemFailure:
    return ItemFailure(error.index, error.item_id, error.code, error.message)


def item_state_pb(item: ItemState) -> taxonomy_pb2.ItemState:
    return taxonomy_pb2.ItemState(
        item_id=item.item_id,
        leaf_id=item.leaf_id,
        leaf=item.leaf,
        partition_id=item.partition_id,
        model_version=item.model_version,
        vector=item.vector,
        colour=item.colour,
        usage=item.usage,
    )


def item_state(item: taxonomy_pb2.ItemState) -> ItemState:
    return ItemState(
        item.item_id,
        item.leaf_id,
        item.leaf,
        item.partition_id,
        item.model_version,
        item.vector,
        item.colour,
        item.usage,
    )


def change(message: taxonomy_pb2.Change) -> Change | None:
    """The feed entry a Watch message carries; None for reload_from (rebuild from a scan)."""
    kind = message.WhichOneof("kind")
    if kind == "item_upserted":
        item = item_state(message.item_upserted)
        return Change(message.seq, UPSERT, item=item, item_id=item.item_id)
    if kind == "item_deleted":
        return Change(message.seq, DELETE, item_id=message.item_deleted)
    if kind == "route":
        return Change(message.seq, ROUTE, route=route(message.route))
    if kind == "split":
        placed = tuple(item_state(item) for item in message.placements)
        return Change(message.seq, SPLIT, split=message.split, placements=placed)
    if kind == "tree_edit":
        placed = tuple(item_state(item) for item in message.placements)
        return Change(message.seq, EDIT, version=message.tree_edit.version, placements=placed)
    return None


def node_infos(tree: taxonomy_pb2.Tree) -> list[NodeInfo]:
    """A tree's nodes (parents first) as the partition rule reads them."""
    return [NodeInfo(n.id, n.path, n.parent_id, n.depth, n.is_leaf) for n in tree.nodes]


def route_pb(route: Route) -> taxonomy_pb2.Route:
    return taxonomy_pb2.Route(
        partition_id=route.partition_id,
        serving=route.serving,
        target=route.target,
        ready=route.ready,
    )


def route(message: taxonomy_pb2.Route) -> Route:
    return Route(
        message.partition_id,
        tuple(message.serving),
        tuple(message.target),
        tuple(message.ready),
    )
