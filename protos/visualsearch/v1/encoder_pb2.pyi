from protos.visualsearch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmbedRequest(_message.Message):
    __slots__ = ("images", "top_leaves")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TOP_LEAVES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedScalarFieldContainer[bytes]
    top_leaves: int
    def __init__(self, images: _Optional[_Iterable[bytes]] = ..., top_leaves: _Optional[int] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("vector", "leaves")
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    vector: bytes
    leaves: _containers.RepeatedCompositeFieldContainer[_common_pb2.LeafProb]
    def __init__(self, vector: _Optional[bytes] = ..., leaves: _Optional[_Iterable[_Union[_common_pb2.LeafProb, _Mapping]]] = ...) -> None: ...

class EmbedResult(_message.Message):
    __slots__ = ("embedding", "error")
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    embedding: Embedding
    error: _common_pb2.ItemError
    def __init__(self, embedding: _Optional[_Union[Embedding, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("model_version", "dim", "results")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    dim: int
    results: _containers.RepeatedCompositeFieldContainer[EmbedResult]
    def __init__(self, model_version: _Optional[str] = ..., dim: _Optional[int] = ..., results: _Optional[_Iterable[_Union[EmbedResult, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_version", "dim", "leaves", "device")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    dim: int
    leaves: _containers.RepeatedScalarFieldContainer[str]
    device: str
    def __init__(self, model_version: _Optional[str] = ..., dim: _Optional[int] = ..., leaves: _Optional[_Iterable[str]] = ..., device: _Optional[str] = ...) -> None: ...
