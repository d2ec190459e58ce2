"""Taxonomy administration: seed the tree and items from a catalog, export them for training."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from catalog.items import open_catalog
from common.errors import ItemFailure
from taxonomy_svc import store
from taxonomy_svc.db import make_engine

BATCH = 5000  # items per put_items call


def seed(database: str, catalog_dir: str) -> dict[str, int]:
    """Adds the catalog's leaves to the tree and records its items as 'given', in one transaction.

    Seeding again with the same catalog changes nothing.

    Returns:
        {"nodes_added", "items", "failed", "version"}.
    """
    with open_catalog(catalog_dir) as catalog:
        records = [
            store.ItemRecord(item.id, item.leaf, "given", item.title, item.colour, item.usage)
            for item in catalog.items
        ]
    engine = make_engine(database)
    try:
        with sessionmaker(engine).begin() as session:
            added = store.add_paths(session, sorted({record.leaf for record in records}))
            failures = _put_in_batches(session, records)
            version = store.tree_version(session)
    finally:
        engine.dispose()
    for failure in failures[:10]:
        print(f"item {failure.index} ({failure.item_id!r}): {failure.message}", file=sys.stderr)
    stored = len(records) - len(failures)
    return {"nodes_added": added, "items": stored, "failed": len(failures), "version": version}


def export(database: str, out: str) -> dict[str, int]:
    """Writes the tree and every item's leaf as JSON (see store.export) to `out`.

    Returns:
        {"nodes", "items", "version"}.
    """
    engine = make_engine(database)
    try:
        with sessionmaker(engine)() as session:
            data = store.export(session)
    finally:
        engine.dispose()
    file = Path(out)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(data))
    return {"nodes": len(data["nodes"]), "items": len(data["items"]), "version": data["version"]}


def _put_in_batches(session: Session, records: list[store.ItemRecord]) -> list[ItemFailure]:
    failures: list[ItemFailure] = []
    with tqdm(total=len(records), unit="item", desc="seed", disable=len(records) <= BATCH) as bar:
        for start in range(0, len(records), BATCH):
            batch = records[start : start + BATCH]
            failures += [
                ItemFailure(f.index + start, f.item_id, f.code, f.message)
                for f in store.put_items(session, batch)
            ]
            bar.update(len(batch))
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taxonomy_svc.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    seeder = commands.add_parser("seed", help="build the tree and items from a catalog")
    seeder.add_argument("--database", required=True, help="SQLite file or SQLAlchemy URL")
    seeder.add_argument("--catalog", required=True, help="folder with styles.csv and images")
    exporter = commands.add_parser("export", help="write the tree and items' leaves as JSON")
    exporter.add_argument("--database", required=True, help="SQLite file or SQLAlchemy URL")
    exporter.add_argument("--out", required=True, help="the JSON file to write")
    args = parser.parse_args(argv)
    if args.command == "seed":
        summary = seed(args.database, args.catalog)
    else:
        summary = export(args.database, args.out)
    print(json.dumps(summary))
    return 1 if summary.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
