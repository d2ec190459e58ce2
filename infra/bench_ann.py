"""ANN backends on this machine: recall and queries/s in-process and through a shard's gRPC
API, build time and memory; one partition vs one filtered index; P@10 on the real catalog.

    python -m infra.bench_ann [--size 1000000] [--queries 1000] [--catalog DIR] [--out DIR]
        [--runs 3] [--seconds 1] [--threads 4] [--clients 8] [--specs flat,hnsw,ivf,ivfpq,pca]

1. data: --size unit vectors of the encoder's dimension around the catalog's real embeddings
   (its trained model's current version embeds it once, cached under --out), leaf by leaf
   (infra.ann_data); --queries more generated apart the same way. Without the catalog or a
   trained model a seeded gaussian mixture stands in, and the output says so.
2. each backend at each knob: recall@10 against Flat (exact); queries/s of the index's own
   search (Backend.search, FAISS alone) and of Partition.search from --threads threads here,
   and through a shard process restored from the partition's snapshot (SearchVectors,
   SearchBatch) with --clients calls in flight from here; 1 and 32 queries a call; build
   time (training measured apart); the shard's memory per vector against the formula.
3. one partition holding ~1% of the items vs the global HNSW32 index filtered afterwards;
   a leaf filter (~1%, ~10%) applied inside the index vs afterwards (infra.ann_filters).
4. the catalog itself: P@10 by leaf of its held-out items through HNSW32 vs exact search.

Each speed is the median of --runs runs and each ratio the median of the runs' ratios, the
figures compared being measured back to back within a run. A benchmark, not a test: it
asserts nothing. All figures go to <out>/ann-<size>.json, the plot to <out>/ann-<size>.png.
"""

import argparse
import gc
import math
import os
import re
import shutil
import signal
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

# As the shards do (index_svc/server.py), so that FAISS here and there waits the same way.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss
import numpy as np
from rich.console import Console

from common.progress import progress, ticking
from index_svc.partition import Hit, Partition
from index_svc.specs import Policy, SearchParams, bytes_per_vector
from infra import ann_data, ann_filters, ann_harness, ann_report, ann_shard
from infra.ann_data import Base, Items
from infra.ann_harness import K
from infra.ann_report import Backend, Ceiling, Precision, Row

BATCH = 32  # queries in a batched call
NAME = "7"  # the partition's name: a taxonomy node id, as a shard names them
SEED = 7
PRECISION_BATCH = 256  # held-out queries searched at once in part 4
OMP_SETTINGS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")
SHARD_NOTE = (
    "the shard processes run without a taxonomy: each serves its snapshot and logs once a "
    "second that following the record failed; that is expected here"
)


def main() -> None:
    args = _arguments()
    args.out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="work-", dir=args.out.resolve()))
    ann_shard.freeze(folder)  # first: the code this process runs, for the shards it starts
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops them
    try:
        _main(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _main(args: argparse.Namespace, folder: Path) -> None:
    command = "python -m infra.bench_ann " + " ".join(sys.argv[1:])
    console = Console(highlight=False)
    console.width = max(console.width, 170)
    print(f"command: {command}")
    print(f"machine: {os.cpu_count()} cores visible; load {_load()}; {_threading()}")
    base = ann_data.load(args.catalog.resolve(), args.out.resolve(), threads=2)
    console.print(f"data: {base.source}", style=None if base.real else "bold red")
    made = ann_data.generate(base, args.size, SEED)
    items = ann_data.items_of(base, made.rows, made.vectors, [str(n) for n in range(args.size)])
    queries = ann_data.generate(base, args.queries, SEED + 1).vectors
    figures: dict[str, Any] = {
        "command": command,
        "machine": {"cores": os.cpu_count(), "load_before": _load(), "threads": _threading()},
        "data": _describe(base, made, args),
    }
    _run(console, args, base, items, queries, folder, figures)
    print(f"load at the end: {_load()}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="vectors in the index")
    parser.add_argument("--queries", type=int, default=1000, help="generated queries")
    parser.add_argument(
        "--catalog", type=Path, default=Path("../shared/datasets/fashion-small"),
        help="catalog whose trained model's embeddings the vectors are made around",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("var/bench/ann"), help="output folder")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each figure")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of a timed run")
    parser.add_argument("--threads", type=int, default=4, help="in-process calling threads")
    parser.add_argument("--clients", type=int, default=8, help="gRPC calls in flight")
    parser.add_argument(
        "--specs", type=lambda text: text.split(","), default=list(_SPECS),
        help=f"backends, comma-separated, of {','.join(_SPECS)} (flat always runs)",
    )  # fmt: skip
    return parser.parse_args()


def _run(
    console: Console,
    args: argparse.Namespace,
    base: Base,
    items: Items,
    queries: np.ndarray,
    folder: Path,
    figures: dict[str, Any],
) -> None:
    ceiling = _empty_shard(folder, base.model_version, queries, args)
    backends, kept = _backends(args, base, items, queries, folder, ceiling)
    console.print(f"\ncommand: {figures['command']}\n{SHARD_NOTE}")
    ann_report.print_speed(console, backends, ceiling, args)
    ann_report.print_memory(console, backends, ceiling, base.dim)
    figures.update(backends=backends, ceiling=ceiling, filters=[])
    _save(args, base, figures)  # again at the end; this much survives a later failure
    if "hnsw" in kept:
        timing = ann_filters.Timing(args.threads, args.seconds, args.runs)
        flat, hnsw = kept["flat"], kept["hnsw"]
        figures["filters"] = ann_filters.compare(base, items, flat, hnsw, args.queries, timing)
        ann_report.print_filters(console, figures["filters"], args.threads)
    kept.clear()
    gc.collect()
    figures["precision"] = _precision(base)
    ann_report.print_precision(console, figures["precision"])
    figures["targets"] = ann_report.targets(backends, figures["filters"], figures["precision"])
    ann_report.print_targets(console, figures["targets"])
    figures["machine"]["load_after"] = _load()
    for path in _save(args, base, figures):
        print(f"wrote {path}")


def _save(args: argparse.Namespace, base: Base, figures: dict[str, Any]) -> list[Path]:
    """The figures so far as JSON, and the plot of part 2."""
    stem = args.out / f"ann-{args.size}"
    title = f"{args.size:,} vectors of {base.dim} ({'real' if base.real else 'FALLBACK'} base)"
    written = [ann_report.write_json(stem.with_suffix(".json"), figures)]
    try:
        written.append(ann_report.plot(stem.with_suffix(".png"), figures["backends"], title))
    except ImportError:  # matplotlib comes with the train extra (make installs it)
        print("no plot: matplotlib is not installed (pip install -c constraints.txt matplotlib)")
    return written


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _threading() -> str:
    """FAISS's and BLAS's thread settings, which the shard processes inherit from this one."""
    found = ", ".join(f"{name}={os.environ.get(name, 'unset')}" for name in OMP_SETTINGS)
    return f"faiss OpenMP threads {faiss.omp_get_max_threads()} ({found}; the shards inherit them)"


def _describe(base: Base, made: ann_data.Generated, args: argparse.Namespace) -> dict[str, Any]:
    """What the vectors are, printed and kept in the JSON."""
    cosines = np.einsum("nd,nd->n", made.vectors[:10_000], base.vectors[made.rows[:10_000]])
    found = {
        "source": base.source,
        "real": base.real,
        "model_version": base.model_version,
        "base_items": len(base.ids),
        "leaves": len(base.leaf.names),
        "dim": base.dim,
        "size": args.size,
        "queries": args.queries,
        "noise": f"{ann_data.NOISE} x the leaf's spread per dimension",
        "median_leaf_spread": float(np.median(base.spread())),
        "mean_cosine_to_base_vector": float(cosines.mean()),
    }
    print(
        f"data: {args.size:,} vectors of {base.dim} around {len(base.ids):,} base vectors in "
        f"{len(base.leaf.names)} leaves; median leaf spread {found['median_leaf_spread']:.4f} "
        f"per dimension; noise {found['noise']}; mean cosine of a generated vector to the one "
        f"it was made from {found['mean_cosine_to_base_vector']:.3f}; {args.queries} queries"
    )
    return found


# --- 2. backends -----------------------------------------------------------------------------


def _sweeps(size: int, dim: int) -> dict[str, tuple[str, list[tuple[str, SearchParams]]]]:
    """Per backend key: its spec and knob settings. IVF gets 1024 lists where the vectors
    can train them (39 per list), fewer below."""
    nlist = min(1024, 2 ** int(math.log2(max(size // 39, 16))))
    pca = ((64, 1.0), (64, 4.0), (64, 16.0), (128, 4.0), (256, 4.0))
    return {
        "flat": ("Flat", [("exact", SearchParams())]),
        "hnsw": ("HNSW32", [(f"efSearch {e}", SearchParams(ef_search=e))
                            for e in (16, 32, 64, 128, 256)]),
        "ivf": (f"IVF{nlist},Flat", [(f"nprobe {n}", SearchParams(nprobe=n))
                                     for n in (4, 8, 16, 32, 64, 128) if n <= nlist]),
        "ivfpq": (f"IVF{nlist},PQ{_pq_bytes(dim)}", [(f"nprobe 32, refine {r:g}",
                  SearchParams(nprobe=32, refine=r)) for r in (1.0, 4.0, 16.0)]),
        "pca": ("PCA64,HNSW32", [(f"efSearch {e}, refine {r:g}",
                SearchParams(ef_search=e, refine=r)) for e, r in pca]),
    }  # fmt: skip


def _pq_bytes(dim: int) -> int:
    """Bytes of a PQ code: dim / 4, or where 4 does not divide dim the divisor of dim nearest
    it (FAISS's PQ splits the vector into equal parts)."""
    return min((m for m in range(1, dim + 1) if dim % m == 0), key=lambda m: (abs(4 * m - dim), m))


_SPECS = tuple(_sweeps(1, 1))


def _empty_shard(
    folder: Path, version: str, queries: np.ndarray, args: argparse.Namespace
) -> Ceiling:
    """A shard on an empty snapshot: its VmRSS at ready and after the calls a loaded one
    gets, and the queries/s those calls reach with no index to search."""
    with (
        ann_shard.serving(folder, [], version) as shard,
        ann_shard.Client(shard.address) as client,
    ):
        ready = shard.rss()
        rates = {
            batch: client.rate(
                ann_shard.requests(queries, batch, NAME, K, SearchParams()),
                args.clients,
                args.seconds,
            )
            for batch in (1, BATCH)
        }
        return Ceiling((ready, shard.rss()), rates[1], rates[BATCH])


def _backends(
    args: argparse.Namespace,
    base: Base,
    items: Items,
    queries: np.ndarray,
    folder: Path,
    ceiling: Ceiling,
) -> tuple[list[Backend], dict[str, Partition]]:
    """Each backend measured in turn; the Flat and HNSW32 partitions kept for part 3."""
    found, kept = [], {}
    truth: list[list[str]] = []
    for key, (spec, knobs) in _sweeps(args.size, base.dim).items():
        if key != "flat" and key not in args.specs:
            continue
        partition, build_s = ann_harness.build(spec, NAME, items, base.model_version)
        if key == "flat":
            exact = partition.policy.resolve(SearchParams())
            truth = ann_harness.ids(partition.search(queries, K, exact))
        with progress(total=len(knobs), desc=f"recall {spec}", unit="knob") as bar:
            rows = []
            for knob, params in knobs:
                rows.append(_row(partition, knob, params, queries, truth))
                bar.update()
        built = (build_s, ann_harness.train_s(spec, items.vectors))
        found.append(_served(partition, rows, queries, folder, args, built, ceiling.rss))
        if key in ("flat", "hnsw"):
            kept[key] = partition
        del partition
        gc.collect()
    return found, kept


def _row(
    partition: Partition,
    knob: str,
    params: SearchParams,
    queries: np.ndarray,
    truth: list[list[str]],
) -> Row:
    resolved = partition.policy.resolve(params)
    found = ann_harness.ids(partition.search(queries, K, resolved))
    return Row(partition.spec, knob, resolved, ann_harness.recall(found, truth))


def _served(
    partition: Partition,
    rows: list[Row],
    queries: np.ndarray,
    folder: Path,
    args: argparse.Namespace,
    built: tuple[float, float],
    empty: tuple[int, int],
) -> Backend:
    """The rows' queries/s in-process and through a shard serving the partition, run by run;
    `built`: the build's and the training's seconds; `empty`: an empty shard's VmRSS. Where
    no shard will serve the partition, the in-process figures alone, and why."""
    formula = bytes_per_vector(partition.spec, partition.dim) + 4 * partition.dim
    backend = Backend(partition.spec, len(partition), rows, *built, 0.0, (0, 0), empty, formula)
    with ExitStack() as stack:
        try:
            shard = _started(stack, folder, partition)
        except RuntimeError as error:
            backend.refused = _reason(error)
            print(f"NOTE: no shard serves {partition.spec}: {backend.refused}")
            _time_rows(backend, partition, queries, args, None)
            return backend
        client = stack.enter_context(ann_shard.Client(shard.address))
        ready = shard.rss()
        (stats,) = shard.stats().partitions
        backend.stats = f"{stats.spec} {stats.count:,} ({stats.tombstones} dead)"
        _time_rows(backend, partition, queries, args, client)
        backend.ready_s, backend.rss = shard.ready_s, (ready, shard.rss())
    return backend


def _reason(error: Exception) -> str:
    """The last line of a shard's failure (its log's tail), without FAISS's source location."""
    last = str(error).strip().splitlines()[-1]
    return re.sub(r"Error in .*? at \S+: ", "", last)[:300]


def _time_rows(
    backend: Backend,
    partition: Partition,
    queries: np.ndarray,
    args: argparse.Namespace,
    client: ann_shard.Client | None,
) -> None:
    """--runs runs over the backend's rows; first, whether gRPC answers as in-process."""
    calls = {
        id(row): {b: ann_shard.requests(queries, b, NAME, K, row.params) for b in (1, BATCH)}
        for row in backend.rows
    }
    for row in backend.rows:
        mine = ann_harness.ids(partition.search(queries[:BATCH], K, row.params))
        row.agrees = client is None or client.answers(calls[id(row)][BATCH][0]) == mine
    total = args.runs * len(backend.rows)
    with progress(total=total, desc=f"timing {partition.spec}", unit="row") as bar:
        for _ in range(args.runs):
            for row in backend.rows:
                _time_row(row, partition, calls[id(row)], client, queries, args)
                bar.update()


def _started(stack: ExitStack, folder: Path, partition: Partition) -> ann_shard.ShardProcess:
    """A shard serving the partition, stopped when the stack closes; progress meanwhile."""
    desc = f"snapshot, shard start: {partition.spec}"
    with progress(total=1, desc=desc, unit="shard") as bar, ticking(bar):
        serving = ann_shard.serving(folder, [partition], partition.model_version, partition.spec)
        shard = stack.enter_context(serving)
        bar.update()
    return shard


def _time_row(
    row: Row,
    partition: Partition,
    calls: dict[int, list[ann_shard.Request]],
    client: ann_shard.Client | None,
    queries: np.ndarray,
    args: argparse.Namespace,
) -> None:
    """One run of the row: FAISS alone, Partition.search and (with a client) gRPC, 1 and 32
    queries a call."""
    backend = partition.backend
    fetch = K if backend.exact_scores else math.ceil(K * row.params.refine)
    for batch in (1, BATCH):
        chunks = ann_harness.chunks(queries, batch)
        figures = {
            "faiss": ann_harness.rate(
                lambda q: backend.search(q, fetch, row.params, None),
                chunks, args.threads, args.seconds,
            ),
            "partition": ann_harness.rate(
                lambda q: partition.search(q, K, row.params), chunks, args.threads, args.seconds
            ),
        }  # fmt: skip
        if client is not None:
            figures["grpc"] = client.rate(calls[batch], args.clients, args.seconds)
        for mode, value in figures.items():
            row.rates.setdefault(f"{mode} x{batch}", []).append(value)


# --- 4. precision on the catalog -------------------------------------------------------------


def _precision(base: Base) -> Precision:
    """P@10 by leaf of the held-out items through the default ANN spec and exactly."""
    items = ann_data.items_of(base, np.arange(len(base.ids)), base.vectors, base.ids)
    spec = Policy().ann_spec
    exact, _ = ann_harness.build("Flat", "1", items, base.model_version)
    ann, _ = ann_harness.build(spec, "2", items, base.model_version)
    params = Policy().resolve(SearchParams())
    rows = base.held_out()
    found = {"exact": _answers(exact, base, rows, params), "ann": _answers(ann, base, rows, params)}
    leaves = base.leaf.values(rows)
    precision = {
        name: float(np.mean([[leaf == own for _, _, leaf in hits] for hits, own in
                             zip(answers, leaves, strict=True)]))
        for name, answers in found.items()
    }  # fmt: skip
    return Precision(
        spec, f"efSearch {params.ef_search}", len(rows), len(base.ids), precision["exact"],
        precision["ann"],
        ann_harness.recall(ann_harness.ids(found["ann"]), ann_harness.ids(found["exact"])),
        base.real,
    )  # fmt: skip


def _answers(
    partition: Partition, base: Base, rows: np.ndarray, params: SearchParams
) -> list[list[Hit]]:
    """Each row's k nearest, itself left out: k + 1 asked for, as Partition.search does for
    an excluded id, in batches (an exclude list holds for a whole call)."""
    found = []
    with progress(total=len(rows), desc=f"P@10 {partition.spec}", unit="query") as bar:
        for start in range(0, len(rows), PRECISION_BATCH):
            chunk = rows[start : start + PRECISION_BATCH]
            hits = partition.search(base.vectors[chunk], K + 1, params)
            for row, answer in zip(chunk.tolist(), hits, strict=True):
                found.append([hit for hit in answer if hit[0] != base.ids[row]][:K])
            bar.update(len(chunk))
    return found


if __name__ == "__main__":
    main()
