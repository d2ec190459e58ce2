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

class NodeRef(_message.Message):
    __slots__ = ("id", "path")
    ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    id: int
    path: str
    def __init__(self, id: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("path", "name", "parent", "depth", "is_leaf", "id", "parent_id", "archived", "replaced_by", "items")
    PATH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    IS_LEAF_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    path: str
    name: str
    parent: str
    depth: int
    is_leaf: bool
    id: int
    parent_id: int
    archived: bool
    replaced_by: int
    items: int
    def __init__(self, path: _Optional[str] = ..., name: _Optional[str] = ..., parent: _Optional[str] = ..., depth: _Optional[int] = ..., is_leaf: _Optional[bool] = ..., id: _Optional[int] = ..., parent_id: _Optional[int] = ..., archived: _Optional[bool] = ..., replaced_by: _Optional[int] = ..., items: _Optional[int] = ...) -> None: ...

class Related(_message.Message):
    __slots__ = ("a", "b", "a_path", "b_path")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    A_PATH_FIELD_NUMBER: _ClassVar[int]
    B_PATH_FIELD_NUMBER: _ClassVar[int]
    a: int
    b: int
    a_path: str
    b_path: str
    def __init__(self, a: _Optional[int] = ..., b: _Optional[int] = ..., a_path: _Optional[str] = ..., b_path: _Optional[str] = ...) -> None: ...

class GetTreeRequest(_message.Message):
    __slots__ = ("version", "include_archived", "with_counts", "version_only")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    WITH_COUNTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_ONLY_FIELD_NUMBER: _ClassVar[int]
    version: int
    include_archived: bool
    with_counts: bool
    version_only: bool
    def __init__(self, version: _Optional[int] = ..., include_archived: _Optional[bool] = ..., with_counts: _Optional[bool] = ..., version_only: _Optional[bool] = ...) -> None: ...

class Tree(_message.Message):
    __slots__ = ("version", "seq", "former", "routes", "split", "feed_id", "nodes", "related")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FORMER_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    FEED_ID_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    RELATED_FIELD_NUMBER: _ClassVar[int]
    version: int
    seq: int
    former: _containers.RepeatedCompositeFieldContainer[NodeRef]
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    split: _containers.RepeatedScalarFieldContainer[int]
    feed_id: str
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    related: _containers.RepeatedCompositeFieldContainer[Related]
    def __init__(self, version: _Optional[int] = ..., seq: _Optional[int] = ..., former: _Optional[_Iterable[_Union[NodeRef, _Mapping]]] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., split: _Optional[_Iterable[int]] = ..., feed_id: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., related: _Optional[_Iterable[_Union[Related, _Mapping]]] = ...) -> None: ...

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

class NodeDetail(_message.Message):
    __slots__ = ("node", "children", "related", "example_items", "resolved")
    NODE_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    RELATED_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    node: Node
    children: _containers.RepeatedCompositeFieldContainer[Node]
    related: _containers.RepeatedCompositeFieldContainer[Node]
    example_items: _containers.RepeatedScalarFieldContainer[str]
    resolved: Node
    def __init__(self, node: _Optional[_Union[Node, _Mapping]] = ..., children: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., related: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., example_items: _Optional[_Iterable[str]] = ..., resolved: _Optional[_Union[Node, _Mapping]] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("id", "leaf", "leaf_source", "title", "colour", "usage", "leaf_id", "predicted", "vector", "model_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    LEAF_SOURCE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    LEAF_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    leaf: str
    leaf_source: LeafSource
    title: str
    colour: str
    usage: str
    leaf_id: int
    predicted: _containers.RepeatedCompositeFieldContainer[_common_pb2.LeafProb]
    vector: bytes
    model_version: str
    def __init__(self, id: _Optional[str] = ..., leaf: _Optional[str] = ..., leaf_source: _Optional[_Union[LeafSource, str]] = ..., title: _Optional[str] = ..., colour: _Optional[str] = ..., usage: _Optional[str] = ..., leaf_id: _Optional[int] = ..., predicted: _Optional[_Iterable[_Union[_common_pb2.LeafProb, _Mapping]]] = ..., vector: _Optional[bytes] = ..., model_version: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("stored", "errors", "leaves", "seq")
    STORED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LEAVES_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    stored: int
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.ItemError]
    leaves: _containers.RepeatedScalarFieldContainer[str]
    seq: int
    def __init__(self, stored: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.ItemError, _Mapping]]] = ..., leaves: _Optional[_Iterable[str]] = ..., seq: _Optional[int] = ...) -> None: ...

class DeleteItemsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteItemsResponse(_message.Message):
    __slots__ = ("deleted", "seq")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    seq: int
    def __init__(self, deleted: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("query_leaves", "candidates", "k", "categories")
    QUERY_LEAVES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    query_leaves: _containers.RepeatedCompositeFieldContainer[_common_pb2.LeafProb]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    k: int
    categories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, query_leaves: _Optional[_Iterable[_Union[_common_pb2.LeafProb, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., k: _Optional[int] = ..., categories: _Optional[_Iterable[str]] = ...) -> None: ...

class RankedItem(_message.Message):
    __slots__ = ("item", "score", "visual_score", "tree_distance", "step", "related_via")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    VISUAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    TREE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    RELATED_VIA_FIELD_NUMBER: _ClassVar[int]
    item: Item
    score: float
    visual_score: float
    tree_distance: int
    step: _common_pb2.Step
    related_via: str
    def __init__(self, item: _Optional[_Union[Item, _Mapping]] = ..., score: _Optional[float] = ..., visual_score: _Optional[float] = ..., tree_distance: _Optional[int] = ..., step: _Optional[_Union[_common_pb2.Step, str]] = ..., related_via: _Optional[str] = ...) -> None: ...

class RerankResponse(_message.Message):
    __slots__ = ("items", "dropped")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RankedItem]
    dropped: int
    def __init__(self, items: _Optional[_Iterable[_Union[RankedItem, _Mapping]]] = ..., dropped: _Optional[int] = ...) -> None: ...

class EditOp(_message.Message):
    __slots__ = ("add", "rename", "move", "merge", "split", "retire", "relate", "unrelate", "revert", "accept", "reject", "import_tree", "reassign")
    ADD_FIELD_NUMBER: _ClassVar[int]
    RENAME_FIELD_NUMBER: _ClassVar[int]
    MOVE_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    RETIRE_FIELD_NUMBER: _ClassVar[int]
    RELATE_FIELD_NUMBER: _ClassVar[int]
    UNRELATE_FIELD_NUMBER: _ClassVar[int]
    REVERT_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    IMPORT_TREE_FIELD_NUMBER: _ClassVar[int]
    REASSIGN_FIELD_NUMBER: _ClassVar[int]
    add: AddNode
    rename: Rename
    move: Move
    merge: Merge
    split: Split
    retire: Retire
    relate: Relate
    unrelate: Relate
    revert: Revert
    accept: Accept
    reject: Reject
    import_tree: Import
    reassign: Reassign
    def __init__(self, add: _Optional[_Union[AddNode, _Mapping]] = ..., rename: _Optional[_Union[Rename, _Mapping]] = ..., move: _Optional[_Union[Move, _Mapping]] = ..., merge: _Optional[_Union[Merge, _Mapping]] = ..., split: _Optional[_Union[Split, _Mapping]] = ..., retire: _Optional[_Union[Retire, _Mapping]] = ..., relate: _Optional[_Union[Relate, _Mapping]] = ..., unrelate: _Optional[_Union[Relate, _Mapping]] = ..., revert: _Optional[_Union[Revert, _Mapping]] = ..., accept: _Optional[_Union[Accept, _Mapping]] = ..., reject: _Optional[_Union[Reject, _Mapping]] = ..., import_tree: _Optional[_Union[Import, _Mapping]] = ..., reassign: _Optional[_Union[Reassign, _Mapping]] = ...) -> None: ...

class AddNode(_message.Message):
    __slots__ = ("parent", "name", "id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    parent: NodeRef
    name: str
    id: int
    def __init__(self, parent: _Optional[_Union[NodeRef, _Mapping]] = ..., name: _Optional[str] = ..., id: _Optional[int] = ...) -> None: ...

class Rename(_message.Message):
    __slots__ = ("node", "name")
    NODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    node: NodeRef
    name: str
    def __init__(self, node: _Optional[_Union[NodeRef, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class Move(_message.Message):
    __slots__ = ("node", "parent")
    NODE_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    node: NodeRef
    parent: NodeRef
    def __init__(self, node: _Optional[_Union[NodeRef, _Mapping]] = ..., parent: _Optional[_Union[NodeRef, _Mapping]] = ...) -> None: ...

class Merge(_message.Message):
    __slots__ = ("node", "into")
    NODE_FIELD_NUMBER: _ClassVar[int]
    INTO_FIELD_NUMBER: _ClassVar[int]
    node: NodeRef
    into: NodeRef
    def __init__(self, node: _Optional[_Union[NodeRef, _Mapping]] = ..., into: _Optional[_Union[NodeRef, _Mapping]] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("field", "values")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, field: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("to", "rule")
    TO_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    to: NodeRef
    rule: Rule
    def __init__(self, to: _Optional[_Union[NodeRef, _Mapping]] = ..., rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class Split(_message.Message):
    __slots__ = ("leaf", "children", "rest")
    LEAF_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    REST_FIELD_NUMBER: _ClassVar[int]
    leaf: NodeRef
    children: _containers.RepeatedCompositeFieldContainer[SplitChild]
    rest: str
    def __init__(self, leaf: _Optional[_Union[NodeRef, _Mapping]] = ..., children: _Optional[_Iterable[_Union[SplitChild, _Mapping]]] = ..., rest: _Optional[str] = ...) -> None: ...

class SplitChild(_message.Message):
    __slots__ = ("name", "rule")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    name: str
    rule: Rule
    def __init__(self, name: _Optional[str] = ..., rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class Reassign(_message.Message):
    __slots__ = ("node", "targets", "rest")
    NODE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    REST_FIELD_NUMBER: _ClassVar[int]
    node: NodeRef
    targets: _containers.RepeatedCompositeFieldContainer[Target]
    rest: NodeRef
    def __init__(self, node: _Optional[_Union[NodeRef, _Mapping]] = ..., targets: _Optional[_Iterable[_Union[Target, _Mapping]]] = ..., rest: _Optional[_Union[NodeRef, _Mapping]] = ...) -> None: ...

class Retire(_message.Message):
    __slots__ = ("node", "items_to")
    NODE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_TO_FIELD_NUMBER: _ClassVar[int]
    node: NodeRef
    items_to: NodeRef
    def __init__(self, node: _Optional[_Union[NodeRef, _Mapping]] = ..., items_to: _Optional[_Union[NodeRef, _Mapping]] = ...) -> None: ...

class Relate(_message.Message):
    __slots__ = ("a", "b")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    a: NodeRef
    b: NodeRef
    def __init__(self, a: _Optional[_Union[NodeRef, _Mapping]] = ..., b: _Optional[_Union[NodeRef, _Mapping]] = ...) -> None: ...

class Revert(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class Accept(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class Reject(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class Import(_message.Message):
    __slots__ = ("format", "text")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    format: str
    text: str
    def __init__(self, format: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class EditRequest(_message.Message):
    __slots__ = ("base_version", "op", "dry_run", "comment")
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    base_version: int
    op: EditOp
    dry_run: bool
    comment: str
    def __init__(self, base_version: _Optional[int] = ..., op: _Optional[_Union[EditOp, _Mapping]] = ..., dry_run: _Optional[bool] = ..., comment: _Optional[str] = ...) -> None: ...

class NodeChange(_message.Message):
    __slots__ = ("id", "before", "after")
    ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    id: int
    before: Node
    after: Node
    def __init__(self, id: _Optional[int] = ..., before: _Optional[_Union[Node, _Mapping]] = ..., after: _Optional[_Union[Node, _Mapping]] = ...) -> None: ...

class ItemMove(_message.Message):
    __slots__ = ("item_id", "from_leaf", "to_leaf")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_LEAF_FIELD_NUMBER: _ClassVar[int]
    TO_LEAF_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    from_leaf: str
    to_leaf: str
    def __init__(self, item_id: _Optional[str] = ..., from_leaf: _Optional[str] = ..., to_leaf: _Optional[str] = ...) -> None: ...

class Effect(_message.Message):
    __slots__ = ("nodes", "items_moved", "item_moves", "partitions", "related_added", "related_removed")
    NODES_FIELD_NUMBER: _ClassVar[int]
    ITEMS_MOVED_FIELD_NUMBER: _ClassVar[int]
    ITEM_MOVES_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    RELATED_ADDED_FIELD_NUMBER: _ClassVar[int]
    RELATED_REMOVED_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeChange]
    items_moved: int
    item_moves: _containers.RepeatedCompositeFieldContainer[ItemMove]
    partitions: _containers.RepeatedScalarFieldContainer[str]
    related_added: _containers.RepeatedCompositeFieldContainer[Related]
    related_removed: _containers.RepeatedCompositeFieldContainer[Related]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeChange, _Mapping]]] = ..., items_moved: _Optional[int] = ..., item_moves: _Optional[_Iterable[_Union[ItemMove, _Mapping]]] = ..., partitions: _Optional[_Iterable[str]] = ..., related_added: _Optional[_Iterable[_Union[Related, _Mapping]]] = ..., related_removed: _Optional[_Iterable[_Union[Related, _Mapping]]] = ...) -> None: ...

class EditResponse(_message.Message):
    __slots__ = ("version", "applied", "effect", "summary", "seq")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    version: int
    applied: bool
    effect: Effect
    summary: str
    seq: int
    def __init__(self, version: _Optional[int] = ..., applied: _Optional[bool] = ..., effect: _Optional[_Union[Effect, _Mapping]] = ..., summary: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("version", "actor", "at", "kind", "op_json", "summary", "effect", "reverts", "comment")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OP_JSON_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    REVERTS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    version: int
    actor: str
    at: str
    kind: str
    op_json: str
    summary: str
    effect: Effect
    reverts: int
    comment: str
    def __init__(self, version: _Optional[int] = ..., actor: _Optional[str] = ..., at: _Optional[str] = ..., kind: _Optional[str] = ..., op_json: _Optional[str] = ..., summary: _Optional[str] = ..., effect: _Optional[_Union[Effect, _Mapping]] = ..., reverts: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("from_version", "limit")
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    from_version: int
    limit: int
    def __init__(self, from_version: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ...) -> None: ...

class DiffRequest(_message.Message):
    __slots__ = ("from_version", "to_version")
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    from_version: int
    to_version: int
    def __init__(self, from_version: _Optional[int] = ..., to_version: _Optional[int] = ...) -> None: ...

class DiffResponse(_message.Message):
    __slots__ = ("added", "retired", "renamed", "moved", "items_moved", "id_map")
    class IdMapEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    ADDED_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    RENAMED_FIELD_NUMBER: _ClassVar[int]
    MOVED_FIELD_NUMBER: _ClassVar[int]
    ITEMS_MOVED_FIELD_NUMBER: _ClassVar[int]
    ID_MAP_FIELD_NUMBER: _ClassVar[int]
    added: _containers.RepeatedCompositeFieldContainer[Node]
    retired: _containers.RepeatedCompositeFieldContainer[Node]
    renamed: _containers.RepeatedCompositeFieldContainer[NodeChange]
    moved: _containers.RepeatedCompositeFieldContainer[NodeChange]
    items_moved: _containers.RepeatedCompositeFieldContainer[ItemMove]
    id_map: _containers.ScalarMap[int, int]
    def __init__(self, added: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., retired: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., renamed: _Optional[_Iterable[_Union[NodeChange, _Mapping]]] = ..., moved: _Optional[_Iterable[_Union[NodeChange, _Mapping]]] = ..., items_moved: _Optional[_Iterable[_Union[ItemMove, _Mapping]]] = ..., id_map: _Optional[_Mapping[int, int]] = ...) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("path", "kind", "count", "example_items")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    path: str
    kind: str
    count: int
    example_items: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, path: _Optional[str] = ..., kind: _Optional[str] = ..., count: _Optional[int] = ..., example_items: _Optional[_Iterable[str]] = ...) -> None: ...

class ListSuggestionsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListSuggestionsResponse(_message.Message):
    __slots__ = ("suggestions",)
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    def __init__(self, suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("format", "version", "with_ids")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WITH_IDS_FIELD_NUMBER: _ClassVar[int]
    format: str
    version: int
    with_ids: bool
    def __init__(self, format: _Optional[str] = ..., version: _Optional[int] = ..., with_ids: _Optional[bool] = ...) -> None: ...

class ExportResponse(_message.Message):
    __slots__ = ("text", "version")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    text: str
    version: int
    def __init__(self, text: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("from_seq", "tree_only", "feed_id")
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    TREE_ONLY_FIELD_NUMBER: _ClassVar[int]
    FEED_ID_FIELD_NUMBER: _ClassVar[int]
    from_seq: int
    tree_only: bool
    feed_id: str
    def __init__(self, from_seq: _Optional[int] = ..., tree_only: _Optional[bool] = ..., feed_id: _Optional[str] = ...) -> None: ...

class ItemState(_message.Message):
    __slots__ = ("item_id", "leaf_id", "leaf", "partition_id", "model_version", "vector", "colour", "usage")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    LEAF_ID_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    PARTITION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    COLOUR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    leaf_id: int
    leaf: str
    partition_id: int
    model_version: str
    vector: bytes
    colour: str
    usage: str
    def __init__(self, item_id: _Optional[str] = ..., leaf_id: _Optional[int] = ..., leaf: _Optional[str] = ..., partition_id: _Optional[int] = ..., model_version: _Optional[str] = ..., vector: _Optional[bytes] = ..., colour: _Optional[str] = ..., usage: _Optional[str] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("seq", "tree_edit", "reload_from", "item_upserted", "item_deleted", "route", "split", "placements")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TREE_EDIT_FIELD_NUMBER: _ClassVar[int]
    RELOAD_FROM_FIELD_NUMBER: _ClassVar[int]
    ITEM_UPSERTED_FIELD_NUMBER: _ClassVar[int]
    ITEM_DELETED_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    tree_edit: HistoryEntry
    reload_from: int
    item_upserted: ItemState
    item_deleted: str
    route: Route
    split: int
    placements: _containers.RepeatedCompositeFieldContainer[ItemState]
    def __init__(self, seq: _Optional[int] = ..., tree_edit: _Optional[_Union[HistoryEntry, _Mapping]] = ..., reload_from: _Optional[int] = ..., item_upserted: _Optional[_Union[ItemState, _Mapping]] = ..., item_deleted: _Optional[str] = ..., route: _Optional[_Union[Route, _Mapping]] = ..., split: _Optional[int] = ..., placements: _Optional[_Iterable[_Union[ItemState, _Mapping]]] = ...) -> None: ...

class ScanRequest(_message.Message):
    __slots__ = ("partitions", "item_ids", "model_version")
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedScalarFieldContainer[int]
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    model_version: str
    def __init__(self, partitions: _Optional[_Iterable[int]] = ..., item_ids: _Optional[_Iterable[str]] = ..., model_version: _Optional[str] = ...) -> None: ...

class ScanChunk(_message.Message):
    __slots__ = ("seq", "model_version", "feed_id", "items")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEED_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    model_version: str
    feed_id: str
    items: _containers.RepeatedCompositeFieldContainer[ItemState]
    def __init__(self, seq: _Optional[int] = ..., model_version: _Optional[str] = ..., feed_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ItemState, _Mapping]]] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("partition_id", "serving", "target", "ready")
    PARTITION_ID_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    partition_id: int
    serving: _containers.RepeatedScalarFieldContainer[str]
    target: _containers.RepeatedScalarFieldContainer[str]
    ready: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partition_id: _Optional[int] = ..., serving: _Optional[_Iterable[str]] = ..., target: _Optional[_Iterable[str]] = ..., ready: _Optional[_Iterable[str]] = ...) -> None: ...

class MovePartitionRequest(_message.Message):
    __slots__ = ("partition", "to")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    partition: NodeRef
    to: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partition: _Optional[_Union[NodeRef, _Mapping]] = ..., to: _Optional[_Iterable[str]] = ...) -> None: ...

class PartitionReadyRequest(_message.Message):
    __slots__ = ("partition_id", "address", "seq")
    PARTITION_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    partition_id: int
    address: str
    seq: int
    def __init__(self, partition_id: _Optional[int] = ..., address: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class SplitPartitionResponse(_message.Message):
    __slots__ = ("partitions", "items_moved", "seq")
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_MOVED_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedScalarFieldContainer[int]
    items_moved: int
    seq: int
    def __init__(self, partitions: _Optional[_Iterable[int]] = ..., items_moved: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...
