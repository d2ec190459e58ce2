"""Loads a catalog into a running cluster through the gateway's Ingest, with a progress bar."""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from catalog.items import Catalog, CatalogItem
from common.progress import progress
from protos.visualsearch.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc


def ingest_catalog(
    stub: gateway_pb2_grpc.VisualSearchStub,
    catalog: Catalog,
    items: Sequence[CatalogItem] | None = None,
    batch: int = 64,
    workers: int = 3,
    timeout_s: float = 120.0,
    wait_visible: bool = True,
) -> tuple[int, list[common_pb2.ItemError]]:
    """Ingests `items` (the whole catalog by default), the catalog's leaf given as the seller's;
    with `wait_visible`, each batch returns once the shards can find it.

    Returns:
        How many items landed, and the errors of those that did not.
    """
    items = list(catalog.items if items is None else items)
    batches = [items[start : start + batch] for start in range(0, len(items), batch)]

    def send(chunk: Sequence[CatalogItem]) -> gateway_pb2.IngestResponse:
        request = gateway_pb2.IngestRequest(
            items=[_ingest_item(catalog, item) for item in chunk], wait_visible=wait_visible
        )
        response: gateway_pb2.IngestResponse = stub.Ingest(request, timeout=timeout_s)
        return response

    ingested, errors = 0, list[common_pb2.ItemError]()
    with (
        ThreadPoolExecutor(workers) as pool,
        progress(total=len(items), desc="ingest", unit="item") as bar,
    ):
        for response in pool.map(send, batches):
            ingested += response.ingested
            errors.extend(response.errors)
            bar.update(response.ingested + len(response.errors))
    return ingested, errors


def _ingest_item(catalog: Catalog, item: CatalogItem) -> gateway_pb2.IngestItem:
    return gateway_pb2.IngestItem(
        id=item.id,
        image=catalog.image_bytes(item.id),
        leaf=item.leaf,
        title=item.title,
        colour=item.colour,
        usage=item.usage,
    )
