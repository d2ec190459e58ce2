"""Shoppers' photos through a running cluster: the gateway's answers, scored as the evaluation's.

    python -m evaluation.served --catalog DIR [--gateway HOST:PORT] [--token T] [--queries N]
        [--seed S] [--out DIR]

The held-out items' photos are changed as `python -m evaluation` changes them (the same seed
gives the same photos) and sent through SearchMany, whose answers (the taxonomy's filter and
rerank included) are scored the same way: own item at 1 and in the top 10, P@10 leaf, leaf and
colour, per kind of change. Beside them, the catalog's own photos of the same items, the item
left out of its answer. Without --gateway it starts the cluster over the catalog's workspace
(as `make demo` does), ingests the whole catalog, measures and stops it. Prints a table and
writes served.json.
"""

import argparse
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from catalog.items import Catalog, CatalogItem, open_catalog
from catalog.split import is_held_out
from common import config as cluster_config
from common.progress import progress
from encoder_svc.evaluate import CUTOFF
from evaluation import report
from evaluation.features import codes_of
from evaluation.perturb import label
from evaluation.robustness import by_change, photos, score
from infra import workspace
from infra.ingest import ingest_catalog
from protos.visualsearch.v1 import gateway_pb2, gateway_pb2_grpc

WORKERS = 4  # SearchMany calls in flight
TIMEOUT_S = 30.0


def measure(
    stub: gateway_pb2_grpc.VisualSearchStub,
    catalog: Catalog,
    queries: Sequence[CatalogItem],
    seed: int,
    token: str = "",
    batch: int = cluster_config.GatewayConfig().max_batch,
) -> dict[str, Any]:
    """The changed and clean figures of the cluster's answers (module docstring).

    Returns:
        "seed", "queries", "changed" (`by_change` rows), "clean" (P@10 leaf, leaf and colour
        of the catalog's photos, the own item left out) and "failed" (queries answered with an
        error, counted as finding nothing).
    """
    ids = [item.id for item in queries]
    kinds, changed_photos = photos(catalog, ids, seed)
    metadata = (("authorization", f"Bearer {token}"),) if token else None

    def search(images: list[bytes], k: int) -> list[list[str] | None]:
        request = gateway_pb2.SearchManyRequest(
            queries=[gateway_pb2.Query(image=image) for image in images], k=k
        )
        response = stub.SearchMany(request, timeout=TIMEOUT_S, metadata=metadata)
        return [
            [hit.item_id for hit in answer.response.results]
            if answer.WhichOneof("outcome") == "response"
            else None
            for answer in response.answers
        ]

    def answers(images: list[bytes], k: int, desc: str) -> list[list[str] | None]:
        chunks = [images[start : start + batch] for start in range(0, len(images), batch)]
        found: list[list[str] | None] = []
        with (
            ThreadPoolExecutor(WORKERS) as pool,
            progress(total=len(images), desc=desc, unit="query") as bar,
        ):
            for answered in pool.map(lambda chunk: search(chunk, k), chunks):
                found += answered
                bar.update(len(answered))
        return found

    changed = answers(changed_photos, CUTOFF, "changed")
    clean = answers([catalog.image_bytes(item_id) for item_id in ids], CUTOFF + 1, "clean")
    clean = [
        None if hits is None else [hit for hit in hits if hit != item_id][:CUTOFF]
        for hits, item_id in zip(clean, ids, strict=True)
    ]
    index = {item.id: row for row, item in enumerate(catalog.items)}
    leaves = codes_with_none([item.leaf for item in catalog.items])
    colours = codes_with_none([item.colour for item in catalog.items])
    own = np.array([index[item_id] for item_id in ids], dtype=np.int64)
    clean_figures = score(answer_rows(clean, index), own, leaves, colours)
    return {
        "seed": seed,
        "queries": len(ids),
        "changed": by_change(
            answer_rows(changed, index), own, [label(k) for k in kinds], leaves, colours
        ),
        "clean": {key: value for key, value in clean_figures.items() if "own" not in key},
        "failed": {"changed": changed.count(None), "clean": clean.count(None)},
    }


def codes_with_none(values: list[str]) -> np.ndarray:
    """Each value as an integer code, with one more code (-1) for 'no item'."""
    return np.append(codes_of(values)[0], -1)


def answer_rows(found: list[list[str] | None], index: dict[str, int]) -> np.ndarray:
    """(Q, CUTOFF) catalog rows of each answer; the 'no item' row (len(index)) pads a short
    answer, a failed one, and stands for an id the catalog does not hold."""
    missing = len(index)
    rows = np.full((len(found), CUTOFF), missing, dtype=np.int64)
    for query, hits in enumerate(found):
        picked = [index.get(hit, missing) for hit in (hits or [])[:CUTOFF]]
        rows[query, : len(picked)] = picked
    return rows


def text(result: dict[str, Any]) -> str:
    """The figures as a table: each kind of change, then the catalog's own photos."""
    columns = ["queries through the cluster", *report.CHANGED_COLUMNS]
    rows = [[f"changed: {group}", *report.changed_cells(row)] for group, row in
            result["changed"].items()]  # fmt: skip
    clean = result["clean"]
    leaf, colour = clean["p_at_10_leaf"], clean["p_at_10_leaf_colour"]
    rows.append(
        ["clean (own left out)", str(clean["queries"]), "-", "-", f"{leaf:.3f}", f"{colour:.3f}"]
    )
    failed = result["failed"]
    return (
        report.text_table(columns, rows)
        + f"\nseed {result['seed']}; answered with an error: {failed['changed']} changed, "
        f"{failed['clean']} clean"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True, help="catalog folder")
    parser.add_argument(
        "--gateway", help="a running gateway holding the catalog; default: start one, ingest"
    )
    parser.add_argument("--token", default="", help="a bearer token with the reader role")
    parser.add_argument("--queries", type=int, help="the first N held-out items; default all")
    parser.add_argument("--seed", type=int, default=0, help="draws the changed photos")
    parser.add_argument("--out", type=Path, help="default var/work/<catalog>/served")
    args = parser.parse_args(argv)
    catalog_dir = args.catalog.resolve()
    with open_catalog(catalog_dir) as catalog:
        queries = [item for item in catalog.items if is_held_out(item.id)][: args.queries]
        if args.gateway:
            result = _measure_at(args.gateway, catalog, queries, args.seed, args.token)
        else:
            with workspace.cluster_for(catalog_dir) as config:
                address = config.address(config.gateway.port)
                result = _measure_at(address, catalog, queries, args.seed, args.token, ingest=True)
    print(text(result))
    out = args.out or workspace.workdir_for(catalog_dir) / "served"
    out.mkdir(parents=True, exist_ok=True)
    (out / "served.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'served.json'}")


def _measure_at(
    address: str,
    catalog: Catalog,
    queries: list[CatalogItem],
    seed: int,
    token: str,
    ingest: bool = False,
) -> dict[str, Any]:
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.VisualSearchStub(channel)
        if ingest:
            ingested, errors = ingest_catalog(stub, catalog)
            print(f"ingested {ingested} items, {len(errors)} refused", flush=True)
        return measure(stub, catalog, queries, seed, token)


if __name__ == "__main__":
    main()
