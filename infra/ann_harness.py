"""What the ANN benchmark's parts share: progress shown while they run, partitions built with
it, queries a second of calling threads, recall."""

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from common.progress import progress, ticking
from index_svc.backend import make_backend
from index_svc.partition import Hit, Partition
from index_svc.specs import Policy
from infra.ann_data import Items

K = 10  # neighbours asked for; recall and precision are at 10
MIN_CALLS = 2  # per calling thread and timed run, however long the calls take


class _Added(logging.Handler):
    """Moves a bar along the partition's "<spec>: N of M vectors added" log lines."""

    def __init__(self, progress: tqdm) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) == 4 and isinstance(args[1], int):
            self.progress.update(args[1] - self.progress.n)


def build(spec: str, name: str, items: Items, model_version: str) -> tuple[Partition, float]:
    """A partition of `spec` holding the items, written in one upsert; and its seconds."""
    partition = Partition(name, model_version, items.vectors.shape[1], Policy(spec=spec))
    logger = logging.getLogger("index_svc.partition")
    with progress(total=len(items.ids), desc=f"build {spec}", unit="vec") as bar, ticking(bar):
        handler, level = _Added(bar), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            started = time.perf_counter()
            partition.upsert(items.states(), items.vectors)
            elapsed = time.perf_counter() - started
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        bar.update(len(items.ids) - bar.n)
    if partition.spec != spec:
        print(f"NOTE: asked for {spec}, the partition of {len(items.ids):,} built {partition.spec}")
    return partition, elapsed


def train_s(spec: str, vectors: np.ndarray) -> float:
    """Seconds to train a fresh index of the spec on the vectors (0 if it needs none)."""
    backend = make_backend(spec, vectors.shape[1])
    if backend.trained:
        return 0.0
    with progress(total=1, desc=f"train {spec} apart", unit="index") as bar, ticking(bar):
        started = time.perf_counter()
        backend.train(vectors)
        return time.perf_counter() - started


def rate(
    call: Callable[[np.ndarray], object], chunks: Sequence[np.ndarray], threads: int, seconds: float
) -> float:
    """Queries/s of `threads` threads calling on the chunks over `seconds` (each making at
    least MIN_CALLS calls), after one warm-up call."""
    call(chunks[0])
    started = time.perf_counter()
    until = started + seconds

    def caller(number: int) -> int:
        made, n = 0, number
        while time.perf_counter() < until or made < MIN_CALLS:
            call(chunks[n % len(chunks)])
            made, n = made + 1, n + threads
        return made

    with ThreadPoolExecutor(threads) as pool:
        made = sum(pool.map(caller, range(threads)))
    return made * len(chunks[0]) / (time.perf_counter() - started)


def chunks(queries: np.ndarray, size: int) -> list[np.ndarray]:
    """The queries in calls of `size` (a last short one left out)."""
    return [queries[i : i + size] for i in range(0, len(queries) - size + 1, size)]


def ids(found: list[list[Hit]]) -> list[list[str]]:
    return [[item_id for item_id, _, _ in hits] for hits in found]


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    """Mean share of each query's true k nearest that were found."""
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))
