from protos.visualsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LeafSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEAF_SOURCE_UNSPECIFIED: _ClassVar[LeafSource]
    LEAF_SOURCE_GIVEN: _ClassVar[LeafSource]
    LEAF_SOURCE_PREDICTED: _ClassVar[LeafSource]
LEAF_SOURCE_UNSPECIFIED: LeafSource
LEAF_SOURCE_GIVEN: LeafSource
LEAF_SOURCE_PREDICTED: LeafSource

class Node(_message.Message):
    __slots__ = ("path", "name", "parent", "depth", "is_leaf")
    PATH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    IS_LEAF_FIELD_NUMBER: _ClassVar[int]
    path: str
    name: str
    parent: str
    depth: int
    is_leaf: bool
    def __init__(self, path: _Optional[str] = ..., name: _Optional[str] = ..., parent: _Optional[str] = ..., depth: _Optional[int] = ..., is_leaf: _Optional[bool] = ...) -> None: ...

class GetTreeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Tree(_message.Message):
    __slots__ = ("version", "nodes")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    version: int
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    def __init__(self, version: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ...) -> None: ...

class AncestorsRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class AncestorsResponse(_message.Message):
    __slots__ = ("paths",)
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("id", "leaf", "leaf_source", "title", "colour", "usage")
    ID_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    LEAF_SOURCE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    leaf: str
    leaf_source: LeafSource
    title: str
    colour: str
    usage: str
    def __init__(self, id: _Optional[str] = ..., leaf: _Optional[str] = ..., leaf_source: _Optional[_Union[LeafSource, str]] = ..., title: _Optional[str] = ..., colour: _Optional[str] = ..., usage: _Optional[str] = ...) -> None: ...

class GetItemsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetItemsResponse(_message.Message):
    __slots__ = ("items", "missing_ids")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MISSING_IDS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    missing_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ..., missing_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PutItemsRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ...) -> None: ...

class PutItemsResponse(_message.Message):
    __slots__ = ("stored", "errors")
    STORED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    stored: int
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.ItemError]
    def __init__(self, stored: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.ItemError, _Mapping]]] = ...) -> None: ...

class DeleteItemsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteItemsResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("item_id", "score", "leaf")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    leaf: str
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., leaf: _Optional[str] = ...) -> None: ...

class RerankRequest(_message.Message):
    __slots__ = ("query_leaves", "candidates", "k")
    QUERY_LEAVES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    query_leaves: _containers.RepeatedCompositeFieldContainer[_common_pb2.LeafProb]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    k: int
    def __init__(self, query_leaves: _Optional[_Iterable[_Union[_common_pb2.LeafProb, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., k: _Optional[int] = ...) -> None: ...

class RankedItem(_message.Message):
    __slots__ = ("item", "score", "visual_score", "tree_distance")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VISUAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    TREE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    item: Item
    score: float
    visual_score: float
    tree_distance: int
    def __init__(self, item: _Optional[_Union[Item, _Mapping]] = ..., score: _Optional[float] = ..., visual_score: _Optional[float] = ..., tree_distance: _Optional[int] = ...) -> None: ...

class RerankResponse(_message.Message):
    __slots__ = ("items", "dropped")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RankedItem]
    dropped: int
    def __init__(self, items: _Optional[_Iterable[_Union[RankedItem, _Mapping]]] = ..., dropped: _Optional[int] = ...) -> None: ...
