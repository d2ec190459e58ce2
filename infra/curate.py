"""Curates a catalog's taxonomy through the running service and measures search before and after.

    python -m infra.curate --catalog ../shared/datasets/fashion-small
        [--plan infra/curation/fashion_small.json] [--queries N]

It works on a copy of the catalog's workspace (var/work/<catalog>/curation/: the seeded tree,
fresh shards, the current model), so it can be run again. It starts the cluster, ingests the
catalog, searches with held-out photos, applies the plan's edits one by one through the
Taxonomy service (each against the version it read, as an editor would), searches again, and
prints precision@10 against the curated labels (and the original ones) before and after.
The figures go to var/work/<catalog>/curation/curation.json.
"""

import argparse
import json
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from catalog.items import Catalog, CatalogItem, open_catalog
from catalog.split import is_held_out
from common import config as cluster_config
from common.progress import progress
from infra import cluster, workspace
from infra.ingest import ingest_catalog
from infra.report import Tile, write_page
from protos.visualsearch.v1 import gateway_pb2, gateway_pb2_grpc, taxonomy_pb2, taxonomy_pb2_grpc

PLAN = Path(__file__).resolve().parent / "curation" / "fashion_small.json"
K = 10
SHOWN = 12  # queries on the before/after page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", type=Path, required=True, help="a catalog folder")
    parser.add_argument("--plan", type=Path, default=PLAN, help="the edits, as JSON")
    parser.add_argument("--queries", type=int, default=0, help="held-out queries (0: all)")
    args = parser.parse_args()
    catalog_dir = args.catalog.resolve()
    workdir = workspace.workdir_for(catalog_dir)
    os.environ.update(workspace.overrides(workdir))
    workspace.seed(catalog_dir, workdir)
    if not workspace.has_model(workdir):
        workspace.train(catalog_dir, workdir)
    os.environ.update(_scratch(workdir))
    config = cluster_config.load()
    plan = json.loads(args.plan.read_text())["edits"]
    cluster.up(config)
    try:
        figures = _curate(config, open_catalog(catalog_dir), plan, args.queries)
    finally:
        cluster.down(config)
    out = workdir / "curation" / "curation.json"
    out.write_text(json.dumps(figures, indent=1))
    print(f"figures: {out}")


def _scratch(workdir: Path) -> dict[str, str]:
    """A fresh copy of the seeded database, empty shards: the run starts where seeding left it."""
    scratch = workdir / "curation"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    database = scratch / "taxonomy.sqlite"
    shutil.copy(workspace.overrides(workdir)["VS_TAXONOMY_DATABASE"], database)
    return {
        "VS_TAXONOMY_DATABASE": str(database),
        "VS_INDEX_DATA_DIR": str(scratch / "shards"),
        "VS_RUN_DIR": str(scratch / "run"),
    }


def _curate(
    config: cluster_config.ClusterConfig, catalog: Catalog, plan: list[dict[str, Any]], n: int
) -> dict[str, Any]:
    token = [("authorization", f"Bearer {config.auth.token}")] if config.auth.token else []
    with (
        grpc.insecure_channel(config.address(config.gateway.port)) as front,
        grpc.insecure_channel(config.address(config.taxonomy.port)) as back,
    ):
        gateway = gateway_pb2_grpc.VisualSearchStub(front)
        taxonomy = taxonomy_pb2_grpc.TaxonomyStub(back)
        ingested, errors = ingest_catalog(gateway, catalog)
        print(f"ingested {ingested} items, {len(errors)} refused")
        held_out = [item for item in catalog.items if is_held_out(item.id)]
        queries = held_out[:: max(1, len(held_out) // n)][:n] if n else held_out
        before = _search_all(gateway, catalog, queries, token)
        started = time.monotonic()
        for edit in plan:
            _apply(taxonomy, edit, token)
        edit_s = time.monotonic() - started
        time.sleep(1.0)  # the gateway follows the change stream; give it a beat
        after = _search_all(gateway, catalog, queries, token)
        ids = sorted({q.id for q in queries} | {i for a in before + after for i in a})
        labels = {
            "curated": _leaves(taxonomy, ids, token),
            "original": {item.id: item.leaf for item in catalog.items},
        }
    _page(catalog, queries, (before, after), labels)
    return _figures(queries, before, after, labels, len(plan), edit_s)


def _apply(
    taxonomy: taxonomy_pb2_grpc.TaxonomyStub, edit: dict[str, Any], token: list[tuple[str, str]]
) -> None:
    tree = taxonomy.GetTree(
        taxonomy_pb2.GetTreeRequest(version_only=True), timeout=10, metadata=token
    )
    request = taxonomy_pb2.EditRequest(
        base_version=tree.version, op=edit_op(edit), comment=edit.get("why", "")
    )
    answer = taxonomy.Edit(request, timeout=30, metadata=token)
    moved = f", {answer.effect.items_moved} items moved" if answer.effect.items_moved else ""
    print(f"  version {answer.version}: {answer.summary}{moved}")


def edit_op(edit: dict[str, Any]) -> taxonomy_pb2.EditOp:
    """One edit of a plan file (see infra/curation/fashion_small.json) as an EditOp."""
    ref = taxonomy_pb2.NodeRef
    kind = edit["op"]
    if kind == "merge":
        return taxonomy_pb2.EditOp(
            merge=taxonomy_pb2.Merge(node=ref(path=edit["node"]), into=ref(path=edit["into"]))
        )
    if kind == "retire":
        retire = taxonomy_pb2.Retire(
            node=ref(path=edit["node"]), items_to=ref(path=edit["items_to"])
        )
        return taxonomy_pb2.EditOp(retire=retire)
    if kind == "relate":
        relate = taxonomy_pb2.Relate(a=ref(path=edit["a"]), b=ref(path=edit["b"]))
        return taxonomy_pb2.EditOp(relate=relate)
    if kind == "reassign":
        targets = [
            taxonomy_pb2.Target(
                to=ref(path=rule["to"]),
                rule=taxonomy_pb2.Rule(field="title", values=rule["title_contains"]),
            )
            for rule in edit["rules"]
        ]
        reassign = taxonomy_pb2.Reassign(
            node=ref(path=edit["node"]), targets=targets, rest=ref(path=edit["rest_to"])
        )
        return taxonomy_pb2.EditOp(reassign=reassign)
    raise ValueError(f"unknown op {kind!r} in the plan")


def _search_all(
    stub: gateway_pb2_grpc.VisualSearchStub,
    catalog: Catalog,
    queries: Sequence[CatalogItem],
    token: list[tuple[str, str]],
) -> list[list[str]]:
    """The top 10 of SearchByImage for each held-out photo, the query itself left out."""

    def search(item: CatalogItem) -> list[str]:
        request = gateway_pb2.SearchByImageRequest(image=catalog.image_bytes(item.id), k=K + 1)
        response = stub.SearchByImage(request, timeout=10, metadata=token)
        return [r.item_id for r in response.results if r.item_id != item.id][:K]

    with ThreadPoolExecutor(4) as pool:
        return list(progress(pool.map(search, queries), total=len(queries), desc="search"))


def _leaves(
    taxonomy: taxonomy_pb2_grpc.TaxonomyStub, ids: list[str], token: list[tuple[str, str]]
) -> dict[str, str]:
    leaves: dict[str, str] = {}
    for start in range(0, len(ids), 5000):
        request = taxonomy_pb2.GetItemsRequest(ids=ids[start : start + 5000])
        for item in taxonomy.GetItems(request, timeout=30, metadata=token).items:
            leaves[item.id] = item.leaf
    return leaves


def _page(
    catalog: Catalog,
    queries: Sequence[CatalogItem],
    answers: tuple[list[list[str]], list[list[str]]],
    labels: dict[str, dict[str, str]],
) -> None:
    """Before and after, side by side, for the queries whose leaf the curation changed."""
    curated, original = labels["curated"], labels["original"]
    rows: list[tuple[str, list[Tile]]] = []
    for i, query in enumerate(queries):
        if curated[query.id] == original[query.id] or len(rows) >= 2 * SHOWN:
            continue
        for when, answer in zip(("before", "after"), answers, strict=True):
            heading = f"{when}: {query.title} ({original[query.id]} -> {curated[query.id]})"
            tiles = [Tile(catalog.image_bytes(query.id), f"query {query.id}\n{curated[query.id]}")]
            tiles += [
                Tile(catalog.image_bytes(r), f"{r}\n{curated[r]}", curated[r] == curated[query.id])
                for r in answer[i]
            ]
            rows.append((heading, tiles))
    workdir = workspace.workdir_for(catalog.root) / "curation"
    page = write_page(workdir / "curation.html", "Search before and after curation", rows)
    print(f"before/after page: {page}")


def _precision(
    queries: Sequence[CatalogItem], answers: list[list[str]], label: dict[str, str]
) -> float:
    hits = [
        sum(label.get(r) == label[q.id] for r in answer) / K
        for q, answer in zip(queries, answers, strict=True)
    ]
    return sum(hits) / len(hits)


def _figures(
    queries: Sequence[CatalogItem],
    before: list[list[str]],
    after: list[list[str]],
    labels: dict[str, dict[str, str]],
    edits: int,
    edit_s: float,
) -> dict[str, Any]:
    """P@10 leaf before and after, against each set of labels, over all queries and over those
    whose leaf the curation changed."""
    curated, original = labels["curated"], labels["original"]
    changed = [i for i, q in enumerate(queries) if curated[q.id] != original[q.id]]
    figures: dict[str, Any] = {"queries": len(queries), "edits": edits, "edit_s": round(edit_s, 2)}
    for name, subset in (("all", range(len(queries))), ("changed", changed)):
        picked = [queries[i] for i in subset]
        figures[f"{name}_queries"] = len(picked)
        for label in ("curated", "original"):
            for when, answers in (("before", before), ("after", after)):
                chosen = [answers[i] for i in subset]
                value = _precision(picked, chosen, labels[label]) if picked else None
                figures[f"{name}_p10_{label}_{when}"] = value
    print(f"\nP@10 leaf over {len(queries)} held-out photos ({len(changed)} whose leaf changed):")
    for name in ("all", "changed"):
        for label in ("curated", "original"):
            values = [figures[f"{name}_p10_{label}_{when}"] for when in ("before", "after")]
            shown = " -> ".join("-" if v is None else f"{v:.3f}" for v in values)
            print(f"  {name:8s} against the {label:8s} labels: {shown}")
    return figures


if __name__ == "__main__":
    main()
