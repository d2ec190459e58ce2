from protos.visualsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchByImageRequest(_message.Message):
    __slots__ = ("image", "k", "categories", "min_seq")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    k: int
    categories: _containers.RepeatedScalarFieldContainer[str]
    min_seq: int
    def __init__(self, image: _Optional[bytes] = ..., k: _Optional[int] = ..., categories: _Optional[_Iterable[str]] = ..., min_seq: _Optional[int] = ...) -> None: ...

class SimilarProductsRequest(_message.Message):
    __slots__ = ("product_id", "k", "categories", "min_seq")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    k: int
    categories: _containers.RepeatedScalarFieldContainer[str]
    min_seq: int
    def __init__(self, product_id: _Optional[str] = ..., k: _Optional[int] = ..., categories: _Optional[_Iterable[str]] = ..., min_seq: _Optional[int] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("image", "product_id")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    product_id: str
    def __init__(self, image: _Optional[bytes] = ..., product_id: _Optional[str] = ...) -> None: ...

class SearchManyRequest(_message.Message):
    __slots__ = ("queries", "k", "categories", "min_seq")
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[Query]
    k: int
    categories: _containers.RepeatedScalarFieldContainer[str]
    min_seq: int
    def __init__(self, queries: _Optional[_Iterable[_Union[Query, _Mapping]]] = ..., k: _Optional[int] = ..., categories: _Optional[_Iterable[str]] = ..., min_seq: _Optional[int] = ...) -> None: ...

class SearchAnswer(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: SearchResponse
    error: _common_pb2.ItemError
    def __init__(self, response: _Optional[_Union[SearchResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class SearchManyResponse(_message.Message):
    __slots__ = ("answers",)
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[SearchAnswer]
    def __init__(self, answers: _Optional[_Iterable[_Union[SearchAnswer, _Mapping]]] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("item_id", "score", "visual_score", "leaf", "title", "colour", "tree_distance", "step", "related_via")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VISUAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    TREE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    RELATED_VIA_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    visual_score: float
    leaf: str
    title: str
    colour: str
    tree_distance: int
    step: _common_pb2.Step
    related_via: str
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., visual_score: _Optional[float] = ..., leaf: _Optional[str] = ..., title: _Optional[str] = ..., colour: _Optional[str] = ..., tree_distance: _Optional[int] = ..., step: _Optional[_Union[_common_pb2.Step, str]] = ..., related_via: _Optional[str] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "query_leaves", "partial", "failed_shards", "partitions", "model_version")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    QUERY_LEAVES_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    FAILED_SHARDS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Result]
    query_leaves: _containers.RepeatedCompositeFieldContainer[_common_pb2.LeafProb]
    partial: bool
    failed_shards: _containers.RepeatedScalarFieldContainer[str]
    partitions: _containers.RepeatedScalarFieldContainer[str]
    model_version: str
    def __init__(self, results: _Optional[_Iterable[_Union[Result, _Mapping]]] = ..., query_leaves: _Optional[_Iterable[_Union[_common_pb2.LeafProb, _Mapping]]] = ..., partial: _Optional[bool] = ..., failed_shards: _Optional[_Iterable[str]] = ..., partitions: _Optional[_Iterable[str]] = ..., model_version: _Optional[str] = ...) -> None: ...

class IngestItem(_message.Message):
    __slots__ = ("id", "image", "leaf", "title", "colour", "usage")
    ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    image: bytes
    leaf: str
    title: str
    colour: str
    usage: str
    def __init__(self, id: _Optional[str] = ..., image: _Optional[bytes] = ..., leaf: _Optional[str] = ..., title: _Optional[str] = ..., colour: _Optional[str] = ..., usage: _Optional[str] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("items", "wait_visible")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    WAIT_VISIBLE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[IngestItem]
    wait_visible: bool
    def __init__(self, items: _Optional[_Iterable[_Union[IngestItem, _Mapping]]] = ..., wait_visible: _Optional[bool] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("ingested", "errors", "seq")
    INGESTED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ingested: int
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.ItemError]
    seq: int
    def __init__(self, ingested: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.ItemError, _Mapping]]] = ..., seq: _Optional[int] = ...) -> None: ...

class DeleteProductsRequest(_message.Message):
    __slots__ = ("ids", "wait_visible")
    IDS_FIELD_NUMBER: _ClassVar[int]
    WAIT_VISIBLE_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    wait_visible: bool
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., wait_visible: _Optional[bool] = ...) -> None: ...

class DeleteProductsResponse(_message.Message):
    __slots__ = ("deleted", "seq")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    seq: int
    def __init__(self, deleted: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...
