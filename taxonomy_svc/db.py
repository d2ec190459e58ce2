"""The taxonomy's tables (SQLAlchemy 2.0 declarative) and the engine that opens them.

The schema is owned by the Alembic migrations in `taxonomy_svc/migrations`; `make_engine`
upgrades a database to the newest one before anything reads it.
"""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LEAF_SOURCES = ("given", "predicted")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    pass


class NodeRow(Base):
    """A taxonomy node: a stable id, a name, a parent link; archived nodes stay readable."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    replaced_by: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"))


class ItemRow(Base):
    """A catalog item and the leaf it sits in, by the leaf's id."""

    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("leaf_source IN ('given', 'predicted')", name="ck_items_leaf_source"),
    )

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    leaf_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    leaf_source: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    colour: Mapped[str] = mapped_column(Text, default="")
    usage: Mapped[str] = mapped_column(Text, default="")


class RelatedRow(Base):
    """A curated link between nodes of different branches; a < b."""

    __tablename__ = "related"
    __table_args__ = (CheckConstraint("a < b", name="ck_related_order"),)

    a: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    b: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)


class TreeVersionRow(Base):
    """One row (id 1): the version of the last committed edit; edits check it to go first."""

    __tablename__ = "tree_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class EditRow(Base):
    """The audit log: one row per committed edit, keyed by the version it made."""

    __tablename__ = "edits"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    actor: Mapped[str] = mapped_column(Text)
    at: Mapped[str] = mapped_column(Text)  # ISO 8601, UTC
    kind: Mapped[str] = mapped_column(Text)
    op: Mapped[str] = mapped_column(Text)  # the op as given, JSON
    summary: Mapped[str] = mapped_column(Text)
    effect: Mapped[str] = mapped_column(Text)  # nodes before/after, item moves, links; JSON
    reverts: Mapped[int] = mapped_column(Integer, default=0)
    comment: Mapped[str] = mapped_column(Text, default="")


class SuggestionRow(Base):
    """A seller's item proposing a path: one the tree lacks, or a leaf the classifier favours."""

    __tablename__ = "suggestions"
    __table_args__ = (UniqueConstraint("path", "kind", "item_id", name="uq_suggestion"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(Text, index=True)
    kind: Mapped[str] = mapped_column(Text)  # "new_path" or "disagreement"
    item_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="open", index=True)


class VectorRow(Base):
    """An item's embedding by one model version (little-endian float32 bytes)."""

    __tablename__ = "vectors"

    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), primary_key=True)
    model_version: Mapped[str] = mapped_column(Text, primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class ModelVersionRow(Base):
    """A model version the record holds vectors of, and the feed position of its first one."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(Text, primary_key=True)
    first_seq: Mapped[int] = mapped_column(Integer)


class FeedRow(Base):
    """One entry of the feed, the catalog's ordered, gap-free record of changes.

    kind "upsert": `item_id`, its place and attributes in `data` (JSON), and its vector of
    `model_version` if the write carried one; "delete": `item_id`; "edit": the tree version
    and every item the edit placed elsewhere, in `data`; "route": a partition's new routing;
    "split": the partition split and every item placed in one of its children, in `data`.
    """

    __tablename__ = "feed"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(Text)
    item_id: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[str] = mapped_column(Text, default="{}")
    model_version: Mapped[str] = mapped_column(Text, default="")
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class RouteRow(Base):
    """The routing table: the shards serving a partition (JSON lists of addresses), and the
    shards building it to take over. A partition without a row follows the configured rule."""

    __tablename__ = "routes"

    partition_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    serving: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text, default="[]")
    ready: Mapped[str] = mapped_column(Text, default="[]")


class SplitRow(Base):
    """A partition split by child node: each of its children is a partition."""

    __tablename__ = "splits"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)


class FeedHeadRow(Base):
    """One row (id 1): the feed's last sequence number, which writers bump to take their
    place, and the feed's identity: a follower of another database's feed must rebuild."""

    __tablename__ = "feed_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    feed_id: Mapped[str] = mapped_column(Text)


def make_engine(database: str, synchronous: str = "FULL") -> Engine:
    """Opens the database and upgrades its schema to the newest migration.

    Args:
        database: a SQLite file path (its directory is created) or a full SQLAlchemy URL
            such as `postgresql+psycopg://user@host/taxonomy`.
        synchronous: SQLite's `synchronous` setting: FULL (a commit survives power loss),
            NORMAL (survives a crash of the process, may lose the last commits on power loss).

    Returns:
        The engine; SQLite connections run in WAL mode with foreign keys enforced.
    """
    if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous={synchronous!r}: FULL, NORMAL or EXTRA")
    engine = create_engine(database if "://" in database else _sqlite_file(database))
    if engine.dialect.name == "sqlite":

        def pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cursor.close()

        event.listen(engine, "connect", pragmas)
    upgrade(engine)
    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Runs the Alembic migrations up to `revision` on `engine`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _sqlite_file(path: str) -> URL:
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite", database=str(file))
