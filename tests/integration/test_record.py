"""The taxonomy's record on real databases (SQLite and PostgreSQL): migrations, edits, items,
history; and the admin seed/export commands."""

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
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


DIM = 4


def _floats(*values: float) -> bytes:
    return np.array(values, dtype="<f4").tobytes()


def _with_vector(item_id: str, leaf: str, seed: int, model_version: str = "m1") -> Incoming:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype("<f4").tobytes()
    return Incoming(item_id, leaf, vector=vector, model_version=model_version)


def test_the_feed_is_gap_free_and_in_commit_order_across_puts_deletes_and_edits(
    record: Record,
) -> None:
    put = record.put_items([_with_vector("a", TSHIRTS, 1), _with_vector("b", SHOES, 2)], 0.0)
    deleted, delete_seq = record.delete_items(["a", "nope"])
    renamed = record.apply(ops.Rename("Footwear", "Feet"), record.version, "ann")
    again = record.put_items([_with_vector("c", SHIRTS, 3)], 0.0)

    changes = record.changes(0, 1000)

    assert changes is not None
    assert [c.seq for c in changes] == list(range(1, record.seq + 1))
    assert [(c.kind, c.item_id) for c in changes[1:]] == [
        ("upsert", "a"),
        ("upsert", "b"),
        ("delete", "a"),
        ("edit", ""),
        ("upsert", "c"),
    ]
    assert (put.seq, deleted, delete_seq, renamed.seq, again.seq) == (3, 1, 4, 5, 6)
    assert (
        changes[2].item is not None and changes[2].item.vector == _with_vector("b", SHOES, 2).vector
    )
    assert changes[4].version == renamed.version
    assert [c.seq for c in record.changes(4, 1) or []] == [5]


def test_an_edit_moving_a_leaf_to_another_partition_places_its_items_there(
    record: Record,
) -> None:
    record.put_items(
        [
            _with_vector("t1", TSHIRTS, 1),
            _with_vector("t2", TSHIRTS, 2),
            _with_vector("s", SHIRTS, 3),
        ],
        0.0,
    )
    shoes = record.tree.find("Footwear/Shoes")

    moved = record.apply(ops.MoveNode(TSHIRTS, "Footwear/Shoes"), record.version, "ann")

    (change,) = record.changes(moved.seq - 1, 10) or []
    assert (change.seq, change.kind, change.version) == (moved.seq, "edit", moved.version)
    assert [(p.item_id, p.leaf, p.partition_id) for p in change.placements] == [
        ("t1", "Footwear/Shoes/Tshirts", shoes),
        ("t2", "Footwear/Shoes/Tshirts", shoes),
    ]
    assert {p.leaf_id for p in change.placements} == {record.tree.find("Footwear/Shoes/Tshirts")}
    scanned = record.scan([shoes], [], "m1")
    assert [i.item_id for i in scanned.items] == ["t1", "t2"]


def test_scan_returns_exactly_the_items_and_vectors_as_of_its_seq(record: Record) -> None:
    items = [_with_vector(f"t{n}", TSHIRTS, n) for n in range(5)]
    record.put_items([*items, _with_vector("shoe", SHOES, 9), Incoming("bare", SHIRTS)], 0.0)
    record.put_items([_with_vector("t1", TSHIRTS, 77)], 0.0)  # a new vector replaces the old
    record.put_items([_with_vector("old", SHIRTS, 5, model_version="m0")], 0.0)
    record.delete_items(["t2"])
    topwear = record.tree.find("Apparel/Topwear")

    scanned = record.scan([topwear], [], "m1")
    named = record.scan([], ["t1", "shoe", "bare", "t2"], "m1")
    record.put_items([_with_vector("later", TSHIRTS, 8)], 0.0)
    latest = record.scan([], [], "")

    assert scanned.seq == named.seq == record.seq - 1 and scanned.model_version == "m1"
    assert {i.item_id: i.vector for i in scanned.items} == {
        "t0": items[0].vector,
        "t1": _with_vector("t1", TSHIRTS, 77).vector,
        "t3": items[3].vector,
        "t4": items[4].vector,
    }
    assert {(i.item_id, i.leaf, i.partition_id) for i in scanned.items} == {
        (f"t{n}", TSHIRTS, topwear) for n in (0, 1, 3, 4)
    }
    assert [i.item_id for i in named.items] == ["shoe", "t1"]
    assert (latest.seq, latest.model_version) == (record.seq, "m0")
    assert [(i.item_id, i.vector) for i in latest.items] == [
        ("old", _with_vector("", "", 5).vector)
    ]


def test_a_follower_behind_what_the_feed_keeps_is_told_to_rebuild(engine: Engine) -> None:
    record = Record(sessionmaker(engine), partition_level=2, feed_keep=10)
    record.apply(ops.Import("lines", LINES), 0, "tester")
    for n in range(30):
        record.put_items([_with_vector(f"i{n}", TSHIRTS, n)], 0.0)

    kept = record.changes(record.seq - 10, 100)

    assert record.changes(0, 100) is None
    assert record.changes(record.seq - 11, 100) is None
    assert kept is not None and [c.seq for c in kept] == list(range(record.seq - 9, record.seq + 1))
    assert record.changes(record.seq, 100) == []
    assert record.changes(record.seq + 1, 100) is None  # past the head: a restored record


def test_a_bad_vector_is_refused_for_its_item_alone(record: Record) -> None:
    record.put_items([_with_vector("first", TSHIRTS, 1)], 0.0)  # m1 vectors are 4 wide

    put = record.put_items(
        [
            _with_vector("ok", TSHIRTS, 2),
            Incoming("narrow", TSHIRTS, vector=_floats(1, 2, 3), model_version="m1"),
            Incoming("nan", TSHIRTS, vector=_floats(1, float("nan"), 3, 4), model_version="m1"),
            Incoming("inf", TSHIRTS, vector=_floats(1, float("inf"), 3, 4), model_version="m1"),
            Incoming("unversioned", TSHIRTS, vector=_floats(1, 2, 3, 4)),
            Incoming("ragged", TSHIRTS, vector=b"12345", model_version="m1"),
            Incoming("other", SHOES, vector=_floats(1, 2, 3, 4, 5, 6), model_version="m2"),
        ],
        0.0,
    )

    assert [(f.index, f.item_id, f.code) for f in put.failures] == [
        (1, "narrow", "INVALID_ARGUMENT"),
        (2, "nan", "INVALID_ARGUMENT"),
        (3, "inf", "INVALID_ARGUMENT"),
        (4, "unversioned", "INVALID_ARGUMENT"),
        (5, "ragged", "INVALID_ARGUMENT"),
    ]
    assert "model_version" in put.failures[3].message
    assert [i.id for i in record.all_items()] == ["first", "ok", "other"]
    upserted = [c.item_id for c in record.changes(0, 100) or [] if c.kind == "upsert"]
    assert upserted == ["first", "ok", "other"]
    assert [i.item_id for i in record.scan([], [], "m1").items] == ["first", "ok"]


def test_a_scan_streams_the_items_as_of_its_seq_while_writes_go_on(record: Record) -> None:
    record.put_items([_with_vector(f"t{n}", TSHIRTS, n) for n in range(6)], 0.0)
    chunks = record.scan_chunks([], [], "m1", chunk=2)
    first = next(chunks)
    # writes committed while the scan is under way: neither is seen, and neither waits for it
    record.put_items([_with_vector("later", TSHIRTS, 8)], 0.0)
    record.delete_items(["t0"])
    rest = list(chunks)

    assert first.seq == record.seq - 2
    assert all(chunk.seq == first.seq for chunk in rest)
    assert [i.item_id for c in rest for i in c.items] == [f"t{n}" for n in range(6)]
    assert max(len(c.items) for c in rest) == 2
