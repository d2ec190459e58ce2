"""Taxonomy edits as data: what an editor asks for, as the service and the audit log carry it."""

from dataclasses import dataclass
from typing import Any

Ref = int | str  # a node by id, or by its path in the tree the edit was made against

RULE_FIELDS = ("title", "colour", "usage", "id")


@dataclass(frozen=True, slots=True)
class ItemView:
    """What an edit needs to know of an item."""

    id: str
    leaf: int
    title: str = ""
    colour: str = ""
    usage: str = ""


@dataclass(frozen=True)
class AddNode:
    parent: Ref | None
    name: str
    id: int = 0  # 0: the next free id


@dataclass(frozen=True)
class Rename:
    node: Ref
    name: str


@dataclass(frozen=True)
class MoveNode:
    node: Ref
    parent: Ref | None  # None: to the top level


@dataclass(frozen=True)
class Merge:
    node: Ref
    into: Ref


@dataclass(frozen=True)
class Rule:
    """Matches an item: a title holding any of the words, or a field equal to a value."""

    field: str
    values: tuple[str, ...]

    def matches(self, item: ItemView) -> bool:
        if self.field == "title":
            title = f" {item.title.casefold()} "
            return any(f" {value.casefold()} " in title for value in self.values)
        value = {"colour": item.colour, "usage": item.usage, "id": item.id}[self.field]
        return value.casefold() in {v.casefold() for v in self.values}


@dataclass(frozen=True)
class SplitChild:
    name: str
    rule: Rule


@dataclass(frozen=True)
class Split:
    leaf: Ref
    children: tuple[SplitChild, ...]
    rest: str = ""  # the new child taking items no rule matched


@dataclass(frozen=True)
class Target:
    to: Ref
    rule: Rule


@dataclass(frozen=True)
class Reassign:
    node: Ref
    targets: tuple[Target, ...]
    rest: Ref | None = None


@dataclass(frozen=True)
class Retire:
    node: Ref
    items_to: Ref | None = None


@dataclass(frozen=True)
class Relate:
    a: Ref
    b: Ref


@dataclass(frozen=True)
class Unrelate:
    a: Ref
    b: Ref


@dataclass(frozen=True)
class Revert:
    version: int


@dataclass(frozen=True)
class Accept:
    path: str


@dataclass(frozen=True)
class Reject:
    path: str


@dataclass(frozen=True)
class Import:
    format: str  # "lines" or "json"
    text: str


Op = (
    AddNode
    | Rename
    | MoveNode
    | Merge
    | Split
    | Reassign
    | Retire
    | Relate
    | Unrelate
    | Revert
    | Accept
    | Reject
    | Import
)

KINDS: dict[type, str] = {
    AddNode: "add",
    Rename: "rename",
    MoveNode: "move",
    Merge: "merge",
    Split: "split",
    Reassign: "reassign",
    Retire: "retire",
    Relate: "relate",
    Unrelate: "unrelate",
    Revert: "revert",
    Accept: "accept",
    Reject: "reject",
    Import: "import",
}


def op_from_json(data: dict[str, Any]) -> Op:
    """The op the audit log recorded (`{"op": kind, **fields}`), to replay it."""
    fields = {key: value for key, value in data.items() if key != "op"}
    kind = {name: cls for cls, name in KINDS.items()}[data["op"]]
    if kind is Split:
        fields["children"] = tuple(
            SplitChild(c["name"], _rule_json(c["rule"])) for c in fields["children"]
        )
    if kind is Reassign:
        fields["targets"] = tuple(Target(t["to"], _rule_json(t["rule"])) for t in fields["targets"])
    op: Op = kind(**fields)
    return op


def _rule_json(data: dict[str, Any]) -> Rule:
    return Rule(data["field"], tuple(data["values"]))
