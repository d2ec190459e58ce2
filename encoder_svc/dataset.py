"""Training data: the taxonomy export's labels joined with the catalog's decoded images."""

import dataclasses
import hashlib
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from catalog.items import Catalog
from catalog.split import is_held_out
from common.errors import FailedPrecondition, InvalidArgument
from common.progress import progress
from encoder_svc.preprocess import Limits, PreprocessParams, decode

PREDICTED = "predicted"  # a leaf the model guessed; never a training label
SPLIT = "crc32(id) % 10 == 0 held out"  # catalog.split.is_held_out, recorded with each model
SMALL_LEAVES = "left out of the classifier; their items still train the ancestor and colour heads"
STATS_CHUNK = 512  # images per step of channel_stats, to bound memory


@dataclasses.dataclass(frozen=True)
class TaxonomyExport:
    """The taxonomy service's export: its version, its tree, its leaf nodes and each item's leaf."""

    version: int
    leaves: frozenset[str]
    items: dict[str, tuple[str, str]]  # item id -> (leaf, leaf_source)
    parents: dict[str, str]  # node -> its parent ("" for a root)

    def ancestors(self, node: str) -> list[str]:
        """The node's ancestors in the tree, the root first, the node itself left out."""
        chain: list[str] = []
        parent = self.parents.get(node, "")
        while parent and parent not in chain:
            chain.append(parent)
            parent = self.parents.get(parent, "")
        return chain[::-1]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """The catalog items the export places in a leaf, decoded once with the serving decode().

    `given` marks labels that came from a person, not from a model's prediction.
    """

    ids: list[str]
    leaves: list[str]
    colours: list[str]  # the catalog's baseColour of each item
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
        parents = {str(node["path"]): str(node.get("parent") or "") for node in raw["nodes"]}
        items = {
            str(item["id"]): (item["leaf"], item.get("leaf_source", "")) for item in raw["items"]
        }
        leaves = frozenset(set(parents) - set(parents.values()))
        return TaxonomyExport(int(raw["version"]), leaves, items, parents)
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
        item for item in catalog.items if export.items.get(item.id, ("", ""))[0] in export.leaves
    ]
    limits = Limits()

    def decoded(item_id: str) -> np.ndarray | None:
        try:
            return decode(catalog.image_bytes(item_id), limits, params)
        except InvalidArgument:
            return None

    with ThreadPoolExecutor(threads) as pool:
        work = pool.map(decoded, [item.id for item in placed])
        images = list(progress(work, total=len(placed), desc="decode", unit="img"))
    kept = [item for item, image in zip(placed, images, strict=True) if image is not None]
    ids = [item.id for item in kept]
    counts = {
        "catalog": len(catalog.items),
        "export": len(export.items),
        "placed_in_leaf": len(placed),
        "undecodable": len(placed) - len(ids),
    }
    return Dataset(
        ids=ids,
        leaves=[export.items[item_id][0] for item_id in ids],
        colours=[item.colour for item in kept],
        images=np.stack([image for image in images if image is not None])
        if ids
        else np.zeros((0, params.height, params.width, 3), np.uint8),
        held_out=np.array([is_held_out(item_id) for item_id in ids], dtype=bool),
        given=np.array([export.items[item_id][1] != PREDICTED for item_id in ids], dtype=bool),
        counts=counts,
    )


@dataclasses.dataclass(frozen=True)
class Labels:
    """Each head's classes and every item's class at each head (-1 where it has none)."""

    leaves: list[str]  # the classifier's outputs
    levels: list[list[str]]  # the leaves' ancestors at depth 1, 2, ... of the tree
    colours: list[str]
    leaf: np.ndarray  # int64 (N,)
    level: np.ndarray  # int64 (N, len(levels))
    colour: np.ndarray  # int64 (N,)
    left_out: dict[str, int]  # leaves with too few training items -> their training items


def label(data: Dataset, export: TaxonomyExport, min_items: int) -> Labels:
    """The classes of every head: leaves, their ancestors in the export's tree, colours.

    A class needs `min_items` training items. The items of a leaf with fewer are not the
    classifier's but still train the heads of its ancestors and of colour.

    Args:
        data: the decoded items.
        export: the taxonomy export, whose tree gives each leaf's ancestors.
        min_items: the fewest training items a class needs.

    Returns:
        The classes and each item's class index at each head.

    Raises:
        FailedPrecondition: no leaf has enough items.
    """
    leaves, left_out = choose_leaves(data, min_items)
    ok = trainable(data)
    chains = [export.ancestors(leaf) for leaf in data.leaves]
    depth = max((len(chain) for chain in chains), default=0)
    at_depth = [[chain[d] if d < len(chain) else "" for chain in chains] for d in range(depth)]
    levels = [_frequent(names, ok, min_items) for names in at_depth]
    colours = _frequent(data.colours, ok, min_items)
    return Labels(
        leaves=leaves,
        levels=levels,
        colours=colours,
        leaf=_indexes(data.leaves, leaves),
        level=np.stack([_indexes(n, c) for n, c in zip(at_depth, levels, strict=True)], axis=1)
        if depth
        else np.zeros((len(data.ids), 0), np.int64),
        colour=_indexes(data.colours, colours),
        left_out=left_out,
    )


def _frequent(names: list[str], ok: np.ndarray, min_items: int) -> list[str]:
    counts = Counter(name for name, keep in zip(names, ok, strict=True) if keep and name)
    return sorted(name for name, count in counts.items() if count >= min_items)


def _indexes(names: list[str], classes: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index.get(name, -1) for name in names], dtype=np.int64)


def seen(data: Dataset, labels: Labels, chosen: np.ndarray, min_items: int) -> dict[str, Any]:
    """What a model trained on `chosen` saw: the split, item counts, a hash of the trained ids
    (two models with the same hash learnt from the same items) and the leaves left out."""
    trained_ids = sorted(item_id for item_id, ok in zip(data.ids, chosen, strict=True) if ok)
    return {
        "split": SPLIT,
        "items": {
            **data.counts,
            "trained": int(chosen.sum()),
            "held_out": int(data.held_out.sum()),
            "predicted": int((~data.given).sum()),
            "in_small_leaves": sum(labels.left_out.values()),
        },
        "trained_ids_sha256": hashlib.sha256("\n".join(trained_ids).encode()).hexdigest(),
        "small_leaves": {"policy": SMALL_LEAVES, "min_items": min_items, "leaves": labels.left_out},
    }


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
