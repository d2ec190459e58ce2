"""Protobuf conversions every servicer and client shares."""

from common.errors import ItemFailure
from protos.visualsearch.v1 import common_pb2


def item_error_pb(failure: ItemFailure) -> common_pb2.ItemError:
    return common_pb2.ItemError(
        index=failure.index, item_id=failure.item_id, code=failure.code, message=failure.message
    )


def item_failure(error: common_pb2.ItemError) -> ItemFailure:
    return ItemFailure(error.index, error.item_id, error.code, error.message)
