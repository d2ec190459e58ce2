"""The record becomes the system of record: items' vectors per model version, the feed (one
ordered, gap-free sequence of changes) that shards follow, the routing table and the split
partitions. The feed starts at 1 with an entry per item already held. The items' vectors were
held by the shards' own logs until now and are not carried over: a catalog recorded before
this migration must be ingested again to be searched.

Revision ID: 0003
Revises: 0002
"""

import json
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "vectors",
        sa.Column("item_id", sa.Text(), sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("model_version", sa.Text(), primary_key=True),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Text(), primary_key=True),
        sa.Column("first_seq", sa.Integer(), nullable=False),
    )
    op.create_table(
        "feed",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False, server_default=""),
        sa.Column("data", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("model_version", sa.Text(), nullable=False, server_default=""),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('upsert', 'delete', 'edit', 'route', 'split')", name="ck_feed_kind"
        ),
    )
    op.create_table(
        "routes",
        sa.Column("partition_id", sa.Integer(), sa.ForeignKey("nodes.id"), primary_key=True),
        sa.Column("serving", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("ready", sa.Text(), nullable=False, server_default="[]"),
    )
    op.create_table(
        "splits",
        sa.Column("node_id", sa.Integer(), sa.ForeignKey("nodes.id"), primary_key=True),
    )
    op.create_table(
        "feed_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Text(), nullable=False),
    )
    bind = op.get_bind()
    items = bind.execute(sa.text("SELECT id, leaf_id, colour, usage FROM items ORDER BY id"))
    rows = [
        {
            "seq": seq,
            "kind": "upsert",
            "item_id": item_id,
            # the place is read again by the record when it serves; the leaf id is what counts
            "data": json.dumps({"leaf_id": leaf_id, "colour": colour, "usage": usage}),
        }
        for seq, (item_id, leaf_id, colour, usage) in enumerate(items, start=1)
    ]
    feed = sa.table(
        "feed",
        sa.column("seq", sa.Integer()),
        sa.column("kind", sa.Text()),
        sa.column("item_id", sa.Text()),
        sa.column("data", sa.Text()),
    )
    if rows:
        op.bulk_insert(feed, rows)
    bind.execute(
        sa.text("INSERT INTO feed_head (id, seq, feed_id) VALUES (1, :seq, :feed_id)"),
        {"seq": len(rows), "feed_id": uuid.uuid4().hex},
    )


def downgrade() -> None:
    for table in ("feed_head", "splits", "routes", "feed", "model_versions", "vectors"):
        op.drop_table(table)
