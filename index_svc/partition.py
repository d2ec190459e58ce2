"""A category partition: one backend index plus the item ids and leaves of its vectors."""

import json
import sys
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from common.errors import FailedPrecondition, InvalidArgument, NotFound
from index_svc.backend import make_backend

INDEX_FILE = "index.faiss"
META_FILE = "meta.json"


class Partition:
    """Vectors of one model version and dimension, keyed by item id.

    The backend knows int64 labels only; each upsert gives an item a fresh label from a
    monotonic counter, so a label is never reused for another item.
    """

    def __init__(self, name: str, model_version: str, dim: int, kind: str) -> None:
        self.name = name
        self.model_version = model_version
        self.dim = dim
        self.backend = make_backend(kind, dim)
        self._labels: dict[str, int] = {}
        self._items: dict[int, str] = {}
        self._leaves: dict[str, str] = {}
        self._next_label = 0

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._labels

    def item_ids(self) -> Iterator[str]:
        return iter(self._labels)

    def upsert(self, item_ids: Sequence[str], vectors: np.ndarray, leaves: Sequence[str]) -> None:
        """Adds vectors, replacing those of ids already held.

        Args:
            item_ids: one id per row of `vectors`; a repeated id keeps its last row.
            vectors: float32 matrix of shape (len(item_ids), dim).
            leaves: the leaf of each row.
        """
        if vectors.shape != (len(item_ids), self.dim) or len(leaves) != len(item_ids):
            raise InvalidArgument(
                f"{len(item_ids)} ids and {len(leaves)} leaves for vectors of shape "
                f"{vectors.shape} in partition {self.name!r} of dimension {self.dim}"
            )
        last = {item_id: row for row, item_id in enumerate(item_ids)}
        rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
        self.delete(last)
        labels = np.arange(self._next_label, self._next_label + len(last), dtype=np.int64)
        self._next_label += len(last)
        self.backend.add(labels, np.ascontiguousarray(vectors[rows], dtype=np.float32))
        for item_id, label, row in zip(last, labels.tolist(), rows.tolist(), strict=True):
            self._labels[item_id] = label
            self._items[label] = item_id
            self._leaves[item_id] = sys.intern(leaves[row])

    def delete(self, item_ids: Iterable[str]) -> int:
        """Removes the ids held here; returns how many were."""
        gone = [item_id for item_id in dict.fromkeys(item_ids) if item_id in self._labels]
        if not gone:
            return 0
        labels = [self._labels.pop(item_id) for item_id in gone]
        for item_id, label in zip(gone, labels, strict=True):
            del self._items[label]
            del self._leaves[item_id]
        self.backend.remove(np.array(labels, dtype=np.int64))
        return len(gone)

    def search(
        self, query: np.ndarray, k: int, exclude: Collection[str] = ()
    ) -> list[tuple[str, float, str]]:
        """The k items closest to a query, best first, as (item_id, score, leaf).

        Args:
            query: float32 vector of the partition's dimension.
            k: how many neighbours to return at most.
            exclude: item ids never returned (asked of the backend as extra neighbours).
        """
        if query.ndim != 1:
            raise InvalidArgument(f"query of shape {query.shape} is not one vector")
        if query.shape != (self.dim,):
            # The request is well formed; this partition was built by another model version.
            raise FailedPrecondition(
                f"query of dimension {query.shape[0]} for partition {self.name!r}, built by model "
                f"version {self.model_version!r} with dimension {self.dim}: re-ingest the "
                "catalog with the encoder's current version"
            )
        wanted = min(k + sum(1 for item_id in exclude if item_id in self._labels), len(self))
        if wanted <= 0:
            return []
        queries = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        scores, labels = self.backend.search(queries, wanted)
        hits = []
        for score, label in zip(scores[0].tolist(), labels[0].tolist(), strict=True):
            item_id = self._items.get(label)
            if item_id is not None and item_id not in exclude:
                hits.append((item_id, score, self._leaves[item_id]))
        return hits[:k]

    def fetch(self, item_id: str) -> tuple[np.ndarray, str]:
        """The stored vector and leaf of an item.

        Raises:
            NotFound: the item is not in this partition.
        """
        label = self._labels.get(item_id)
        if label is None:
            raise NotFound(f"item {item_id!r} is not in partition {self.name!r}")
        return self.backend.reconstruct(label), self._leaves[item_id]

    def save(self, directory: Path) -> None:
        """Writes the index and the id and leaf maps into a new directory."""
        directory.mkdir()
        self.backend.save(directory / INDEX_FILE)
        meta = {
            "name": self.name,
            "model_version": self.model_version,
            "dim": self.dim,
            "backend": self.backend.kind,
            "next_label": self._next_label,
            "item_ids": list(self._labels),
            "labels": list(self._labels.values()),
            "leaves": [self._leaves[item_id] for item_id in self._labels],
        }
        (directory / META_FILE).write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> "Partition":
        """Reads a partition written by `save`.

        Raises:
            FailedPrecondition: the index and the maps disagree on the number of vectors.
        """
        meta = json.loads((directory / META_FILE).read_text())
        partition = cls(meta["name"], meta["model_version"], meta["dim"], meta["backend"])
        partition.backend.load(directory / INDEX_FILE)
        partition._labels = dict(zip(meta["item_ids"], meta["labels"], strict=True))
        partition._items = {label: item_id for item_id, label in partition._labels.items()}
        leaves = (sys.intern(leaf) for leaf in meta["leaves"])
        partition._leaves = dict(zip(meta["item_ids"], leaves, strict=True))
        partition._next_label = meta["next_label"]
        if partition.backend.count() != len(partition):
            raise FailedPrecondition(
                f"{directory}: index holds {partition.backend.count()} vectors, "
                f"maps {len(partition)}"
            )
        return partition
