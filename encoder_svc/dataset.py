"""Training data: the taxonomy export's labels joined with the catalog's decoded images."""

import dataclasses
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from catalog.items import Catalog
from catalog.split import is_held_out
from common.errors import FailedPrecondition, InvalidArgument
from encoder_svc.preprocess import Limits, PreprocessParams, decode

PREDICTED = "predicted"  # a leaf the model guessed; never a training label
STATS_CHUNK = 512  # images per step of channel_stats, to bound memory


@dataclasses.dataclass(frozen=True)
class TaxonomyExport:
    """The taxonomy service's export: its version, its leaf nodes and each item's leaf."""

    version: int
    leaves: frozenset[str]
    items: dict[str, tuple[str, str]]  # item id -> (leaf, leaf_source)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """The catalog items the export places in a leaf, decoded once with the serving decode().

    `given` marks labels that came from a person, not from a model's prediction.
    """

    ids: list[str]
    leaves: list[str]
    images: np.ndarray  # uint8 (N, H, W, 3)
    held_out: np.ndarray  # bool (N,)
    given: np.ndarray  # bool (N,)
    counts: dict[str, int]  # how many items were found, skipped and why


def read_export(path: Path) -> TaxonomyExport:
    """Reads the taxonomy export (`{"version", "nodes": [{path, parent}], "items": [...]}`).

    Raises:
        InvalidArgument: the file is not such an export.
    """
    try:
        raw = json.loads(path.read_text())
        nodes = [node["path"] for node in raw["nodes"]]
        parents = {node["parent"] for node in raw["nodes"] if node.get("parent")}
        items = {
            str(item["id"]): (item["leaf"], item.get("leaf_source", "")) for item in raw["items"]
        }
        return TaxonomyExport(int(raw["version"]), frozenset(set(nodes) - parents), items)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidArgument(f"{path} is not a taxonomy export: {error!r}") from error


def load(
    catalog: Catalog, export: TaxonomyExport, params: PreprocessParams, threads: int = 2
) -> Dataset:
    """Decodes every catalog item the export places in a leaf node.

    Args:
        catalog: the open catalog (images).
        export: the taxonomy export (labels).
        params: the decoded size.
        threads: decoding threads.

    Returns:
        The decoded items; undecodable images are left out and counted.
    """
    placed = [
        item.id for item in catalog.items if export.items.get(item.id, ("", ""))[0] in export.leaves
    ]
    limits = Limits()

    def decoded(item_id: str) -> np.ndarray | None:
        try:
            return decode(catalog.image_bytes(item_id), limits, params)
        except InvalidArgument:
            return None

    with ThreadPoolExecutor(threads) as pool:
        images = list(tqdm(pool.map(decoded, placed), total=len(placed), desc="decode", unit="img"))
    ids = [item_id for item_id, image in zip(placed, images, strict=True) if image is not None]
    counts = {
        "catalog": len(catalog.items),
        "export": len(export.items),
        "placed_in_leaf": len(placed),
        "undecodable": len(placed) - len(ids),
    }
    return Dataset(
        ids=ids,
        leaves=[export.items[item_id][0] for item_id in ids],
        images=np.stack([image for image in images if image is not None])
        if ids
        else np.zeros((0, params.height, params.width, 3), np.uint8),
        held_out=np.array([is_held_out(item_id) for item_id in ids], dtype=bool),
        given=np.array([export.items[item_id][1] != PREDICTED for item_id in ids], dtype=bool),
        counts=counts,
    )


def choose_leaves(data: Dataset, min_items: int) -> tuple[list[str], dict[str, int]]:
    """The classifier's leaves: those with at least `min_items` training items.

    Args:
        data: the decoded items.
        min_items: the fewest training items a leaf needs.

    Returns:
        The chosen leaves, sorted, and the leaves left out with their training item counts.

    Raises:
        FailedPrecondition: no leaf has enough items.
    """
    counts = Counter(leaf for leaf, ok in zip(data.leaves, trainable(data), strict=True) if ok)
    chosen = sorted(leaf for leaf, count in counts.items() if count >= min_items)
    if not chosen:
        raise FailedPrecondition(f"no leaf has {min_items} or more training items")
    return chosen, {leaf: count for leaf, count in sorted(counts.items()) if count < min_items}


def trainable(data: Dataset) -> np.ndarray:
    """Items that may be trained on: labelled by a person and not held out."""
    return data.given & ~data.held_out


def channel_stats(images: np.ndarray, params: PreprocessParams) -> PreprocessParams:
    """`params` with the per-channel mean and std of `images` (uint8 N x H x W x 3)."""
    sums = np.zeros(3)
    squares = np.zeros(3)
    for start in range(0, len(images), STATS_CHUNK):
        pixels = images[start : start + STATS_CHUNK].reshape(-1, 3).astype(np.float64) / 255
        sums += pixels.sum(axis=0)
        squares += np.square(pixels).sum(axis=0)
    count = max(images.size // 3, 1)
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 1e-6))
    return dataclasses.replace(
        params,
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        std=(float(std[0]), float(std[1]), float(std[2])),
    )
