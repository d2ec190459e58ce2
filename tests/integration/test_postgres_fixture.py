"""The `database_url` fixture: a fresh SQLite file or PostgreSQL database that SQLAlchemy opens."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, create_engine, inspect

NOTES = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("body", Text))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def test_rows_written_are_read_back_on_a_new_connection(
    engine: Engine, request: pytest.FixtureRequest
) -> None:
    assert engine.dialect.name == request.node.callspec.params["database_url"]
    NOTES.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(NOTES.insert(), [{"id": 1, "body": "first"}, {"id": 2, "body": "é"}])
    with engine.connect() as connection:
        rows = connection.execute(NOTES.select().order_by(NOTES.c.id)).all()
    assert [tuple(row) for row in rows] == [(1, "first"), (2, "é")]


def test_each_test_gets_an_empty_database(engine: Engine) -> None:
    assert inspect(engine).get_table_names() == []
