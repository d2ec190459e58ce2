"""Vectors for the ANN benchmark: a catalog's real embeddings (or a seeded stand-in) and unit
vectors generated around them, leaf by leaf."""

import contextlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catalog.items import open_catalog
from catalog.split import is_held_out
from common import paths
from common.errors import FailedPrecondition
from common.feed import ItemState
from encoder_svc import registry
from encoder_svc.runtime import Encoder
from evaluation.features import embed_catalog
from infra import workspace

LEAF_ID0 = 1000  # a leaf's node id: this plus its code
PARTITION_ID = 7  # the node id every item's partition gets here
NOISE = 1.0  # a generated vector: a real one plus gaussian noise of this many leaf spreads
CHUNK = 100_000  # vectors generated at once
PARTITION_LEVEL = 2  # depth of a partition's node (common.config's default)
# The stand-in when no trained model (or no catalog) is there: a seeded gaussian mixture.
FALLBACK_SEED = 20_240_601
FALLBACK_DIM = 160  # the encoder's 128 shape + 32 colour dimensions
FALLBACK_ITEMS = 44_000
FALLBACK_TREE = (4, 6, 6)  # masters, sub-categories under each, leaves under each
# offsets, relative to a centroid's length: sub from master, leaf from sub, item from leaf
FALLBACK_SPREAD = (0.8, 0.5, 0.6)
FALLBACK_COLOURS = ("Black", "White", "Blue", "Red", "Grey", "Green", "Brown", "Pink")
FALLBACK_USAGES = ("Casual", "Formal", "Sports")


@dataclass(frozen=True)
class Column:
    """A name per row, as the names and an int32 code per row."""

    names: list[str]
    codes: np.ndarray

    @classmethod
    def of(cls, values: Sequence[str]) -> "Column":
        names, codes = np.unique(np.asarray(values, dtype=str), return_inverse=True)
        return cls([str(name) for name in names], codes.astype(np.int32))

    def values(self, rows: np.ndarray) -> list[str]:
        """The names of the given rows (shared string objects, no copies)."""
        return [self.names[code] for code in self.codes[rows].tolist()]


@dataclass(frozen=True)
class Base:
    """Unit vectors with their items' ids, leaves and attributes; `source` says what they are."""

    vectors: np.ndarray  # (n, dim) float32, unit rows
    ids: list[str]
    leaf: Column
    colour: Column
    usage: Column
    model_version: str
    source: str
    real: bool  # a trained model's embeddings of the catalog, not the stand-in

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def held_out(self) -> np.ndarray:
        """Rows of the items of the fixed held-out split (catalog.split)."""
        return np.flatnonzero([is_held_out(item_id) for item_id in self.ids])

    def spread(self) -> np.ndarray:
        """Per leaf code, the root-mean-square deviation per dimension of its items from their
        mean; leaves of one item take the median of the others."""
        count = np.bincount(self.leaf.codes, minlength=len(self.leaf.names)).astype(np.float64)
        sums = np.zeros((len(count), self.dim))
        np.add.at(sums, self.leaf.codes, self.vectors)
        means = sums / np.maximum(count, 1)[:, None]
        squares = ((self.vectors - means[self.leaf.codes]) ** 2).sum(axis=1)
        total = np.bincount(self.leaf.codes, squares, len(count))
        spread = np.sqrt(total / (np.maximum(count, 1) * self.dim))
        many = count > 1
        spread[~many] = np.median(spread[many]) if many.any() else 0.1
        return spread.astype(np.float32)

    def shares(self) -> dict[str, float]:
        """Each leaf's and each ancestor node's share of the items, by path."""
        counts = np.bincount(self.leaf.codes, minlength=len(self.leaf.names))
        found: Counter[str] = Counter()
        for name, count in zip(self.leaf.names, counts.tolist(), strict=True):
            names = paths.split(name)
            for depth in range(1, len(names) + 1):
                found[paths.join(*names[:depth])] += count
        return {path: count / len(self.ids) for path, count in found.items()}

    def within(self, node: str) -> np.ndarray:
        """Per leaf code, whether the leaf is `node` or lies under it."""
        return np.array([paths.is_within(name, node) for name in self.leaf.names], dtype=bool)

    def leaf_ids(self, node: str) -> tuple[int, ...]:
        """The node ids of the leaves at or under `node` (what a filter names)."""
        return tuple((np.flatnonzero(self.within(node)) + LEAF_ID0).tolist())


@dataclass(frozen=True)
class Items:
    """What a partition is loaded with: ids, vectors, and each row's leaf and attributes."""

    ids: list[str]
    vectors: np.ndarray
    leaves: list[str]
    leaf_ids: np.ndarray
    colours: list[str]
    usages: list[str]

    def subset(self, rows: np.ndarray) -> "Items":
        picked = rows.tolist()
        return Items(
            [self.ids[row] for row in picked],
            self.vectors[rows],
            [self.leaves[row] for row in picked],
            self.leaf_ids[rows],
            [self.colours[row] for row in picked],
            [self.usages[row] for row in picked],
        )

    def states(self) -> list[ItemState]:
        """The items as the feed carries them (Partition.upsert takes these)."""
        return [
            ItemState(
                item_id=item_id, leaf_id=leaf_id, leaf=leaf, partition_id=PARTITION_ID,
                colour=colour, usage=usage,
            )
            for item_id, leaf_id, leaf, colour, usage in zip(
                self.ids, self.leaf_ids.tolist(), self.leaves, self.colours, self.usages,
                strict=True,
            )
        ]  # fmt: skip


def items_of(base: "Base", rows: np.ndarray, vectors: np.ndarray, ids: list[str]) -> Items:
    """Items with the leaves and attributes of the base rows they were made from."""
    return Items(
        ids,
        vectors,
        base.leaf.values(rows),
        base.leaf.codes[rows] + LEAF_ID0,
        base.colour.values(rows),
        base.usage.values(rows),
    )


@dataclass(frozen=True)
class Generated:
    """Generated vectors and the base rows each was made from (its leaf and attributes)."""

    vectors: np.ndarray
    rows: np.ndarray


def generate(base: Base, n: int, seed: int, among: np.ndarray | None = None) -> Generated:
    """`n` unit vectors around the base's: each a random base vector (a leaf by the catalog's
    frequencies, then one of its items, which is any item at random) plus gaussian noise of
    NOISE times its leaf's spread per dimension, renormalised.

    Args:
        among: base rows to draw from (one node's items, say); None: all.
    """
    rng = np.random.default_rng(seed)
    pool = np.arange(len(base.ids)) if among is None else among
    rows = pool[rng.integers(0, len(pool), n)]
    spread = base.spread()
    vectors = np.empty((n, base.dim), dtype=np.float32)
    for start in range(0, n, CHUNK):
        chunk = rows[start : start + CHUNK]
        noise = rng.standard_normal((len(chunk), base.dim), dtype=np.float32)
        scale = NOISE * spread[base.leaf.codes[chunk]][:, None]
        made = base.vectors[chunk] + scale * noise
        vectors[start : start + len(chunk)] = made / np.linalg.norm(made, axis=1, keepdims=True)
    return Generated(vectors, rows)


def closest(shares: dict[str, float], target: float, candidates: Iterable[str]) -> str:
    """The candidate path whose share of the items is nearest `target` (by ratio)."""
    return min(sorted(candidates), key=lambda path: abs(np.log(shares[path] / target)))


def load(catalog: Path, cache: Path, threads: int) -> Base:
    """The catalog embedded by its trained model's current version (cached under `cache`), or
    the seeded stand-in where there is no catalog or no model; `source` says which and why."""
    try:
        version_dir = _current_model(catalog)
    except FailedPrecondition as error:
        return fallback(f"{error}")
    return _embedded(catalog, version_dir, cache, threads)


def _current_model(catalog: Path) -> Path:
    """The current model version trained for the catalog (`make train CATALOG=...`).

    Raises:
        FailedPrecondition: no catalog there, or no current model version for it.
    """
    if not (catalog / "styles.csv").is_file():
        raise FailedPrecondition(f"no catalog at {catalog}")
    models = Path(workspace.overrides(workspace.workdir_for(catalog))["VS_ENCODER_MODELS_DIR"])
    try:
        return registry.current(models).resolve()
    except FailedPrecondition:
        raise FailedPrecondition(
            f"no trained model for {catalog.name} in {models} (make train CATALOG={catalog})"
        ) from None


def _embedded(catalog: Path, version_dir: Path, cache: Path, threads: int) -> Base:
    version = registry.ModelMeta.load(version_dir).version
    stem = cache / f"embeddings-{catalog.name}-{version}"
    vectors_file, items_file = stem.with_suffix(".npy"), stem.with_suffix(".json")
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        vectors, items = np.load(vectors_file), json.loads(items_file.read_text())
        return _base(vectors, items, version, f"{catalog} embedded by {version} ({stem}.npy)")
    print(f"embedding {catalog} with {version_dir} (once: cached as {vectors_file})", flush=True)
    with open_catalog(catalog) as opened:
        features = embed_catalog(opened, {"fp32": Encoder.load(version_dir, threads)}, threads)
    vectors = np.ascontiguousarray(features.model["fp32"], dtype=np.float32)
    items = {
        "ids": [item.id for item in features.items],
        "leaves": [item.leaf for item in features.items],
        "colours": [item.colour for item in features.items],
        "usages": [item.usage for item in features.items],
    }
    cache.mkdir(parents=True, exist_ok=True)
    np.save(vectors_file, vectors)
    items_file.write_text(json.dumps(items))
    return _base(vectors, items, version, f"{catalog} embedded by {version} ({version_dir})")


def _base(vectors: np.ndarray, items: dict[str, list[str]], version: str, source: str) -> Base:
    if len(vectors) != len(items["ids"]):
        raise ValueError(f"{len(vectors)} vectors for {len(items['ids'])} items")
    return Base(
        vectors,
        items["ids"],
        Column.of(items["leaves"]),
        Column.of(items["colours"]),
        Column.of(items["usages"]),
        version,
        source,
        real=True,
    )


def fallback(reason: str) -> Base:
    """A seeded gaussian mixture shaped like a catalog: masters, sub-categories and leaves
    (of Zipf-like sizes) with nested centroids, items scattered around their leaf's."""
    rng = np.random.default_rng(FALLBACK_SEED)
    masters, subs, leaves = FALLBACK_TREE
    names = [f"M{m}/M{m}S{s}/M{m}S{s}L{x}" for m in range(masters) for s in range(subs)
             for x in range(leaves)]  # fmt: skip
    master = rng.standard_normal((masters, FALLBACK_DIM))
    sub = np.repeat(master, subs, 0) + FALLBACK_SPREAD[0] * rng.standard_normal(
        (masters * subs, FALLBACK_DIM)
    )
    centroid = np.repeat(sub, leaves, 0) + FALLBACK_SPREAD[1] * rng.standard_normal(
        (len(names), FALLBACK_DIM)
    )
    centroid /= np.linalg.norm(centroid, axis=1, keepdims=True)
    weights = rng.permutation(1.0 / np.arange(1, len(names) + 1) ** 1.1)
    codes = rng.choice(len(names), FALLBACK_ITEMS, p=weights / weights.sum())
    noise = rng.standard_normal((FALLBACK_ITEMS, FALLBACK_DIM)) / np.sqrt(FALLBACK_DIM)
    vectors = centroid[codes] + FALLBACK_SPREAD[2] * noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Base(
        vectors.astype(np.float32),
        [str(10_000 + row) for row in range(FALLBACK_ITEMS)],
        Column(names, codes.astype(np.int32)),
        Column.of(rng.choice(FALLBACK_COLOURS, FALLBACK_ITEMS).tolist()),
        Column.of(rng.choice(FALLBACK_USAGES, FALLBACK_ITEMS).tolist()),
        "fallback-mixture",
        f"FALLBACK: a seeded gaussian mixture of {len(names)} leaves (seed {FALLBACK_SEED}), "
        f"not real embeddings, because {reason}",
        real=False,
    )
