"""Nodes get stable ids; items point at their leaf by id; related links, the audit log and
sellers' suggestions get their tables. Every node and item is carried over, and the audit log
opens with one entry that creates the migrated tree.

Revision ID: 0002
Revises: 0001
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "nodes_v2",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("nodes_v2.id"), index=True),
        sa.Column("archived", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("replaced_by", sa.Integer(), sa.ForeignKey("nodes_v2.id")),
    )
    op.create_table(
        "items_v2",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("leaf_id", sa.Integer(), sa.ForeignKey("nodes_v2.id"), nullable=False),
        sa.Column("leaf_source", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False, server_default=""),
        sa.Column("colour", sa.Text(), nullable=False, server_default=""),
        sa.Column("usage", sa.Text(), nullable=False, server_default=""),
        sa.CheckConstraint("leaf_source IN ('given', 'predicted')", name="ck_items2_leaf_source"),
    )
    ids = _copy_nodes()
    _copy_items(ids)
    op.drop_table("items")
    op.drop_table("nodes")
    op.rename_table("nodes_v2", "nodes")
    op.rename_table("items_v2", "items")
    op.create_index("ix_items_leaf_id", "items", ["leaf_id"])
    op.create_table(
        "related",
        sa.Column("a", sa.Integer(), sa.ForeignKey("nodes.id"), primary_key=True),
        sa.Column("b", sa.Integer(), sa.ForeignKey("nodes.id"), primary_key=True),
        sa.CheckConstraint("a < b", name="ck_related_order"),
    )
    _create_log_tables()
    _log_migrated_tree(ids)


def _copy_nodes() -> dict[str, int]:
    """Gives every path an id, parents first, and copies the nodes; returns path -> id."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT path, name, parent FROM nodes ORDER BY depth, path"))
    ids: dict[str, int] = {}
    copied = []
    for path, name, parent in rows:
        ids[path] = len(ids) + 1
        copied.append({"id": ids[path], "name": name, "parent_id": ids.get(parent)})
    if copied:
        nodes = sa.table("nodes_v2", sa.column("id"), sa.column("name"), sa.column("parent_id"))
        bind.execute(sa.insert(nodes), copied)
    return ids


def _copy_items(ids: dict[str, int]) -> None:
    bind = op.get_bind()
    items = sa.table(
        "items_v2",
        *(sa.column(c) for c in ("id", "leaf_id", "leaf_source", "title", "colour", "usage")),
    )
    rows = bind.execute(sa.text("SELECT id, leaf, leaf_source, title, colour, usage FROM items"))
    batch: list[dict[str, object]] = []
    for item_id, leaf, source, title, colour, usage in rows:
        batch.append(
            {
                "id": item_id,
                "leaf_id": ids[leaf],
                "leaf_source": source,
                "title": title,
                "colour": colour,
                "usage": usage,
            }
        )
    for start in range(0, len(batch), 5000):
        bind.execute(sa.insert(items), batch[start : start + 5000])


def _create_log_tables() -> None:
    op.create_table(
        "edits",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("effect", sa.Text(), nullable=False),
        sa.Column("reverts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("comment", sa.Text(), nullable=False, server_default=""),
    )
    op.create_table(
        "suggestions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("path", sa.Text(), nullable=False, index=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="open", index=True),
        sa.UniqueConstraint("path", "kind", "item_id", name="uq_suggestion"),
    )


def _log_migrated_tree(ids: dict[str, int]) -> None:
    """The tree as migrated becomes the audit log's first entry, at the current version."""
    if not ids:
        return
    bind = op.get_bind()
    version = bind.execute(sa.text("SELECT version FROM tree_version WHERE id = 1")).scalar()
    if not version:
        version = 1
        bind.execute(sa.text("INSERT INTO tree_version (id, version) VALUES (1, 1)"))
    nodes = []
    for path, node_id in ids.items():
        name = path.rsplit("/", 1)[-1]
        parent = ids.get(path.rsplit("/", 1)[0], 0) if "/" in path else 0
        after = {"name": name, "parent": parent, "archived": False, "replaced_by": 0}
        nodes.append({"id": node_id, "before": None, "after": after})
    effect = {"nodes": nodes, "moves": [], "related_added": [], "related_removed": []}
    edits = sa.table(
        "edits",
        *(sa.column(c) for c in ("version", "actor", "at", "kind", "op", "summary", "effect")),
    )
    bind.execute(
        sa.insert(edits),
        [
            {
                "version": version,
                "actor": "migration 0002",
                "at": datetime.now(UTC).isoformat(),
                "kind": "import",
                "op": json.dumps({"migrated": len(ids)}),
                "summary": f"the path-keyed tree of {len(ids)} nodes, given ids",
                "effect": json.dumps(effect),
            }
        ],
    )
