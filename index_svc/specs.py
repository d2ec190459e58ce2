"""Index specs (FAISS factory strings) and the per-search knobs: which spec a partition gets,
what it needs before it can be trained, what it costs in memory, how its scores read."""

import math
import re
from dataclasses import dataclass

from common.errors import InvalidArgument


@dataclass(frozen=True)
class SearchParams:
    """Per-search knobs; 0 takes the configured default."""

    ef_search: int = 0  # HNSW: candidates kept while walking the graph
    nprobe: int = 0  # IVF: inverted lists visited
    refine: float = 0.0  # lossy codes (PQ, PCA): candidates reranked by exact score, x k


_LOSSY = re.compile(r"PCA|PQ|SQ|LSH|RR|ITQ|OPQ")


def metric_of(spec: str) -> str:
    """Returns "L2" where the spec reduces dimensions (FAISS's PCA centres the data, so it ranks
    unit vectors right under L2 and wrong under inner product), else "IP"."""
    return "L2" if "PCA" in spec else "IP"


def is_exact(spec: str) -> bool:
    """Whether the spec stores vectors whole (scores are exact inner products)."""
    return metric_of(spec) == "IP" and not _LOSSY.search(spec)


@dataclass(frozen=True)
class Policy:
    """Which spec a partition gets, when it is rebuilt, and the bounds of the search knobs."""

    spec: str = ""  # every partition's spec; "": exact below `exact_below`, `ann_spec` above
    exact_below: int = 50_000
    ann_spec: str = "HNSW32"
    compact_above: float = 0.2  # share of tombstones past which a partition is rebuilt
    defaults: SearchParams = SearchParams(ef_search=64, nprobe=32, refine=4.0)
    bounds: SearchParams = SearchParams(ef_search=2048, nprobe=8192, refine=64.0)

    def spec_for(self, size: int, dim: int) -> str:
        """The spec a partition of `size` vectors gets. "{nlist}" and "{m}" in a spec are
        filled from the size (about 4 sqrt(n) lists, a power of two) and the dimension
        (the count of byte codes nearest dim / 4 that divides it, as PQ needs)."""
        spec = self.spec or ("Flat" if size < self.exact_below else self.ann_spec)
        nlist = 2 ** max(4, round(math.log2(4 * math.sqrt(max(size, 1)))))
        m = min((d for d in range(1, dim + 1) if dim % d == 0), key=lambda d: abs(d - dim / 4))
        return spec.format(nlist=nlist, m=m)

    def resolve(self, params: SearchParams) -> SearchParams:
        """The knobs of one search: each within its bound, 0 replaced by its default.

        Raises:
            InvalidArgument: a knob is negative or past its bound.
        """
        for name in ("ef_search", "nprobe", "refine"):
            value, bound = getattr(params, name), getattr(self.bounds, name)
            if not 0 <= value <= bound:
                raise InvalidArgument(f"search parameter {name}={value} is outside 0..{bound}")
        return SearchParams(
            params.ef_search or self.defaults.ef_search,
            params.nprobe or self.defaults.nprobe,
            max(1.0, params.refine or self.defaults.refine),
        )


def training_size(spec: str, dim: int) -> int:
    """Vectors needed before the spec can be trained (FAISS asks 39 per centroid); 0 for
    specs that need no training."""
    need = 0
    for match in re.finditer(r"IVF(\d+)", spec):
        need = max(need, 39 * int(match.group(1)))
    for match in re.finditer(r"PQ\d+(?:x(\d+))?", spec):
        need = max(need, 39 * 2 ** int(match.group(1) or 8))
    if "PCA" in spec:
        need = max(need, 2 * dim)
    return need


def bytes_per_vector(spec: str, dim: int) -> float:
    """Memory per vector of a spec's index by its formula, the stored raw vector excluded.

    Flat: 4d; HNSWm: its storage plus 2m level-0 links of 4 bytes and about m of 4 bytes
    on upper levels (one node in m reaches them), a level and an offset; IVF: its codes
    plus an 8-byte id; PQm: m bytes; PCAk: the rest at dimension k.
    """
    pca = re.match(r"PCA(\d+),", spec)
    d = int(pca.group(1)) if pca else dim
    rest = spec[pca.end() :] if pca else spec
    size = 0.0
    pq = re.search(r"PQ(\d+)", rest)
    size += int(pq.group(1)) if pq else 4 * d
    hnsw = re.match(r"HNSW(\d+)", rest)
    if hnsw:
        m = int(hnsw.group(1))
        size += 4 * (2 * m + m / (m - 1)) + 4 + 8
    if rest.startswith("IVF"):
        size += 8
    return size


@dataclass(frozen=True)
class Filter:
    """Which items a search may return: each field that is set must match (any of its
    values); an empty filter lets everything through."""

    leaf_ids: tuple[int, ...] = ()  # leaves by node id (a subtree: every leaf in it)
    colours: tuple[str, ...] = ()
    usages: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.leaf_ids or self.colours or self.usages)


EVERYTHING = Filter()
DEFAULTS = SearchParams()  # every knob at the policy's default
