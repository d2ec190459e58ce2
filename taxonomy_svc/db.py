"""The taxonomy's tables (SQLAlchemy 2.0 declarative) and the engine that opens them."""

from pathlib import Path
from typing import Any

from sqlalchemy import CheckConstraint, Engine, ForeignKey, Text, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

LEAF_SOURCES = ("given", "predicted")


class Base(DeclarativeBase):
    pass


class NodeRow(Base):
    """A taxonomy node, keyed by its path; the tree's edges are the parent links."""

    __tablename__ = "nodes"

    path: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    parent: Mapped[str | None] = mapped_column(ForeignKey("nodes.path"), index=True)
    depth: Mapped[int]


class ItemRow(Base):
    """A catalog item and the leaf it sits in."""

    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("leaf_source IN ('given', 'predicted')", name="ck_items_leaf_source"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    leaf: Mapped[str] = mapped_column(ForeignKey("nodes.path"), index=True)
    leaf_source: Mapped[str]
    title: Mapped[str] = mapped_column(Text, default="")
    colour: Mapped[str] = mapped_column(default="")
    usage: Mapped[str] = mapped_column(default="")


class TreeVersionRow(Base):
    """One row (id 1): bumped by every change to the tree, so readers can tell it moved."""

    __tablename__ = "tree_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int]


def make_engine(database: str) -> Engine:
    """Opens the database and creates any missing table.

    Tables are created here until the schema gets Alembic migrations.

    Args:
        database: a SQLite file path (its directory is created) or a full SQLAlchemy URL
            such as `postgresql+psycopg://user@host/taxonomy`.

    Returns:
        The engine; SQLite connections run in WAL mode with foreign keys enforced.
    """
    engine = create_engine(database if "://" in database else _sqlite_file(database))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine


def _sqlite_file(path: str) -> URL:
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite", database=str(file))


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # With WAL, NORMAL stays consistent after a crash and skips an fsync per commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
