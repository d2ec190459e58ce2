"""The tree as text: the public product taxonomies' line format, and JSON.

Lines: one node per line, names joined by " > ", optionally its id in front ("123 - "), the
way Google's product taxonomy is published; lines starting with "#" are comments. Every node
has its own line, parents before children, siblings by name. JSON: {"version", "nodes":
[{"id", "path", "name", "parent_id"}], "related": [[path, path]]}.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from common import paths
from common.errors import InvalidArgument
from taxonomy_svc.tree import ROOT, Tree

LINE_SEP = " > "
FORMATS = ("lines", "json")
_ID_PREFIX = re.compile(r"^(\d+)\s+-\s+(.*)$")


@dataclass(frozen=True)
class Entry:
    """One path of an imported text, with the ids it gives each prefix (0: none given)."""

    path: str
    ids: tuple[int, ...]


def export(tree: Tree, version: int, fmt: str, with_ids: bool = False) -> str:
    """The tree's active nodes as text in `fmt`.

    Raises:
        InvalidArgument: an unknown format.
    """
    order = sorted(tree.active_ids(), key=lambda i: paths.split(tree.path_of(i)))
    if _checked(fmt) == "json":
        nodes = [_node_json(tree, node_id) for node_id in order]
        related = sorted([tree.path_of(a), tree.path_of(b)] for a, b in tree.related)
        return json.dumps({"version": version, "nodes": nodes, "related": related}, indent=1)
    lines = [_line(tree, node_id, with_ids) for node_id in order]
    return "".join(line + "\n" for line in lines)


def parse(fmt: str, text: str) -> list[Entry]:
    """The paths a text names, with any ids it gives them, in the text's order.

    Raises:
        InvalidArgument: an unknown format, malformed JSON, or a path with an empty name.
    """
    if _checked(fmt) == "json":
        nodes = _json(text).get("nodes", [])
        ids = {node["path"]: int(node.get("id", 0)) for node in nodes}
        return [_entry(paths.split(node["path"]), ids) for node in nodes]
    given: dict[str, int] = {}
    named: list[list[str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ID_PREFIX.match(line)
        names = [name.strip() for name in (match.group(2) if match else line).split(">")]
        if not all(names):
            raise InvalidArgument(f"line {number} has an empty name: {raw!r}")
        if match:
            given[paths.join(*names)] = int(match.group(1))
        named.append(names)
    return [_entry(names, given) for names in named]


def parse_related(fmt: str, text: str) -> list[tuple[str, str]]:
    """The related links a JSON text names (the line format has none)."""
    if _checked(fmt) != "json":
        return []
    return [(a, b) for a, b in _json(text).get("related", [])]


def _entry(names: list[str], ids: dict[str, int]) -> Entry:
    prefixes = [paths.join(*names[:depth]) for depth in range(1, len(names) + 1)]
    return Entry(prefixes[-1], tuple(ids.get(prefix, 0) for prefix in prefixes))


def _line(tree: Tree, node_id: int, with_ids: bool) -> str:
    text = LINE_SEP.join(paths.split(tree.path_of(node_id)))
    return f"{node_id} - {text}" if with_ids else text


def _node_json(tree: Tree, node_id: int) -> dict[str, Any]:
    node = tree.node(node_id)
    parent = node.parent if node.parent != ROOT else 0
    return {"id": node_id, "path": tree.path_of(node_id), "name": node.name, "parent_id": parent}


def _json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidArgument(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("the JSON must be an object with 'nodes'")
    return data


def _checked(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidArgument(f"format {fmt!r} is not one of {FORMATS}")
    return fmt
