"""Filtered searches, in-process: one partition holding a node's items vs the global index
filtered afterwards, and a leaf filter applied inside the index vs afterwards; each way at
the smallest efSearch that reaches the recall target, timed 1 query a call."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from common import paths
from common.progress import progress
from index_svc.partition import Partition
from index_svc.specs import Filter, SearchParams
from infra import ann_data, ann_harness
from infra.ann_data import Base, Items
from infra.ann_harness import K
from infra.ann_report import RECALL, Versus

EFS = (16, 32, 64, 128, 256, 512, 1024)  # tried in turn until a way reaches RECALL
EXACT = (0,)  # the "efSearch" of a way that searches exactly
SHARES = (0.01, 0.10)  # of the items: the partition (the first) and the leaf filters
SEED = 9

OneQuery = Callable[[np.ndarray], list[str]]


@dataclass(frozen=True)
class Way:
    """One way of a filtered search: its name, its searches by efSearch, the values to try."""

    name: str
    make: Callable[[int], OneQuery]
    efs: Sequence[int] = EFS


@dataclass(frozen=True)
class Timing:
    threads: int
    seconds: float
    runs: int


def compare(
    base: Base, items: Items, flat: Partition, hnsw: Partition, n: int, timing: Timing
) -> list[Versus]:
    """The partition of the node nearest SHARES[0] of the items vs `hnsw` filtered after; the
    leaves nearest each share, filtered inside `hnsw` vs after. `flat` gives the truth."""
    shares = base.shares()
    nodes = {paths.partition_of(leaf, ann_data.PARTITION_LEVEL) for leaf in base.leaf.names}
    node = ann_data.closest(shares, SHARES[0], nodes)
    within = dict(zip(base.leaf.names, base.within(node).tolist(), strict=True))
    inside = np.flatnonzero([within[leaf] for leaf in items.leaves])
    # like with like: the partition is an index of the global one's spec (by size, a partition
    # this small would search exactly, which is slower than HNSW at the same recall)
    part, _ = ann_harness.build(hnsw.spec, "8", items.subset(inside), base.model_version)
    queries, truth = _queries(base, flat, node, n)
    found = [
        _versus(
            f"partition {node} vs global", len(inside) / len(items.ids), queries, truth,
            Way(f"its partition, {part.spec} of {len(part):,}", partial(_plain, part)),
            Way(f"{hnsw.spec} of {len(hnsw):,}, filtered after", partial(_after, hnsw, node=node)),
            timing,
        )
    ]  # fmt: skip
    for share in SHARES:
        leaf = ann_data.closest(shares, share, base.leaf.names)
        count = sum(1 for name in items.leaves if name == leaf)
        scan = count < hnsw.policy.exact_below  # Partition.search scans so few exactly
        how = f"exact scan of {count:,}" if scan else f"{hnsw.spec} + bitmap"
        efs = EXACT if scan else EFS
        filtered = partial(_inside, hnsw, leaf_ids=base.leaf_ids(leaf))
        queries, truth = _queries(base, flat, leaf, n)
        found.append(_versus(
            f"leaf {leaf}", count / len(items.ids), queries, truth,
            Way(f"filter inside ({how})", filtered, efs),
            Way(f"{hnsw.spec}, filtered after", partial(_after, hnsw, node=leaf)),
            timing,
        ))  # fmt: skip
    return found


def _queries(base: Base, flat: Partition, node: str, n: int) -> tuple[np.ndarray, list[list[str]]]:
    """Queries made from the node's items, and their exact k nearest among its items."""
    among = np.flatnonzero(base.within(node)[base.leaf.codes])
    queries = ann_data.generate(base, n, SEED, among).vectors
    resolved = flat.policy.resolve(SearchParams())
    wanted = Filter(leaf_ids=base.leaf_ids(node))
    return queries, ann_harness.ids(flat.search(queries, K, resolved, wanted))


def _params(partition: Partition, ef: int) -> SearchParams:
    return partition.policy.resolve(SearchParams(ef_search=ef))


def _plain(partition: Partition, ef: int) -> OneQuery:
    params = _params(partition, ef)
    return lambda q: [item for item, _, _ in partition.search(q, K, params)[0]]


def _inside(partition: Partition, ef: int, leaf_ids: tuple[int, ...]) -> OneQuery:
    params, wanted = _params(partition, ef), Filter(leaf_ids=leaf_ids)
    return lambda q: [item for item, _, _ in partition.search(q, K, params, wanted)[0]]


def _after(partition: Partition, ef: int, node: str) -> OneQuery:
    """Asks for 2k, then twice as many again, until k of the answers lie under the node."""
    params = _params(partition, ef)

    def search(query: np.ndarray) -> list[str]:
        fetch = 2 * K
        while True:
            hits = partition.search(query, fetch, params)[0]
            kept = [item for item, _, leaf in hits if paths.is_within(leaf, node)]
            if len(kept) >= K or len(hits) < fetch:
                return kept[:K]
            fetch *= 2

    return search


def _versus(
    title: str,
    share: float,
    queries: np.ndarray,
    truth: list[list[str]],
    first: Way,
    second: Way,
    timing: Timing,
) -> Versus:
    tuned = [_tuned(way, queries, truth) for way in (first, second)]
    single = ann_harness.chunks(queries, 1)
    rates: tuple[list[float], list[float]] = ([], [])
    with progress(total=timing.runs, desc=f"timing {title}", unit="run") as bar:
        for _ in range(timing.runs):
            for kept, (_, _, search) in zip(rates, tuned, strict=True):
                kept.append(ann_harness.rate(search, single, timing.threads, timing.seconds))
            bar.update()
    return Versus(
        title, share, (first.name, second.name), (tuned[0][0], tuned[1][0]),
        (tuned[0][1], tuned[1][1]), rates,
    )  # fmt: skip


def _tuned(way: Way, queries: np.ndarray, truth: list[list[str]]) -> tuple[int, float, OneQuery]:
    """The way's smallest efSearch whose recall reaches RECALL (else its largest)."""
    for ef in way.efs:
        search = way.make(ef)
        found = [search(query) for query in ann_harness.chunks(queries, 1)]
        recall = ann_harness.recall(found, truth)
        if recall >= RECALL:
            break
    return ef, recall, search
