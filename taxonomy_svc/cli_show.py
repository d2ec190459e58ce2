"""What the taxonomy command line prints: the service's answers as rich renderables."""

from collections.abc import Iterable, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree as RichTree

from protos.visualsearch.v1 import taxonomy_pb2 as pb

MOVES_SHOWN = 20


def tree(reply: pb.Tree, depth: int = 0, counts: bool = True) -> RichTree:
    """The tree, each node with its id and item count, siblings by name; archived ones dimmed.

    Args:
        reply: the service's tree.
        depth: the deepest level shown; 0 shows every level.
        counts: whether the nodes' item counts are shown.
    """
    children: dict[int, list[pb.Node]] = {}
    for node in reply.nodes:
        if not depth or node.depth <= depth:
            children.setdefault(node.parent_id, []).append(node)
    root = RichTree(Text(f"version {reply.version}", style="bold"))

    def grow(branch: RichTree, parent_id: int) -> None:
        for node in sorted(children.get(parent_id, []), key=lambda n: n.name):
            grow(branch.add(_label(node, counts)), node.id)

    grow(root, 0)
    return root


def node(detail: pb.NodeDetail) -> Table:
    """One node: where it is, what it holds, what it is related to, what replaced it."""
    shown = detail.node
    rows = [
        ("id", f"#{shown.id}"),
        ("path", shown.path),
        ("leaf", "yes" if shown.is_leaf else "no"),
        ("items", _items(shown.items)),
        ("children", ", ".join(f"{c.name} #{c.id}" for c in detail.children) or "-"),
        ("related", ", ".join(_named(r) for r in detail.related) or "-"),
    ]
    if shown.archived:
        replaced = f"#{shown.replaced_by}" if shown.replaced_by else "nothing"
        rows += [
            ("archived", f"yes, replaced by {replaced}"),
            ("resolved", _named(detail.resolved)),
        ]
    if detail.example_items:
        rows.append(("examples", ", ".join(detail.example_items)))
    grid = Table.grid(padding=(0, 2))
    for name, value in rows:
        grid.add_row(Text(name, style="bold"), Text(value))
    return grid


def edit(reply: pb.EditResponse) -> Group:
    """An edit's outcome: its summary, then what it changes."""
    state = "applied as" if reply.applied else "dry run against"
    heading = Text(f"{state} version {reply.version}: {reply.summary}", style="bold")
    return Group(heading, *effect(reply.effect))


def effect(changes: pb.Effect) -> list[RenderableType]:
    """Node changes (before -> after path), item moves, partitions and related links."""
    parts: list[RenderableType] = []
    if changes.nodes:
        rows = [(f"#{c.id}", _state(c.before), _state(c.after)) for c in changes.nodes]
        parts.append(_table("nodes", ("id", "before", "after"), rows))
    parts += moves(changes.items_moved, changes.item_moves)
    if changes.partitions:
        parts.append(Text(f"partitions whose contents change: {', '.join(changes.partitions)}"))
    for title, links in (("added", changes.related_added), ("removed", changes.related_removed)):
        if links:
            pairs = ", ".join(f"{link.a_path} <-> {link.b_path}" for link in links)
            parts.append(Text(f"related links {title}: {pairs}"))
    return parts


def moves(total: int, shown: Sequence[pb.ItemMove]) -> list[RenderableType]:
    """How many items move, and the first `MOVES_SHOWN` of them."""
    if not total:
        return []
    rows = [(m.item_id, m.from_leaf, m.to_leaf) for m in shown[:MOVES_SHOWN]]
    more = f" (first {len(rows)} shown)" if total > len(rows) else ""
    return [_table(f"items moved: {total}{more}", ("item", "from", "to"), rows)]


def history(entries: Sequence[pb.HistoryEntry]) -> Table:
    rows = [
        (
            e.version,
            e.at[:19].replace("T", " "),
            e.actor,
            e.kind,
            e.summary,
            e.reverts or "",
            e.comment,
        )
        for e in entries
    ]
    columns = ("version", "at", "actor", "kind", "summary", "reverts", "comment")
    return _table("history", columns, rows)


def diff(reply: pb.DiffResponse, old: int, new: int) -> Group:
    """Nodes added, retired, renamed and moved, items moved, and the ids that changed."""
    changed_ids = sorted((a, b) for a, b in reply.id_map.items() if a != b)
    sections = [
        _table("added", ("id", "path"), [(f"#{n.id}", n.path) for n in reply.added]),
        _table("retired", ("id", "path"), [(f"#{n.id}", n.path) for n in reply.retired]),
        _table("renamed", ("id", "old name", "new name"), _changes(reply.renamed, "name")),
        _table("moved", ("id", "old path", "new path"), _changes(reply.moved, "path")),
        *moves(len(reply.items_moved), reply.items_moved),
        _table(
            "ids", ("old id", "now"), [(f"#{a}", f"#{b}" if b else "gone") for a, b in changed_ids]
        ),
    ]
    shown = [s for s in sections if not isinstance(s, Table) or s.row_count]
    return Group(
        Text(f"version {old} -> {new or 'current'}", style="bold"), *shown or ["no changes"]
    )


def suggestions(found: Sequence[pb.Suggestion]) -> Table:
    rows = [(s.path, s.kind, s.count, ", ".join(s.example_items)) for s in found]
    return _table("suggestions", ("path", "kind", "count", "example items"), rows)


def _table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")  # folded, not cut: paths stay whole
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))  # Text: names are never markup
    return table


def _changes(changes: Iterable[pb.NodeChange], field: str) -> list[tuple[str, str, str]]:
    return [(f"#{c.id}", getattr(c.before, field), getattr(c.after, field)) for c in changes]


def _label(shown: pb.Node, counts: bool) -> Text:
    label = Text.assemble(shown.name, (f"  #{shown.id}", "cyan"))
    if counts:
        label.append(f"  {_items(shown.items)}")
    if shown.archived:
        label.append(
            f"  archived, replaced by #{shown.replaced_by}" if shown.replaced_by else "  archived"
        )
        label.stylize("dim")
    return label


def _named(shown: pb.Node) -> str:
    return f"{shown.path} #{shown.id}"


def _state(shown: pb.Node) -> str:
    """A node's state in an edit: its path, "(none)" before it exists, marked once archived."""
    if not shown.id:
        return "(none)"
    return f"{shown.path} (archived)" if shown.archived else shown.path


def _items(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"
