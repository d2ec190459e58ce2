"""A partition's rows: the raw vectors and, per row, the item, its leaf and attributes and
whether it is live; appended to, tombstoned, never rewritten in place.

Vectors sit in fixed-size chunks, so growing never copies what is held and never reserves
more than one chunk ahead. A row's leaf (path and node id), colour and usage are codes into
small tables of values, so a filter is a table lookup over a code column.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.feed import ItemState
from index_svc.specs import Filter

CHUNK = 1 << 16  # rows per vector chunk
COLUMNS = ("leaf", "leaf_id", "colour", "usage")  # the ItemState fields kept per row


@dataclass
class _Column:
    """Values and the int32 code of each row's value."""

    values: list[Any] = field(default_factory=list)
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    _index: dict[Any, int] = field(default_factory=dict)

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        codes = np.empty(len(values), dtype=np.int32)
        for row, value in enumerate(values):
            code = self._index.get(value)
            if code is None:
                code = self._index[value] = len(self.values)
                self.values.append(value)
            codes[row] = code
        return codes

    def matching(self, wanted: Collection[Any]) -> np.ndarray:
        """Per code, whether its value is wanted."""
        return np.array([value in wanted for value in self.values], dtype=bool)

    def copy(self, codes: np.ndarray) -> "_Column":
        return _Column(list(self.values), codes, dict(self._index))


class Rows:
    """Rows 0..len-1 of one partition."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._chunks: list[np.ndarray] = []
        self._len = 0
        self.items: list[str] = []
        self.live = np.zeros(0, dtype=bool)
        self.dead = 0  # rows not live (tombstones)
        self.columns = {name: _Column() for name in COLUMNS}

    def __len__(self) -> int:
        return self._len

    def append(self, items: Sequence[ItemState], vectors: np.ndarray) -> np.ndarray:
        """Appends live rows, one per item with its vector; returns their numbers."""
        values = {name: [getattr(item, name) for item in items] for name in COLUMNS}
        live = np.ones(len(items), dtype=bool)
        return self._push([item.item_id for item in items], vectors, live, values)

    def kill(self, rows: np.ndarray) -> None:
        """Tombstones live rows."""
        self.live[rows] = False
        self.dead += len(rows)

    def set_live(self, live: np.ndarray) -> None:
        """Sets every row's live flag."""
        self.live = live
        self.dead = self._len - int(np.count_nonzero(live))

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of rows, as a new (len(rows), dim) float32 matrix."""
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        chunk, offset = np.divmod(rows, CHUNK)
        for number in np.unique(chunk):
            here = chunk == number
            out[here] = self._chunks[number][offset[here]]
        return out

    def value(self, name: str, row: int) -> Any:
        """A row's value of a column (COLUMNS)."""
        column = self.columns[name]
        return column.values[column.codes[row]]

    def allowed(self, wanted: Filter) -> np.ndarray:
        """Per row, whether it is live and passes the filter."""
        mask = self.live[: self._len].copy()
        for name, values in (
            ("leaf_id", wanted.leaf_ids),
            ("colour", wanted.colours),
            ("usage", wanted.usages),
        ):
            if values:
                column = self.columns[name]
                mask &= column.matching(set(values))[column.codes[: self._len]]
        return mask

    def select(self, rows: np.ndarray) -> "Rows":
        """New rows holding these rows, in this order (their vectors copied)."""
        chosen = Rows(self.dim)
        chosen._put_vectors(self.vectors(rows))
        chosen.items = [self.items[row] for row in rows.tolist()]
        chosen.set_live(self.live[rows])
        chosen.columns = {name: c.copy(c.codes[rows]) for name, c in self.columns.items()}
        return chosen

    def extend(self, other: "Rows", rows: np.ndarray) -> np.ndarray:
        """Appends rows of another Rows (their vectors copied); returns their new numbers."""
        values = {
            name: [c.values[code] for code in c.codes[rows].tolist()]
            for name, c in other.columns.items()
        }
        items = [other.items[row] for row in rows.tolist()]
        return self._push(items, other.vectors(rows), other.live[rows], values)

    def _push(
        self, items: list[str], vectors: np.ndarray, live: np.ndarray, values: dict[str, list[Any]]
    ) -> np.ndarray:
        """Appends rows: their items, vectors, live flags and each column's values."""
        start = self._len
        self._put_vectors(vectors)
        self.items.extend(items)
        self.live = _grown(self.live, start, live)
        self.dead += len(live) - int(np.count_nonzero(live))
        for name, column in self.columns.items():
            column.codes = _grown(column.codes, start, column.encode(values[name]))
        return np.arange(start, self._len, dtype=np.int64)

    def save(self, path: str) -> dict[str, object]:
        """Writes the vectors to `path` (.npy); returns the rest as JSON-ready data."""
        np.save(path, self.vectors(np.arange(self._len, dtype=np.int64)))
        return {
            "items": self.items,
            "live": np.packbits(self.live[: self._len]).tobytes().hex(),
            **{
                name: {"values": column.values, "codes": column.codes[: self._len].tolist()}
                for name, column in self.columns.items()
            },
        }

    @classmethod
    def load(cls, path: str, meta: dict[str, Any], dim: int) -> "Rows":
        """Reads rows written by `save`.

        Raises:
            ValueError: the vectors, items and flags disagree on the number of rows.
        """
        rows = cls(dim)
        vectors = np.load(path)
        if vectors.shape[1:] != (dim,):
            raise ValueError(f"{path} holds vectors of shape {vectors.shape}, not (n, {dim})")
        rows._put_vectors(vectors)
        rows.items = list(meta["items"])
        bits = np.frombuffer(bytes.fromhex(meta["live"]), dtype=np.uint8)
        rows.set_live(np.unpackbits(bits, count=rows._len).astype(bool))
        for name in COLUMNS:
            values = meta[name]["values"]
            codes = np.asarray(meta[name]["codes"], dtype=np.int32)
            rows.columns[name] = _Column(values, codes, {v: c for c, v in enumerate(values)})
        if not len(rows.items) == len(rows.columns["leaf"].codes) == rows._len:
            raise ValueError(f"{path}: {rows._len} vectors, {len(rows.items)} items")
        return rows

    def _put_vectors(self, vectors: np.ndarray) -> None:
        done = 0
        while done < len(vectors):
            if not self._chunks or self._len % CHUNK == 0:
                self._chunks.append(np.empty((CHUNK, self.dim), dtype=np.float32))
            at = self._len % CHUNK
            take = min(CHUNK - at, len(vectors) - done)
            self._chunks[-1][at : at + take] = vectors[done : done + take]
            done += take
            self._len += take


def _grown(array: np.ndarray, used: int, tail: np.ndarray) -> np.ndarray:
    """`array[:used]` followed by `tail`, growing the array by half when it is full."""
    need = used + len(tail)
    if need > len(array):
        bigger = np.empty(max(need, len(array) + len(array) // 2, 1024), dtype=array.dtype)
        bigger[:used] = array[:used]
        array = bigger
    array[used:need] = tail
    return array
