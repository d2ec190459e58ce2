"""The taxonomy's record on real databases (SQLite and PostgreSQL): migrations, edits, items,
history; and the admin seed/export commands."""

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from catalog.items import COLUMNS
from common.errors import Aborted, InvalidArgument, NotFound
from taxonomy_svc import admin, formats, ops
from taxonomy_svc.db import ItemRow, make_engine, upgrade
from taxonomy_svc.items import Incoming
from taxonomy_svc.record import Record

TSHIRTS = "Apparel/Topwear/Tshirts"
SHIRTS = "Apparel/Topwear/Shirts"
SHOES = "Footwear/Shoes/Casual Shoes"
LINES = "Apparel > Topwear > Tshirts\nApparel > Topwear > Shirts\nFootwear > Shoes > Casual Shoes\n"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def record(engine: Engine) -> Record:
    record = Record(sessionmaker(engine), partition_level=2)
    record.apply(ops.Import("lines", LINES), 0, "tester")
    return record


def _reopened(engine: Engine) -> Record:
    return Record(sessionmaker(engine), partition_level=2)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(str(tmp_path / "db" / "taxonomy.sqlite"))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_an_empty_database_has_version_zero_and_no_nodes(engine: Engine) -> None:
    record = _reopened(engine)
    assert (record.version, record.tree.nodes()) == (0, [])


def test_the_path_keyed_schema_migrates_without_losing_an_item(database_url: str) -> None:
    engine = create_engine(database_url if "://" in database_url else f"sqlite:///{database_url}")
    upgrade(engine, "0001")
    nodes = [
        ("Apparel", "Apparel", None, 1),
        ("Apparel/Topwear", "Topwear", "Apparel", 2),
        (TSHIRTS, "Tshirts", "Apparel/Topwear", 3),
        (SHIRTS, "Shirts", "Apparel/Topwear", 3),
    ]
    with engine.begin() as connection:
        for row in nodes:
            connection.execute(
                text("INSERT INTO nodes (path, name, parent, depth) VALUES (:p, :n, :a, :d)"),
                dict(zip("pnad", row, strict=True)),
            )
        for i in range(300):
            connection.execute(
                text(
                    "INSERT INTO items (id, leaf, leaf_source, title, colour, usage) "
                    "VALUES (:i, :l, 'given', :t, 'Blue', 'Casual')"
                ),
                {"i": f"item-{i}", "l": TSHIRTS if i % 3 else SHIRTS, "t": f"title {i}"},
            )
        connection.execute(text("INSERT INTO tree_version (id, version) VALUES (1, 4)"))
    engine.dispose()
    record = _reopened(make_engine(database_url))
    assert record.version == 4
    assert record.tree.nodes() == ["Apparel", "Apparel/Topwear", SHIRTS, TSHIRTS]
    stored = record.all_items()
    assert len(stored) == 300
    assert {(i.id, i.leaf, i.title) for i in stored} == {
        (f"item-{i}", TSHIRTS if i % 3 else SHIRTS, f"title {i}") for i in range(300)
    }
    (entry,) = record.history()
    assert (entry.version, entry.actor, entry.kind) == (4, "migration 0002", "import")
    moved = record.apply(ops.Rename("Apparel/Topwear", "Tops"), 4, "editor")
    assert moved.version == 5 and record.get_items(["item-1"])[0][0].leaf == "Apparel/Tops/Tshirts"


def test_an_edit_is_durable_and_the_tree_reloads_as_committed(
    engine: Engine, record: Record
) -> None:
    record.put_items([Incoming("tee", TSHIRTS)], 0.0)
    record.apply(ops.MoveNode("Apparel/Topwear", "Footwear"), record.version, "ann")
    reopened = _reopened(engine)
    assert reopened.version == record.version == 2
    assert reopened.tree.nodes() == record.tree.nodes()
    assert reopened.get_items(["tee"])[0][0].leaf == "Footwear/Topwear/Tshirts"


def test_paths_from_before_an_edit_resolve_after_a_restart(engine: Engine, record: Record) -> None:
    record.apply(ops.Rename("Apparel/Topwear", "Tops"), 1, "ann")
    tree = _reopened(engine).tree
    assert tree.path_of(tree.resolve_path(TSHIRTS)) == "Apparel/Tops/Tshirts"


def test_a_stale_edit_is_aborted_naming_the_current_version(record: Record) -> None:
    record.apply(ops.Rename("Footwear", "Shoes & More"), 1, "ann")
    with pytest.raises(Aborted, match="version 2"):
        record.apply(ops.Rename("Footwear", "Feet"), 1, "bob")


def test_a_second_process_editing_the_same_database_is_caught(
    engine: Engine, record: Record
) -> None:
    other = _reopened(engine)
    other.apply(ops.Rename("Footwear", "Feet"), 1, "bob")
    with pytest.raises(Aborted, match="version 2"):
        record.apply(ops.Rename("Apparel", "Clothes"), 1, "ann")  # its tree said 1
    record.reload()
    assert record.tree.contains("Feet/Shoes/Casual Shoes")


def test_a_dry_run_changes_nothing(engine: Engine, record: Record) -> None:
    record.put_items([Incoming("tee", TSHIRTS)], 0.0)
    applied = record.apply(ops.Merge(TSHIRTS, SHIRTS), 1, "ann", dry_run=True)
    assert not applied.applied and applied.effect["moves"][0][:1] == ["tee"]
    assert applied.effect["partitions"] == []  # same partition on both sides
    assert _reopened(engine).version == 1 and record.get_items(["tee"])[0][0].leaf == TSHIRTS


def test_history_tree_at_a_version_and_revert(record: Record) -> None:
    record.put_items([Incoming("tee", TSHIRTS), Incoming("shirt", SHIRTS)], 0.0)
    record.apply(ops.Merge(TSHIRTS, SHIRTS), 1, "ann", comment="one leaf")
    record.apply(ops.Rename("Apparel", "Clothes"), 2, "bob")
    assert [(e.version, e.actor, e.kind) for e in record.history()] == [
        (1, "tester", "import"),
        (2, "ann", "merge"),
        (3, "bob", "rename"),
    ]
    assert record.history()[1].comment == "one leaf"
    assert record.tree_at(1).nodes() == [
        "Apparel",
        "Footwear",
        "Apparel/Topwear",
        "Footwear/Shoes",
        SHIRTS,
        TSHIRTS,
        SHOES,
    ]
    assert "Clothes/Topwear/Shirts" in record.tree.nodes()
    reverted = record.apply(ops.Revert(2), 3, "cy")
    assert reverted.version == 4 and record.history()[-1].reverts == 2
    assert record.get_items(["tee"])[0][0].leaf == "Clothes/Topwear/Tshirts"
    with pytest.raises(NotFound):
        record.tree_at(99)


def test_the_final_tree_equals_a_serial_replay_of_the_audit_log(
    record: Record, tmp_path: Path
) -> None:
    record.apply(ops.AddNode("Apparel", "Bottomwear"), 1, "ann")
    record.apply(ops.MoveNode(SHIRTS, "Apparel/Bottomwear"), 2, "bob")
    record.apply(ops.Relate(SHOES, "Apparel/Bottomwear/Shirts"), 3, "cy")
    record.apply(ops.Rename("Footwear/Shoes", "Shoes"), 4, "cy")
    assert replayed(record, tmp_path) == formats.export(record.tree, 0, "json")


def replayed(record: Record, tmp_path: Path) -> str:
    """The tree a fresh record reaches by applying the audit log's ops in order."""
    engine = make_engine(str(tmp_path / "replay.sqlite"))
    replay = Record(sessionmaker(engine), partition_level=2)
    for entry in record.history():
        replay.apply(ops.op_from_json(json.loads(entry.op)), replay.version, entry.actor)
    engine.dispose()
    return formats.export(replay.tree, 0, "json")


def test_items_land_in_leaves_and_a_bad_item_fails_alone(record: Record) -> None:
    put = record.put_items(
        [
            Incoming("ok", TSHIRTS),
            Incoming("", TSHIRTS),
            Incoming("unknown", "Apparel/Topwear/Socks"),
            Incoming("inner", "Apparel/Topwear"),
            Incoming("source", TSHIRTS, leaf_source="guessed"),
            Incoming("no-leaf", ""),
        ],
        0.05,
    )
    assert [(f.index, f.item_id, f.code) for f in put.failures] == [
        (1, "", "INVALID_ARGUMENT"),
        (2, "unknown", "NOT_FOUND"),
        (3, "inner", "INVALID_ARGUMENT"),
        (4, "source", "INVALID_ARGUMENT"),
        (5, "no-leaf", "INVALID_ARGUMENT"),
    ]
    assert put.leaves == [TSHIRTS, "", "", "", "", ""]
    assert [i.id for i in record.all_items()] == ["ok"]


def test_put_items_is_an_idempotent_upsert_and_many_at_once(record: Record) -> None:
    many = [Incoming(str(i), TSHIRTS if i % 2 else SHOES) for i in range(12_000)]
    assert record.put_items(many, 0.0).failures == []
    assert record.put_items([Incoming("1", SHIRTS, "predicted", "new")], 0.0).failures == []
    found, missing = record.get_items(["1", "nope", "2"])
    assert [(i.id, i.leaf, i.leaf_source) for i in found] == [
        ("1", SHIRTS, "predicted"),
        ("2", SHOES, "given"),
    ]
    assert missing == ["nope"]
    assert record.delete_items([str(i) for i in range(12_001)])[0] == 12_000
    with pytest.raises(InvalidArgument):
        record.get_items(["1", ""])


def test_sellers_paths_and_disagreements_become_grouped_suggestions(record: Record) -> None:
    top = (("Apparel/Topwear/Shirts", 0.9), ("Apparel/Topwear/Tshirts", 0.02))
    put = record.put_items(
        [
            Incoming("k1", "Apparel/Topwear/Kurtas", predicted=top),
            Incoming("k2", "Apparel/Topwear/Kurtas", predicted=top),
            Incoming("odd", TSHIRTS, predicted=top),
        ],
        0.05,
    )
    assert put.leaves == [SHIRTS, SHIRTS, TSHIRTS]  # unknown path: the classifier's leaf
    groups = record.suggestions()
    assert [(g.path, g.kind, g.count) for g in groups] == [
        ("Apparel/Topwear/Kurtas", "new_path", 2),
        (SHIRTS, "disagreement", 1),
    ]
    accepted = record.apply(ops.Accept("Apparel/Topwear/Kurtas"), 1, "ed")
    assert (
        accepted.effect["moves"] and record.get_items(["k1"])[0][0].leaf == "Apparel/Topwear/Kurtas"
    )
    record.apply(ops.Reject(SHIRTS), 2, "ed")
    assert record.suggestions() == []
    assert [e.kind for e in record.history()] == ["import", "accept", "reject"]


def test_the_database_refuses_items_in_unknown_leaves(engine: Engine, record: Record) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(ItemRow), [{"id": "x", "leaf_id": 999, "leaf_source": "given"}])


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


def test_seed_records_the_catalog_and_seeding_twice_changes_nothing(
    tmp_path: Path, catalog_dir: Path
) -> None:
    database = str(tmp_path / "var" / "taxonomy.sqlite")
    assert admin.main(["seed", "--database", database, "--catalog", str(catalog_dir)]) == 0
    assert admin.main(["seed", "--database", database, "--catalog", str(catalog_dir)]) == 0
    record = _reopened(make_engine(database))
    assert record.version == 1 and [e.actor for e in record.history()] == ["seed"]
    assert [(i.id, i.leaf, i.title) for i in record.all_items()] == [
        (row[0], "/".join(row[1:4]), row[6]) for row in ROWS
    ]


def test_export_writes_the_tree_and_the_items_leaves(tmp_path: Path, catalog_dir: Path) -> None:
    database, out = tmp_path / "taxonomy.sqlite", tmp_path / "out" / "taxonomy.json"
    admin.main(["seed", "--database", str(database), "--catalog", str(catalog_dir)])
    assert admin.main(["export", "--database", str(database), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    leaves = {node["path"] for node in data["nodes"]} - {n["parent"] for n in data["nodes"]}
    assert leaves == {TSHIRTS, SHIRTS, SHOES}
    assert data["nodes"][0] == {"path": "Apparel", "parent": ""}
    assert [(item["id"], item["leaf"]) for item in data["items"]] == [
        (row[0], "/".join(row[1:4])) for row in ROWS
    ]
