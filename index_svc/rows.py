"""A partition's rows: the raw vectors and, per row, the item, its leaf and attributes and
whether it is live; appended to, tombstoned, never rewritten in place.

Vectors sit in fixed-size chunks, so growing never copies what is held and never reserves
more than one chunk ahead. Leaves, colours and usages are small tables of names with one
int32 code per row, so a filter is a table lookup over a code column.
"""

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from common.paths import is_within
from index_svc.specs import Filter

CHUNK = 1 << 16  # rows per vector chunk


@dataclass
class _Column:
    """Names and the int32 code of each row's name."""

    names: list[str] = field(default_factory=list)
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    _index: dict[str, int] = field(default_factory=dict)

    def encode(self, values: Sequence[str]) -> np.ndarray:
        codes = np.empty(len(values), dtype=np.int32)
        for row, value in enumerate(values):
            code = self._index.get(value)
            if code is None:
                code = self._index[value] = len(self.names)
                self.names.append(sys.intern(value))
            codes[row] = code
        return codes

    def matching(self, wanted: Sequence[str], subtree: bool = False) -> np.ndarray:
        """Per code, whether its name is wanted (or, with subtree, under a wanted path)."""
        match = is_within if subtree else str.__eq__
        return np.array([any(match(name, w) for w in wanted) for name in self.names], dtype=bool)


class Rows:
    """Rows 0..len-1 of one partition."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._chunks: list[np.ndarray] = []
        self._len = 0
        self.items: list[str] = []
        self.live = np.zeros(0, dtype=bool)
        self.dead = 0  # rows not live (tombstones)
        self.leaves, self.colours, self.usages = _Column(), _Column(), _Column()

    def __len__(self) -> int:
        return self._len

    def append(
        self,
        items: Sequence[str],
        vectors: np.ndarray,
        leaves: Sequence[str],
        colours: Sequence[str],
        usages: Sequence[str],
    ) -> np.ndarray:
        """Appends live rows; returns their numbers."""
        start = self._len
        rows = np.arange(start, start + len(items), dtype=np.int64)
        self._put_vectors(vectors)
        self.items.extend(items)
        self.live = _grown(self.live, start, np.ones(len(items), dtype=bool))
        for column, values in (
            (self.leaves, leaves),
            (self.colours, colours),
            (self.usages, usages),
        ):
            column.codes = _grown(column.codes, start, column.encode(values))
        return rows

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

    def leaf(self, row: int) -> str:
        return self.leaves.names[self.leaves.codes[row]]

    def attributes(self, row: int) -> tuple[str, str, str]:
        """(leaf, colour, usage) of a row."""
        return self.leaf(row), *(c.names[c.codes[row]] for c in (self.colours, self.usages))

    def allowed(self, wanted: Filter) -> np.ndarray:
        """Per row, whether it is live and passes the filter."""
        mask = self.live[: self._len].copy()
        for column, values, subtree in (
            (self.leaves, wanted.leaves, True),
            (self.colours, wanted.colours, False),
            (self.usages, wanted.usages, False),
        ):
            if values:
                mask &= column.matching(values, subtree)[column.codes[: self._len]]
        return mask

    def select(self, rows: np.ndarray) -> "Rows":
        """New rows holding these rows, in this order (their vectors copied)."""
        chosen = Rows(self.dim)
        chosen._put_vectors(self.vectors(rows))
        chosen.items = [self.items[row] for row in rows.tolist()]
        chosen.set_live(self.live[rows])
        for mine, theirs in zip(
            (self.leaves, self.colours, self.usages),
            (chosen.leaves, chosen.colours, chosen.usages),
            strict=True,
        ):
            theirs.names, theirs._index = list(mine.names), dict(mine._index)
            theirs.codes = mine.codes[rows]
        return chosen

    def extend(self, other: "Rows", rows: np.ndarray) -> np.ndarray:
        """Appends rows of another Rows (their vectors copied); returns their new numbers."""
        if not len(rows):
            return rows
        leaf, colour, usage = zip(*(other.attributes(r) for r in rows.tolist()), strict=True)
        added = self.append(
            [other.items[r] for r in rows.tolist()], other.vectors(rows), leaf, colour, usage
        )
        self.live[added] = other.live[rows]
        self.dead += len(rows) - int(np.count_nonzero(other.live[rows]))
        return added

    def save(self, path: str) -> dict[str, object]:
        """Writes the vectors to `path` (.npy); returns the rest as JSON-ready data."""
        np.save(path, self.vectors(np.arange(self._len, dtype=np.int64)))
        return {
            "items": self.items,
            "live": np.packbits(self.live[: self._len]).tobytes().hex(),
            **{
                name: {"names": column.names, "codes": column.codes[: self._len].tolist()}
                for name, column in self._columns()
            },
        }

    @classmethod
    def load(cls, path: str, meta: dict[str, object], dim: int) -> "Rows":
        rows = cls(dim)
        vectors = np.load(path)
        if vectors.shape[1:] != (dim,):
            raise ValueError(f"{path} holds vectors of shape {vectors.shape}, not (n, {dim})")
        rows._put_vectors(vectors)
        rows.items = list(meta["items"])  # type: ignore[call-overload]
        bits = np.frombuffer(bytes.fromhex(str(meta["live"])), dtype=np.uint8)
        rows.set_live(np.unpackbits(bits, count=rows._len).astype(bool))
        for name, column in rows._columns():
            data = meta[name]
            assert isinstance(data, dict)
            column.names = [sys.intern(n) for n in data["names"]]
            column._index = {n: code for code, n in enumerate(column.names)}
            column.codes = np.asarray(data["codes"], dtype=np.int32)
        if not len(rows.items) == len(rows.live) == rows._len:
            raise ValueError(f"{path}: {rows._len} vectors, {len(rows.items)} items")
        return rows

    def _columns(self) -> list[tuple[str, _Column]]:
        return [("leaves", self.leaves), ("colours", self.colours), ("usages", self.usages)]

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
