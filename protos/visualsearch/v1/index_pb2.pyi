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

class SearchVectorsRequest(_message.Message):
    __slots__ = ("query", "partitions", "k", "exclude_ids", "min_seq", "params", "filter")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_IDS_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    query: bytes
    partitions: _containers.RepeatedScalarFieldContainer[str]
    k: int
    exclude_ids: _containers.RepeatedScalarFieldContainer[str]
    min_seq: int
    params: SearchParams
    filter: Filter
    def __init__(self, query: _Optional[bytes] = ..., partitions: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., exclude_ids: _Optional[_Iterable[str]] = ..., min_seq: _Optional[int] = ..., params: _Optional[_Union[SearchParams, _Mapping]] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class SearchParams(_message.Message):
    __slots__ = ("ef_search", "nprobe", "refine")
    EF_SEARCH_FIELD_NUMBER: _ClassVar[int]
    NPROBE_FIELD_NUMBER: _ClassVar[int]
    REFINE_FIELD_NUMBER: _ClassVar[int]
    ef_search: int
    nprobe: int
    refine: float
    def __init__(self, ef_search: _Optional[int] = ..., nprobe: _Optional[int] = ..., refine: _Optional[float] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("leaf_ids", "colours", "usages")
    LEAF_IDS_FIELD_NUMBER: _ClassVar[int]
    COLOURS_FIELD_NUMBER: _ClassVar[int]
    USAGES_FIELD_NUMBER: _ClassVar[int]
    leaf_ids: _containers.RepeatedScalarFieldContainer[int]
    colours: _containers.RepeatedScalarFieldContainer[str]
    usages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, leaf_ids: _Optional[_Iterable[int]] = ..., colours: _Optional[_Iterable[str]] = ..., usages: _Optional[_Iterable[str]] = ...) -> None: ...

class SearchBatchRequest(_message.Message):
    __slots__ = ("queries", "partitions", "k", "exclude_ids", "min_seq", "params", "filter")
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_IDS_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedScalarFieldContainer[bytes]
    partitions: _containers.RepeatedScalarFieldContainer[str]
    k: int
    exclude_ids: _containers.RepeatedScalarFieldContainer[str]
    min_seq: int
    params: SearchParams
    filter: Filter
    def __init__(self, queries: _Optional[_Iterable[bytes]] = ..., partitions: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., exclude_ids: _Optional[_Iterable[str]] = ..., min_seq: _Optional[int] = ..., params: _Optional[_Union[SearchParams, _Mapping]] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class SearchBatchResponse(_message.Message):
    __slots__ = ("counts", "item_ids", "scores", "leaves", "partitions", "missing_partitions")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    MISSING_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    scores: bytes
    leaves: _containers.RepeatedScalarFieldContainer[str]
    partitions: _containers.RepeatedScalarFieldContainer[str]
    missing_partitions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, counts: _Optional[_Iterable[int]] = ..., item_ids: _Optional[_Iterable[str]] = ..., scores: _Optional[bytes] = ..., leaves: _Optional[_Iterable[str]] = ..., partitions: _Optional[_Iterable[str]] = ..., missing_partitions: _Optional[_Iterable[str]] = ...) -> None: ...

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
    __slots__ = ("item_ids", "min_seq")
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    min_seq: int
    def __init__(self, item_ids: _Optional[_Iterable[str]] = ..., min_seq: _Optional[int] = ...) -> None: ...

class FetchResponse(_message.Message):
    __slots__ = ("vectors", "missing_ids")
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    MISSING_IDS_FIELD_NUMBER: _ClassVar[int]
    vectors: _containers.RepeatedCompositeFieldContainer[Vector]
    missing_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vectors: _Optional[_Iterable[_Union[Vector, _Mapping]]] = ..., missing_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("min_seq",)
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    min_seq: int
    def __init__(self, min_seq: _Optional[int] = ...) -> None: ...

class PartitionStats(_message.Message):
    __slots__ = ("partition", "count", "dim", "model_version", "spec", "tombstones")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONES_FIELD_NUMBER: _ClassVar[int]
    partition: str
    count: int
    dim: int
    model_version: str
    spec: str
    tombstones: int
    def __init__(self, partition: _Optional[str] = ..., count: _Optional[int] = ..., dim: _Optional[int] = ..., model_version: _Optional[str] = ..., spec: _Optional[str] = ..., tombstones: _Optional[int] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("partitions", "seq", "ready", "model_version")
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedCompositeFieldContainer[PartitionStats]
    seq: int
    ready: bool
    model_version: str
    def __init__(self, partitions: _Optional[_Iterable[_Union[PartitionStats, _Mapping]]] = ..., seq: _Optional[int] = ..., ready: _Optional[bool] = ..., model_version: _Optional[str] = ...) -> None: ...
