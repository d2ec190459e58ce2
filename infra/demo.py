"""The demo: catalog, train, start the cluster, ingest, search, an HTML page, stop.

    python -m infra.demo [--catalog DIR] [--epochs N]

Without --catalog it generates the embedded catalog. It trains a model the first time it meets
a catalog (or with --epochs); later runs, and runs after `make train`, use the current one.
Everything it writes goes under var/: a catalog's cluster state in var/work/<catalog name>/.
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from catalog.generate import generate
from catalog.items import Catalog, CatalogItem, open_catalog
from catalog.split import is_held_out
from infra import workspace
from infra.ingest import ingest_catalog
from infra.report import Tile, write_page
from protos.visualsearch.v1 import gateway_pb2, gateway_pb2_grpc

SHOWN_QUERIES = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", type=Path, help="a catalog folder (styles.csv + images)")
    parser.add_argument(
        "--epochs", type=int, help="train anew for N epochs (default: train once per catalog)"
    )
    parser.add_argument("--eval-queries", type=int, default=300)
    args = parser.parse_args()
    started = time.monotonic()

    catalog_dir = args.catalog.resolve() if args.catalog else generate(workspace.GENERATED)
    with (
        workspace.cluster_for(catalog_dir, args.epochs) as config,
        grpc.insecure_channel(config.address(config.gateway.port)) as channel,
    ):
        stub = gateway_pb2_grpc.VisualSearchStub(channel)
        workdir = workspace.workdir_for(catalog_dir)
        _run_queries(stub, open_catalog(catalog_dir), workdir, args.eval_queries)
    print(f"demo done in {time.monotonic() - started:.0f}s")


def _run_queries(
    stub: gateway_pb2_grpc.VisualSearchStub, catalog: Catalog, workdir: Path, n_eval: int
) -> None:
    ingested, errors = ingest_catalog(stub, catalog)
    print(f"ingested {ingested} items, {len(errors)} refused")
    for error in errors[:5]:
        print(f"  {error.item_id}: {error.code} {error.message}")
    held_out = [item for item in catalog.items if is_held_out(item.id)]
    step = max(1, len(held_out) // n_eval)
    queries = held_out[::step][:n_eval]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda item: _search(stub, catalog, item), queries))
    rows = []
    for item, response in _one_per_leaf(queries, answers)[:SHOWN_QUERIES]:
        _print_answer(item, response)
        rows.append((f"{item.title} ({item.leaf})", _tiles(catalog, item, response)))
    _print_quality(queries, answers)
    similar = stub.SimilarProducts(
        gateway_pb2.SimilarProductsRequest(product_id=queries[0].id), timeout=5
    )
    print(f"\nSimilarProducts({queries[0].id}):")
    _print_answer(queries[0], similar)
    page = write_page(workdir / "demo.html", f"Visual search: {catalog.root.name}", rows)
    print(f"\nsearch results page: {page}")


def _one_per_leaf(
    queries: list[CatalogItem], answers: list[gateway_pb2.SearchResponse]
) -> list[tuple[CatalogItem, gateway_pb2.SearchResponse]]:
    """The first query of each leaf, so that the page shows different kinds of product."""
    firsts: dict[str, tuple[CatalogItem, gateway_pb2.SearchResponse]] = {}
    for item, answer in zip(queries, answers, strict=True):
        firsts.setdefault(item.leaf, (item, answer))
    return list(firsts.values())


def _search(
    stub: gateway_pb2_grpc.VisualSearchStub, catalog: Catalog, item: CatalogItem
) -> gateway_pb2.SearchResponse:
    request = gateway_pb2.SearchByImageRequest(image=catalog.image_bytes(item.id), k=11)
    response: gateway_pb2.SearchResponse = stub.SearchByImage(request, timeout=10)
    kept = [r for r in response.results if r.item_id != item.id][:10]
    del response.results[:]
    response.results.extend(kept)
    return response


def _print_answer(item: CatalogItem, response: gateway_pb2.SearchResponse) -> None:
    best = response.query_leaves[0] if response.query_leaves else None
    predicted = f"{best.leaf} ({best.prob:.2f})" if best else "?"
    print(f"\nquery {item.id} {item.title!r}: {item.leaf}, predicted {predicted}")
    print(f"  partitions {list(response.partitions)}{' PARTIAL' if response.partial else ''}")
    for rank, result in enumerate(response.results, 1):
        mark = "=" if result.leaf == item.leaf else " "
        score = f"{result.score:.3f}"
        print(f"  {rank:2d} {mark} {score} {result.item_id:>8s} {result.leaf:40s} {result.colour}")


def _print_quality(queries: list[CatalogItem], answers: list[gateway_pb2.SearchResponse]) -> None:
    same_leaf = [
        sum(r.leaf == q.leaf for r in a.results) / 10 for q, a in zip(queries, answers, strict=True)
    ]
    same_colour = [
        sum(r.leaf == q.leaf and r.colour == q.colour for r in a.results) / 10
        for q, a in zip(queries, answers, strict=True)
    ]
    print(
        f"\n{len(queries)} held-out queries, SearchByImage top 10 (query itself left out): "
        f"share sharing the query's leaf {sum(same_leaf) / len(same_leaf):.3f}, "
        f"leaf and colour {sum(same_colour) / len(same_colour):.3f}"
    )


def _tiles(catalog: Catalog, item: CatalogItem, response: gateway_pb2.SearchResponse) -> list[Tile]:
    tiles = [Tile(catalog.image_bytes(item.id), f"query {item.id}\n{item.leaf}\n{item.colour}")]
    for result in response.results:
        caption = f"{result.item_id} {result.score:.3f}\n{result.leaf}\n{result.colour}"
        tiles.append(Tile(catalog.image_bytes(result.item_id), caption, result.leaf == item.leaf))
    return tiles


if __name__ == "__main__":
    main()
