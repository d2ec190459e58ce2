"""The first schema: nodes keyed by path, items naming their leaf's path, the tree version.

A database made before migrations existed already has these tables; they are kept as they are.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "nodes" not in existing:
        op.create_table(
            "nodes",
            sa.Column("path", sa.String(), primary_key=True),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("parent", sa.String(), sa.ForeignKey("nodes.path"), index=True),
            sa.Column("depth", sa.Integer(), nullable=False),
        )
    if "items" not in existing:
        op.create_table(
            "items",
            sa.Column("id", sa.String(), primary_key=True),
            sa.Column("leaf", sa.String(), sa.ForeignKey("nodes.path"), index=True, nullable=False),
            sa.Column("leaf_source", sa.String(), nullable=False),
            sa.Column("title", sa.Text(), nullable=False),
            sa.Column("colour", sa.String(), nullable=False),
            sa.Column("usage", sa.String(), nullable=False),
            sa.CheckConstraint(
                "leaf_source IN ('given', 'predicted')", name="ck_items_leaf_source"
            ),
        )
    if "tree_version" not in existing:
        op.create_table(
            "tree_version",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("version", sa.Integer(), nullable=False),
        )
