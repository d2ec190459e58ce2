from protos.visualsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Vector(_message.Message):
    __slots__ = ("item_id", "partition", "leaf", "vector", "model_version")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    partition: str
    leaf: str
    vector: bytes
    model_version: str
    def __init__(self, item_id: _Optional[str] = ..., partition: _Optional[str] = ..., leaf: _Optional[str] = ..., vector: _Optional[bytes] = ..., model_version: _Optional[str] = ...) -> None: ...

class UpsertRequest(_message.Message):
    __slots__ = ("vectors",)
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    vectors: _containers.RepeatedCompositeFieldContainer[Vector]
    def __init__(self, vectors: _Optional[_Iterable[_Union[Vector, _Mapping]]] = ...) -> None: ...

class UpsertResponse(_message.Message):
    __slots__ = ("upserted", "errors")
    UPSERTED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    upserted: int
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.ItemError]
    def __init__(self, upserted: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.ItemError, _Mapping]]] = ...) -> None: ...

class DeleteVectorsRequest(_message.Message):
    __slots__ = ("item_ids",)
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, item_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteVectorsResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class SearchVectorsRequest(_message.Message):
    __slots__ = ("query", "partitions", "k", "exclude_ids")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_IDS_FIELD_NUMBER: _ClassVar[int]
    query: bytes
    partitions: _containers.RepeatedScalarFieldContainer[str]
    k: int
    exclude_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, query: _Optional[bytes] = ..., partitions: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., exclude_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Neighbor(_message.Message):
    __slots__ = ("item_id", "score", "leaf", "partition")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    leaf: str
    partition: str
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., leaf: _Optional[str] = ..., partition: _Optional[str] = ...) -> None: ...

class SearchVectorsResponse(_message.Message):
    __slots__ = ("neighbors", "missing_partitions")
    NEIGHBORS_FIELD_NUMBER: _ClassVar[int]
    MISSING_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    neighbors: _containers.RepeatedCompositeFieldContainer[Neighbor]
    missing_partitions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, neighbors: _Optional[_Iterable[_Union[Neighbor, _Mapping]]] = ..., missing_partitions: _Optional[_Iterable[str]] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("item_ids",)
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, item_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FetchResponse(_message.Message):
    __slots__ = ("vectors", "missing_ids")
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    MISSING_IDS_FIELD_NUMBER: _ClassVar[int]
    vectors: _containers.RepeatedCompositeFieldContainer[Vector]
    missing_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vectors: _Optional[_Iterable[_Union[Vector, _Mapping]]] = ..., missing_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PartitionStats(_message.Message):
    __slots__ = ("partition", "count", "dim", "model_version")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    partition: str
    count: int
    dim: int
    model_version: str
    def __init__(self, partition: _Optional[str] = ..., count: _Optional[int] = ..., dim: _Optional[int] = ..., model_version: _Optional[str] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("partitions",)
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedCompositeFieldContainer[PartitionStats]
    def __init__(self, partitions: _Optional[_Iterable[_Union[PartitionStats, _Mapping]]] = ...) -> None: ...
