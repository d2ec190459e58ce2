from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Step(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_LEAF: _ClassVar[Step]
    STEP_SIBLING: _ClassVar[Step]
    STEP_SUBTREE: _ClassVar[Step]
    STEP_RELATED: _ClassVar[Step]
STEP_LEAF: Step
STEP_SIBLING: Step
STEP_SUBTREE: Step
STEP_RELATED: Step

class LeafProb(_message.Message):
    __slots__ = ("leaf", "prob")
    LEAF_FIELD_NUMBER: _ClassVar[int]
    PROB_FIELD_NUMBER: _ClassVar[int]
    leaf: str
    prob: float
    def __init__(self, leaf: _Optional[str] = ..., prob: _Optional[float] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("index", "item_id", "code", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    item_id: str
    code: str
    message: str
    def __init__(self, index: _Optional[int] = ..., item_id: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
