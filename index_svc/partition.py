"""A category partition: an index of one spec over rows that keep every raw vector, its item,
leaf and attributes.

A row is never rewritten: an upsert appends one and tombstones the item's former row, a
delete tombstones. Tombstones are kept out of searches inside the index (a bitmap of allowed
rows), and so are rows a filter refuses; a rebuild (`Rebuild`) later drops them, and is also
how a partition moves to another spec: trained once it holds enough vectors (until then it
searches exactly), or switched as it grows.
"""

import dataclasses
import functools
import json
import logging
import math
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from common.errors import FailedPrecondition, InvalidArgument, NotFound
from common.feed import ItemState
from index_svc.backend import Backend, make_backend
from index_svc.rows import Rows
from index_svc.specs import EVERYTHING, Filter, Policy, SearchParams, training_size

log = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
META_FILE = "meta.json"
FILTERS_KEPT = 8  # filters whose rows a partition remembers between writes
FILTER_BYTES = 64 << 20  # and at most this much of them (the newest is always kept)
ADD_STEP = 50_000  # vectors added to a rebuilt index at once (a log line per step)

Hit = tuple[str, float, str]  # item id, score (higher is closer), leaf


@dataclass
class Rebuild:
    """A new index of `spec` over the rows live when it began (`order`: their old numbers, in
    their new order), then the rows appended since. Partition.begin and Partition.catch_up
    need the partition's writes held off, `build` and `add` nothing (searches and writes go
    on meanwhile), Partition.install everything held off."""

    spec: str
    source: Rows
    order: np.ndarray
    upto: int  # the old rows [0, upto) are in `order` or were dead when it began
    rows: Rows | None = None
    backend: Backend | None = None
    row_of: dict[str, int] = field(default_factory=dict)

    def build(self, stop: threading.Event) -> bool:
        """Copies the rows (those of a row appended to `source` meanwhile are not read), then
        trains and fills the new index with them; gives up (False) once `stop` is set."""
        self.rows = self.source.select(self.order)
        self.backend = _built(self.spec, self.rows.vectors(np.arange(len(self.rows))), stop)
        self.row_of = {item_id: row for row, item_id in enumerate(self.rows.items)}
        return not stop.is_set()

    def add(self, vectors: np.ndarray) -> None:
        assert self.backend is not None, "add before build"
        self.backend.add(vectors)


@dataclass(frozen=True)
class _Allowed:
    """The rows a filter lets through: listed when few (searched exactly), else a bitmap."""

    count: int
    rows: np.ndarray | None = None
    vectors: np.ndarray | None = None  # of `rows`
    bitmap: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.rows, self.vectors, self.bitmap) if a is not None)


class Partition:
    """Vectors of one model version and dimension, keyed by item id. Searches may run side by
    side; writes, and a rebuild's `begin` and `install`, must each run alone."""

    def __init__(self, name: str, model_version: str, dim: int, policy: Policy) -> None:
        self.name = name
        self.model_version = model_version
        self.dim = dim
        self.policy = policy
        self.rows = Rows(dim)
        self._row_of: dict[str, int] = {}
        self.backend = make_backend(self._reachable(0), dim)
        self._live_bitmap: np.ndarray | None = None  # of the live rows, made at first need
        self._filtered: dict[Filter, _Allowed] = {}  # the rows of recent filters, until a write

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row_of

    @property
    def spec(self) -> str:
        return self.backend.spec

    def item_ids(self) -> Iterator[str]:
        return iter(self._row_of)

    def upsert(self, items: Sequence[ItemState], vectors: np.ndarray) -> None:
        """Adds vectors, replacing those of items already held. The first write to an empty
        partition picks the spec its size calls for (training on it where it can).

        Args:
            items: one per row of `vectors` (their own `vector` is not read); an item id
                repeated keeps its last row.
            vectors: float32 matrix of shape (len(items), dim).
        """
        if vectors.shape != (len(items), self.dim):
            raise InvalidArgument(
                f"{len(items)} items for vectors of shape {vectors.shape} in partition "
                f"{self.name!r} of dimension {self.dim}"
            )
        last = {item.item_id: row for row, item in enumerate(items)}
        picked = np.fromiter(last.values(), dtype=np.int64, count=len(last))
        batch = np.ascontiguousarray(vectors[picked], dtype=np.float32)
        if not self.rows:
            self.backend = _built(self._reachable(len(batch)), batch)
        else:
            self.backend.add(batch)
        self.delete(last)
        rows = self.rows.append([items[row] for row in picked.tolist()], batch)
        self._row_of.update(zip(last, rows.tolist(), strict=True))
        self._forget_allowed()

    def delete(self, item_ids: Collection[str]) -> int:
        """Tombstones the ids held here; returns how many were."""
        rows = [row for item_id in item_ids if (row := self._row_of.pop(item_id, None)) is not None]
        if rows:
            self.rows.kill(np.array(rows, dtype=np.int64))
            self._forget_allowed()
        return len(rows)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        params: SearchParams,
        wanted: Filter = EVERYTHING,
        exclude: Collection[str] = (),
    ) -> list[list[Hit]]:
        """The k items closest to each query, best first.

        Args:
            queries: float32 matrix (n, dim).
            k: how many neighbours to return at most.
            params: the search's knobs, resolved (Policy.resolve).
            wanted: which items may be returned, applied inside the index; a filter that
                leaves fewer than the policy's exact threshold is searched exactly.
            exclude: item ids never returned (asked of the index as extra neighbours).
        """
        self._check(queries)
        allowed = self._allowed_by(wanted) if wanted else None
        candidates = len(self) if allowed is None else allowed.count
        extra = sum(1 for item_id in exclude if item_id in self._row_of)
        want = min(k + extra, candidates)
        if want <= 0:
            return [[] for _ in queries]
        if allowed is not None and allowed.rows is not None:
            scores, rows = self._exact(queries, allowed, want)
        else:
            bitmap = None if allowed is None else allowed.bitmap
            share = candidates / max(1, len(self.rows))
            scores, rows = self._ann(queries, want, _widened(params, share), bitmap)
        return [self._hits(s, r, exclude, k) for s, r in zip(scores, rows, strict=True)]

    def fetch(self, item_id: str) -> tuple[np.ndarray, str]:
        """The stored vector and leaf of an item (the exact vector, whatever the spec).

        Raises:
            NotFound: the item is not in this partition.
        """
        row = self._row_of.get(item_id)
        if row is None:
            raise NotFound(f"item {item_id!r} is not in partition {self.name!r}")
        return self.rows.vectors(np.array([row]))[0], self.rows.value("leaf", row)

    def due(self) -> str:
        """The spec a rebuild should make now ("" if none is due): the one the partition's
        size calls for, once it can be trained; or its own, past the tombstone share."""
        target = self._reachable(len(self))
        # a partition that shrank keeps its spec while twice its size would still call for it
        if target != self.spec and self._reachable(2 * len(self)) != self.spec:
            return target
        if self.rows and self.rows.dead > self.policy.compact_above * len(self.rows):
            return self.spec
        return ""

    def begin(self, spec: str) -> Rebuild:
        """Starts a rebuild with `spec` over the rows live now."""
        return Rebuild(
            spec, self.rows, np.flatnonzero(self.rows.live[: len(self.rows)]), len(self.rows)
        )

    def catch_up(self, rebuild: Rebuild) -> np.ndarray:
        """Copies into a built rebuild the rows appended since it began or last caught up;
        returns their vectors, for Rebuild.add."""
        assert rebuild.rows is not None and rebuild.source is self.rows, "catch_up before build"
        tail = np.arange(rebuild.upto, len(self.rows), dtype=np.int64)
        added = rebuild.rows.extend(self.rows, tail)
        rebuild.order = np.concatenate([rebuild.order, tail])
        rebuild.upto = len(self.rows)
        return rebuild.rows.vectors(added)

    def install(self, rebuild: Rebuild) -> None:
        """Catches a built rebuild up and takes it: rows tombstoned since it began are
        tombstones in it too."""
        built = len(rebuild.row_of)
        rebuild.add(self.catch_up(rebuild))
        rows, row_of = rebuild.rows, rebuild.row_of
        assert rows is not None and rebuild.backend is not None
        rows.set_live(self.rows.live[rebuild.order])
        row_of.update((rows.items[i], i) for i in range(built, len(rows)))
        for i in np.flatnonzero(~rows.live).tolist():
            if row_of.get(rows.items[i]) == i:
                del row_of[rows.items[i]]
        self.rows, self._row_of, self.backend = rows, row_of, rebuild.backend
        self._forget_allowed()

    def save(self, directory: Path) -> None:
        """Writes the index, the raw vectors and the rows' items and attributes into a new
        directory."""
        directory.mkdir()
        self.backend.save(directory / INDEX_FILE)
        meta = {
            "name": self.name,
            "model_version": self.model_version,
            "dim": self.dim,
            "spec": self.spec,
            "rows": self.rows.save(str(directory / VECTORS_FILE)),
        }
        (directory / META_FILE).write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path, policy: Policy) -> "Partition":
        """Reads a partition written by `save`.

        Raises:
            FailedPrecondition: the index and the rows disagree on the number of vectors.
        """
        meta = json.loads((directory / META_FILE).read_text())
        partition = cls(meta["name"], meta["model_version"], meta["dim"], policy)
        partition.backend = make_backend(meta["spec"], meta["dim"])
        partition.backend.load(directory / INDEX_FILE)
        rows = partition.rows = Rows.load(str(directory / VECTORS_FILE), meta["rows"], meta["dim"])
        live = np.flatnonzero(rows.live).tolist()
        partition._row_of = {rows.items[row]: row for row in live}
        if partition.backend.count() != len(rows):
            raise FailedPrecondition(
                f"{directory}: index holds {partition.backend.count()} vectors, rows {len(rows)}"
            )
        return partition

    def _reachable(self, size: int) -> str:
        """The spec for `size` vectors, or exact search while they are too few to train it
        (or where faiss cannot build it at this width)."""
        spec = self.policy.spec_for(size, self.dim)
        if training_size(spec, self.dim) > size or not _buildable(spec, self.dim):
            return "Flat"
        return spec

    def _check(self, queries: np.ndarray) -> None:
        if queries.ndim != 2:
            raise InvalidArgument(f"queries of shape {queries.shape} are not a matrix")
        if queries.shape[1] != self.dim:
            raise InvalidArgument(
                f"query of dimension {queries.shape[1]} for partition {self.name!r}, built by "
                f"model version {self.model_version!r} with dimension {self.dim}: re-ingest "
                "the catalog with the encoder's current version"
            )

    def _ann(
        self, queries: np.ndarray, want: int, params: SearchParams, bitmap: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Searches the index; lossy codes fetch `refine` times more and rerank exactly."""
        if bitmap is None and self.rows.dead:
            if self._live_bitmap is None:
                live = self.rows.live[: len(self.rows)]
                self._live_bitmap = np.packbits(live, bitorder="little")
            bitmap = self._live_bitmap
        if self.backend.exact_scores:
            return self.backend.search(queries, want, params, bitmap)
        fetch = max(want, math.ceil(want * params.refine))
        _, rows = self.backend.search(queries, fetch, params, bitmap)
        vectors = self.rows.vectors(np.maximum(rows, 0).ravel()).reshape(*rows.shape, self.dim)
        scores = np.einsum("qd,qfd->qf", queries, vectors)
        scores[rows < 0] = -np.inf
        best = np.argsort(-scores, axis=1, kind="stable")[:, :want]
        return np.take_along_axis(scores, best, 1), np.take_along_axis(rows, best, 1)

    def _forget_allowed(self) -> None:
        """Drops the live bitmap and the filters' rows: a write has made them stale."""
        self._live_bitmap, self._filtered = None, {}

    def _allowed_by(self, wanted: Filter) -> "_Allowed":
        """The rows a filter lets through, remembered for the next searches until a write."""
        found = self._filtered.get(wanted)
        if found is None:
            mask = self.rows.allowed(wanted)
            count = int(np.count_nonzero(mask))
            if count < self.policy.exact_below:  # few: searched exactly, their vectors at hand
                rows = np.flatnonzero(mask)
                found = _Allowed(count, rows=rows, vectors=self.rows.vectors(rows))
            else:
                found = _Allowed(count, bitmap=np.packbits(mask, bitorder="little"))
            self._filtered[wanted] = found
            while len(self._filtered) > 1 and (
                len(self._filtered) > FILTERS_KEPT
                or sum(a.nbytes for a in self._filtered.values()) > FILTER_BYTES
            ):
                self._filtered.pop(next(iter(self._filtered)))
        return found

    def _exact(
        self, queries: np.ndarray, allowed: "_Allowed", want: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over a few rows (a selective filter's); FAISS's own kernel, which
        does not start BLAS threads for one query."""
        assert allowed.rows is not None and allowed.vectors is not None
        scores, found = faiss.knn(queries, allowed.vectors, want, faiss.METRIC_INNER_PRODUCT)
        return scores, np.where(found >= 0, allowed.rows[np.maximum(found, 0)], -1)

    def _hits(
        self, scores: np.ndarray, rows: np.ndarray, exclude: Collection[str], k: int
    ) -> list[Hit]:
        hits = []
        for score, row in zip(scores.tolist(), rows.tolist(), strict=True):
            if row < 0:
                continue
            item_id = self.rows.items[row]
            if item_id not in exclude:
                hits.append((item_id, score, self.rows.value("leaf", row)))
                if len(hits) == k:
                    break
        return hits


@functools.cache
def _buildable(spec: str, dim: int) -> bool:
    """Whether faiss builds the spec at this width (PQ's code count must divide it, PCA's
    output be below it); says once, loudly, where it does not."""
    try:
        make_backend(spec, dim)
    except InvalidArgument as error:
        log.error("%s; partitions of dimension %d search exactly instead", error, dim)
        return False
    return True


def _widened(params: SearchParams, share: float) -> SearchParams:
    """The knobs of a search that may return only `share` of the rows (a filter's, or the
    live ones): a graph walk keeps, and an IVF search visits, 1/share times more, so that as
    many allowed candidates are met as an unfiltered search meets."""
    if share >= 1.0:
        return params
    return dataclasses.replace(
        params,
        ef_search=math.ceil(params.ef_search / share),
        nprobe=math.ceil(params.nprobe / share),
    )


def _built(spec: str, vectors: np.ndarray, stop: threading.Event | None = None) -> Backend:
    """A backend of `spec` trained (where it needs it) on and holding `vectors`, unless
    `stop` is set first (then holding some of them)."""
    started = time.monotonic()
    backend = make_backend(spec, vectors.shape[1])
    if not backend.trained:
        backend.train(vectors)
    for start in range(0, len(vectors), ADD_STEP):
        if stop is not None and stop.is_set():
            break
        backend.add(vectors[start : start + ADD_STEP])
        if len(vectors) > ADD_STEP:
            log.info(
                "%s: %d of %d vectors added (%.0fs)",
                spec,
                min(start + ADD_STEP, len(vectors)),
                len(vectors),
                time.monotonic() - started,
            )
    return backend
