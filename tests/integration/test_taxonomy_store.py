"""The taxonomy's store on a real SQLite file, and the admin seed/export commands."""

import csv
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.items import COLUMNS
from common.errors import FailedPrecondition, InvalidArgument
from taxonomy_svc import admin, store
from taxonomy_svc.db import ItemRow, make_engine
from taxonomy_svc.store import ItemRecord

TSHIRTS = "Apparel/Topwear/Tshirts"
SHIRTS = "Apparel/Topwear/Shirts"
SHOES = "Footwear/Shoes/Casual Shoes"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(str(tmp_path / "db" / "taxonomy.sqlite"))
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(engine)
    with factory.begin() as session:
        store.add_paths(session, [TSHIRTS, SHIRTS, SHOES])
    return factory


def test_make_engine_creates_the_folder_and_uses_wal_with_foreign_keys(
    tmp_path: Path, engine: Engine
) -> None:
    assert (tmp_path / "db" / "taxonomy.sqlite").is_file()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_make_engine_accepts_a_url(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'other.sqlite'}")
    with sessionmaker(engine).begin() as session:
        store.add_paths(session, [TSHIRTS])
    engine.dispose()
    assert (tmp_path / "other.sqlite").is_file()


def test_add_paths_creates_every_prefix_and_bumps_the_version_once(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        assert store.load_paths(session) == sorted(
            ["Apparel", "Apparel/Topwear", TSHIRTS, SHIRTS, "Footwear", "Footwear/Shoes", SHOES]
        )
        assert store.tree_version(session) == 1


def test_add_paths_without_news_changes_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert store.add_paths(session, [TSHIRTS, "Apparel"]) == 0
        assert store.tree_version(session) == 1
        assert store.add_paths(session, ["Apparel/Bottomwear/Jeans"]) == 2
        assert store.tree_version(session) == 2


def test_an_empty_database_has_version_zero(engine: Engine) -> None:
    with Session(engine) as session:
        assert store.tree_version(session) == 0
        assert store.load_paths(session) == []


def test_add_paths_refuses_malformed_paths(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidArgument), sessions.begin() as session:
        store.add_paths(session, ["Apparel//Socks"])


def test_nodes_cannot_grow_under_a_leaf_that_holds_items(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store.put_items(session, [ItemRecord("1", TSHIRTS)])
    with pytest.raises(FailedPrecondition, match=TSHIRTS), sessions.begin() as session:
        store.add_paths(session, [TSHIRTS + "/Polo"])


def test_put_then_get_items_in_request_order(sessions: sessionmaker[Session]) -> None:
    items = [
        ItemRecord("1", TSHIRTS, "given", "Blue tee", "Blue", "Casual"),
        ItemRecord("2", SHOES, "predicted", "Sneaker", "White", "Sports"),
    ]
    with sessions.begin() as session:
        assert store.put_items(session, items) == []
    with sessions() as session:
        found, missing = store.get_items(session, ["2", "nope", "1", "2"])
        assert found == [items[1], items[0]]
        assert missing == ["nope"]
        assert store.items_count(session) == 2


def test_put_items_is_an_idempotent_upsert(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store.put_items(session, [ItemRecord("1", TSHIRTS, title="old")])
    moved = ItemRecord("1", SHIRTS, "predicted", "new", "Red", "Formal")
    for _ in range(2):
        with sessions.begin() as session:
            assert store.put_items(session, [moved]) == []
    with sessions() as session:
        assert store.get_items(session, ["1"]) == ([moved], [])
        assert store.items_count(session) == 1


def test_a_bad_item_fails_alone(sessions: sessionmaker[Session]) -> None:
    items = [
        ItemRecord("ok", TSHIRTS),
        ItemRecord("", TSHIRTS),
        ItemRecord("unknown", "Apparel/Topwear/Socks"),
        ItemRecord("inner", "Apparel/Topwear"),
        ItemRecord("source", TSHIRTS, leaf_source="guessed"),
        ItemRecord("no-leaf", ""),
    ]
    with sessions.begin() as session:
        failures = store.put_items(session, items)
    assert [(f.index, f.item_id, f.code) for f in failures] == [
        (1, "", "INVALID_ARGUMENT"),
        (2, "unknown", "NOT_FOUND"),
        (3, "inner", "INVALID_ARGUMENT"),
        (4, "source", "INVALID_ARGUMENT"),
        (5, "no-leaf", "INVALID_ARGUMENT"),
    ]
    assert "not a leaf" in failures[2].message
    assert "Apparel/Topwear/Socks" in failures[1].message
    with sessions() as session:
        assert store.get_items(session, ["ok"])[0] == [items[0]]
        assert store.items_count(session) == 1


def test_many_items_at_once(sessions: sessionmaker[Session]) -> None:
    items = [ItemRecord(str(i), TSHIRTS if i % 2 else SHOES) for i in range(12_000)]
    with sessions.begin() as session:
        assert store.put_items(session, items) == []
    ids = [str(i) for i in reversed(range(12_001))]
    with sessions() as session:
        found, missing = store.get_items(session, ids)
    assert [item.id for item in found] == ids[1:]
    assert missing == ["12000"]
    with sessions.begin() as session:
        assert store.delete_items(session, ids) == 12_000


def test_delete_items_counts_what_it_deleted(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store.put_items(session, [ItemRecord("1", TSHIRTS), ItemRecord("2", TSHIRTS)])
    with sessions.begin() as session:
        assert store.delete_items(session, ["1", "1", "nope"]) == 1
    with sessions() as session:
        assert store.get_items(session, ["1", "2"]) == ([ItemRecord("2", TSHIRTS)], ["1"])


def test_empty_ids_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        with pytest.raises(InvalidArgument):
            store.get_items(session, ["1", ""])
        with pytest.raises(InvalidArgument):
            store.delete_items(session, [" "])


def test_the_database_refuses_items_in_unknown_leaves(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.execute(
            insert(ItemRow),
            [{"id": "x", "leaf": "Nope", "leaf_source": "given"}],
        )


def test_export_lists_nodes_parents_first_and_items(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        store.put_items(session, [ItemRecord("2", SHOES, "predicted"), ItemRecord("1", TSHIRTS)])
    with sessions() as session:
        data = store.export(session)
    assert json.loads(json.dumps(data)) == data
    assert data["version"] == 1
    assert data["nodes"][:2] == [
        {"path": "Apparel", "parent": ""},
        {"path": "Footwear", "parent": ""},
    ]
    assert {"path": TSHIRTS, "parent": "Apparel/Topwear"} in data["nodes"]
    assert data["items"] == [
        {"id": "1", "leaf": TSHIRTS, "leaf_source": "given"},
        {"id": "2", "leaf": SHOES, "leaf_source": "predicted"},
    ]


ROWS = [
    ("11", "Apparel", "Topwear", "Tshirts", "Blue", "Casual", "Blue tee"),
    ("12", "Apparel", "Topwear", "Shirts", "White", "Formal", "White shirt"),
    ("13", "Footwear", "Shoes", "Casual Shoes", "Black", "Casual", "Black sneaker"),
    ("14", "Footwear", "Shoes", "Casual Shoes", "Red", "Sports", "Red sneaker"),
]


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    (root / "images").mkdir(parents=True)
    with (root / "styles.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        writer.writerows(ROWS)
    for row in ROWS:
        Image.new("RGB", (6, 8), (10, 20, 30)).save(root / "images" / f"{row[0]}.jpg")
    return root


def _dump(database: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return [
            row
            for table in ("nodes", "items", "tree_version")
            for row in connection.execute(f"SELECT * FROM {table} ORDER BY 1")
        ]


def test_seed_records_the_catalog_and_seeding_twice_changes_nothing(
    tmp_path: Path, catalog_dir: Path
) -> None:
    database = tmp_path / "var" / "taxonomy.sqlite"
    assert admin.main(["seed", "--database", str(database), "--catalog", str(catalog_dir)]) == 0
    first = _dump(database)
    assert admin.main(["seed", "--database", str(database), "--catalog", str(catalog_dir)]) == 0
    assert _dump(database) == first
    engine = make_engine(str(database))
    with Session(engine) as session:
        found, _ = store.get_items(session, ["13", "11"])
        assert store.tree_version(session) == 1
    engine.dispose()
    assert found == [
        ItemRecord("13", SHOES, "given", "Black sneaker", "Black", "Casual"),
        ItemRecord("11", TSHIRTS, "given", "Blue tee", "Blue", "Casual"),
    ]


def test_export_writes_the_tree_and_the_items_leaves(tmp_path: Path, catalog_dir: Path) -> None:
    database, out = tmp_path / "taxonomy.sqlite", tmp_path / "out" / "taxonomy.json"
    admin.main(["seed", "--database", str(database), "--catalog", str(catalog_dir)])
    assert admin.main(["export", "--database", str(database), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    leaves = {node["path"] for node in data["nodes"]} - {n["parent"] for n in data["nodes"]}
    assert leaves == {TSHIRTS, SHIRTS, SHOES}
    assert [(item["id"], item["leaf"]) for item in data["items"]] == [
        (row[0], "/".join(row[1:4])) for row in ROWS
    ]
