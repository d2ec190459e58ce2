"""Taxonomy administration: seed the tree and items from a catalog, export them for training."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from catalog.items import open_catalog
from common import paths
from common.errors import ItemFailure
from common.progress import progress
from taxonomy_svc import formats
from taxonomy_svc.db import make_engine
from taxonomy_svc.items import Incoming
from taxonomy_svc.ops import Import
from taxonomy_svc.record import Record

BATCH = 5000  # items per put_items call


def seed(database: str, catalog_dir: str) -> dict[str, int]:
    """Imports the catalog's leaves as one audited edit and records its items as 'given'.

    Seeding again with the same catalog changes nothing.

    Returns:
        {"nodes_added", "items", "failed", "version"}.
    """
    with open_catalog(catalog_dir) as catalog:
        incoming = [
            Incoming(item.id, item.leaf, "given", item.title, item.colour, item.usage)
            for item in catalog.items
        ]
    engine = make_engine(database)
    try:
        record = Record(sessionmaker(engine), partition_level=0)
        leaves = sorted({item.leaf for item in incoming})
        text = "".join(formats.LINE_SEP.join(paths.split(leaf)) + "\n" for leaf in leaves)
        before = len(record.tree.active_ids())
        record.apply(Import("lines", text), record.version, "seed", comment=catalog_dir)
        added = len(record.tree.active_ids()) - before
        failures = _put_in_batches(record, incoming)
    finally:
        engine.dispose()
    for failure in failures[:10]:
        print(f"item {failure.index} ({failure.item_id!r}): {failure.message}", file=sys.stderr)
    stored = len(incoming) - len(failures)
    return {
        "nodes_added": added,
        "items": stored,
        "failed": len(failures),
        "version": record.version,
    }


def export(database: str, out: str) -> dict[str, int]:
    """Writes the tree and every item's leaf as JSON to `out`, for training and backups.

    The JSON: {"version", "nodes": [{"path", "parent"}] parents first ("" for a top-level
    node's parent), "items": [{"id", "leaf", "leaf_source"}] sorted by id}.

    Returns:
        {"nodes", "items", "version"}.
    """
    engine = make_engine(database)
    try:
        record = Record(sessionmaker(engine), partition_level=0)
        tree = record.tree
        nodes = [{"path": path, "parent": tree.parent(path)} for path in tree.nodes()]
        stored = record.all_items()
    finally:
        engine.dispose()
    data = {
        "version": record.version,
        "nodes": nodes,
        "items": [{"id": i.id, "leaf": i.leaf, "leaf_source": i.leaf_source} for i in stored],
    }
    file = Path(out)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(data))
    return {"nodes": len(nodes), "items": len(stored), "version": record.version}


def _put_in_batches(record: Record, incoming: list[Incoming]) -> list[ItemFailure]:
    failures: list[ItemFailure] = []
    with progress(
        total=len(incoming), unit="item", desc="seed", disable=len(incoming) <= BATCH
    ) as bar:
        for start in range(0, len(incoming), BATCH):
            batch = incoming[start : start + BATCH]
            failures += [
                f.at(f.index + start) for f in record.put_items(batch, suggest_below=0.0).failures
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
