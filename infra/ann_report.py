"""The ANN benchmark's figures: what was measured, the tables and targets printed, the JSON
and the recall / queries-per-second plot."""

import dataclasses
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from index_svc.specs import SearchParams
from infra.stats import median_ratio

RECALL = 0.95  # the targets on speed hold at this recall@10 or more
GRPC_X32 = 0.9  # gRPC SearchBatch of 32 / Partition.search of 32, at least
GRPC_X1 = 0.5  # gRPC SearchVectors / Partition.search of 1, at least
MEMORY = 1.15  # the shard's bytes per vector / the formula's, at most
RESTRICTED = 8.0  # one partition / the global index filtered afterwards, at least
PRECISION = 0.005  # |P@10 through HNSW - P@10 exact|, at most
MODES = ("faiss", "partition", "grpc")
MB = 1 << 20


@dataclass
class Row:
    """One backend at one knob setting."""

    spec: str
    knob: str
    params: SearchParams  # resolved
    recall: float
    agrees: bool = True  # gRPC answered the first queries as Partition.search did
    rates: dict[str, list[float]] = field(default_factory=dict)  # "grpc x32": per run

    def qps(self, mode: str, batch: int) -> float:
        """Median queries/s; NaN where not measured (no shard served the backend)."""
        runs = self.rates.get(f"{mode} x{batch}")
        return statistics.median(runs) if runs else math.nan

    def grpc_ratio(self, batch: int) -> float:
        grpc = self.rates.get(f"grpc x{batch}")
        return median_ratio(grpc, self.rates[f"partition x{batch}"]) if grpc else math.nan


@dataclass
class Backend:
    """One backend: its rows, build, and the memory of a shard serving it."""

    spec: str
    size: int
    rows: list[Row]
    build_s: float  # Partition.upsert of every vector at once (training included)
    train_s: float  # training alone, on a fresh index and the same vectors
    ready_s: float  # shard process start until ready, restoring the snapshot
    rss: tuple[int, int]  # shard's VmRSS at ready and after the searches
    empty: tuple[int, int]  # the same of a shard on an empty snapshot
    formula: float  # specs.bytes_per_vector + 4 dim
    stats: str = ""  # what the shard's Stats said of the partition
    refused: str = ""  # why no shard would serve it ("": one did)

    def per_vector(self) -> float:
        if self.refused:
            return math.nan
        return (self.rss[1] - self.empty[1]) / self.size

    def memory_ratio(self) -> float:
        return self.per_vector() / self.formula


@dataclass
class Ceiling:
    """A shard on an empty snapshot: the gRPC path with no index to search."""

    rss: tuple[int, int]  # VmRSS at ready and after the calls
    x1: float  # SearchVectors queries/s
    x32: float  # SearchBatch (32 a call) queries/s


@dataclass
class Versus:
    """Two ways of one filtered search, each at the smallest efSearch reaching RECALL."""

    title: str
    share: float  # of all items that pass the filter
    names: tuple[str, str]
    efs: tuple[int, int]
    recalls: tuple[float, float]
    rates: tuple[list[float], list[float]]  # queries/s of each run, 1 query a call

    def speedup(self) -> float:
        return median_ratio(*self.rates)


@dataclass
class Precision:
    """P@10 by leaf of the held-out items of the base, through an ANN spec and exactly."""

    spec: str
    params: str
    queries: int
    searched: int
    exact: float
    ann: float
    recall: float
    real: bool


def _table(console: Console, heading: str, columns: Sequence[str]) -> Table:
    console.print(f"\n{heading}")
    table = Table()
    for n, column in enumerate(columns):
        table.add_column(column, justify="left" if n < 2 else "right")
    return table


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def _ratio_cell(row: Row, batch: int, target: float) -> str:
    ratio = row.grpc_ratio(batch)
    if math.isnan(ratio):
        return "no shard"
    ok = ratio >= target if row.recall >= RECALL else None
    return f"{ratio:.2f} {_mark(ok)}"


def _qps(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def print_speed(console: Console, backends: Sequence[Backend], ceiling: Ceiling, args: Any) -> None:
    table = _table(
        console,
        "2. recall@10 against exact search; queries/s, median of runs: FAISS = Backend.search "
        "alone, part = Partition.search, gRPC = a shard process",
        ("backend", "knob", "R@10", "FAISS x1", "part x1", "gRPC x1", f"gRPC/part x1 (>={GRPC_X1})",
         "FAISS x32", "part x32", "gRPC x32", f"gRPC/part x32 (>={GRPC_X32})", "same"),
    )  # fmt: skip
    for backend in backends:
        for row in backend.rows:
            table.add_row(
                row.spec, row.knob, f"{row.recall:.3f}",
                *(_qps(row.qps(mode, 1)) for mode in MODES), _ratio_cell(row, 1, GRPC_X1),
                *(_qps(row.qps(mode, 32)) for mode in MODES),
                _ratio_cell(row, 32, GRPC_X32), "yes" if row.agrees else "NO",
            )  # fmt: skip
    console.print(table)
    console.print(
        f"in-process: {args.threads} threads calling at once; gRPC: {args.clients} calls in "
        "flight from this process (grpc.aio) to the shard process; x1: 1 query a call "
        f"(SearchVectors), x32: 32 a call (SearchBatch); k=10; {args.runs} runs of "
        f"{args.seconds:g}s each. A ratio is judged only at recall >= {RECALL} (n/a below). "
        "same: gRPC's answers to the first 32 queries equal Partition.search's.\n"
        f"ceiling: a shard on an empty snapshot answers {ceiling.x1:,.0f} SearchVectors/s and "
        f"{ceiling.x32:,.0f} queries/s in SearchBatch of 32 from the same callers (no index "
        "to search: the cost of the gRPC path itself on these cores)"
    )


def print_memory(console: Console, backends: Sequence[Backend], ceiling: Ceiling, dim: int) -> None:
    table = _table(
        console,
        "2. build and the shard's memory per vector (VmRSS minus that of a shard on an empty "
        "snapshot)",
        ("backend", "Stats", "build s", "train s", "ready s", "RSS MB", "B/vec at ready",
         "B/vec served", "formula B/vec", f"served/formula (<={MEMORY})"),
    )  # fmt: skip
    for b in backends:
        ready = (b.rss[0] - b.empty[0]) / b.size
        ratio = b.memory_ratio()
        if b.refused:
            table.add_row(b.spec, "no shard serves it", f"{b.build_s:.1f}", f"{b.train_s:.1f}",
                          "-", "-", "-", "-", f"{b.formula:,.0f}", "n/a")  # fmt: skip
            continue
        table.add_row(
            b.spec, b.stats, f"{b.build_s:.1f}", f"{b.train_s:.1f}", f"{b.ready_s:.1f}",
            f"{b.rss[1] / MB:,.0f}", f"{ready:,.0f}", f"{b.per_vector():,.0f}",
            f"{b.formula:,.0f}", f"{ratio:.2f} {_mark(ratio <= MEMORY)}",
        )  # fmt: skip
    console.print(table)
    empty = ceiling.rss
    console.print(
        f"formula: index_svc.specs.bytes_per_vector(spec, {dim}) + 4 x {dim} for the raw vector "
        f"the partition keeps; empty shard: {empty[0] / MB:,.0f} MB at ready, "
        f"{empty[1] / MB:,.0f} MB after the same calls; served: after the timed runs; build: "
        "one Partition.upsert of all vectors (training included); train: training alone on a "
        "fresh index, measured apart; ready: shard process start to ready, snapshot restored"
    )


def print_filters(console: Console, versus: Sequence[Versus], threads: int) -> None:
    table = _table(
        console,
        f"3. filtered searches, in-process, 1 query a call from {threads} threads, each way at "
        f"the smallest efSearch reaching recall@10 {RECALL} against the exact filtered answer",
        ("search", "share", "way A", "R@10 A", "q/s A", "way B", "R@10 B", "q/s B", "A/B"),
    )
    for v in versus:
        table.add_row(
            v.title, f"{v.share:.1%}",
            f"{v.names[0]} ({_ef(v.efs[0])})", f"{v.recalls[0]:.3f}",
            f"{statistics.median(v.rates[0]):,.0f}",
            f"{v.names[1]} ({_ef(v.efs[1])})", f"{v.recalls[1]:.3f}",
            f"{statistics.median(v.rates[1]):,.0f}", f"{v.speedup():.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        "filtered after: asks the global index for 2k, then twice as many again until k of "
        "the answers pass; queries are made from the filtered items (a shopper's query in "
        "that category)"
    )


def _ef(ef: int) -> str:
    return "exact" if ef == 0 else f"efSearch {ef}"


def print_precision(console: Console, p: Precision) -> None:
    table = _table(
        console,
        f"4. P@10 by leaf of {p.queries:,} held-out items among {p.searched:,} (each left out "
        f"of its own answer), {p.params}",
        ("search", "P@10 leaf", "recall@10 vs exact"),
    )
    table.add_row("exact (Flat)", f"{p.exact:.4f}", "1.000")
    table.add_row(p.spec, f"{p.ann:.4f}", f"{p.recall:.3f}")
    console.print(table)
    if not p.real:
        console.print("FALLBACK: the stand-in mixture, not a real catalog's embeddings")


def targets(
    backends: Sequence[Backend], versus: Sequence[Versus], precision: Precision | None
) -> list[tuple[str, str, bool | None]]:
    """(target, figure, met) of each target; met is None where nothing measured it."""
    found = []
    for batch, target in ((32, GRPC_X32), (1, GRPC_X1)):
        rows = [r for b in backends if not b.refused for r in b.rows if r.recall >= RECALL]
        worst = min(rows, key=lambda r: r.grpc_ratio(batch), default=None)
        met = sum(r.grpc_ratio(batch) >= target for r in rows)
        figure = (
            f"worst {worst.grpc_ratio(batch):.2f}x ({worst.spec} {worst.knob}); "
            f"{met} of {len(rows)} rows meet it"
            if worst
            else "no row"
        )
        found.append((f"gRPC x{batch} >= {target}x in-process at R@10 >= {RECALL}", figure,
                      met == len(rows) if rows else None))  # fmt: skip
    for b in backends:
        if b.refused:
            found.append((f"a shard serves {b.spec}", b.refused[:160], False))
            continue
        found.append((f"memory <= {MEMORY}x formula: {b.spec}", f"{b.memory_ratio():.2f}x",
                      b.memory_ratio() <= MEMORY))  # fmt: skip
    for v in versus[:1]:
        equal = min(v.recalls) >= RECALL
        found.append((f"partition >= {RESTRICTED}x global-then-filter, both R@10 >= {RECALL}",
                      f"{v.speedup():.2f}x (R@10 {v.recalls[0]:.3f} / {v.recalls[1]:.3f})",
                      equal and v.speedup() >= RESTRICTED))  # fmt: skip
    if precision is not None:
        gap = precision.ann - precision.exact
        found.append((f"P@10 {precision.spec} within {PRECISION} of exact", f"{gap:+.4f}",
                      abs(gap) <= PRECISION))  # fmt: skip
    return found


def print_targets(console: Console, found: list[tuple[str, str, bool | None]]) -> None:
    table = _table(console, "targets", ("target", "figure", "met"))
    for target, figure, met in found:
        table.add_row(target, figure, _mark(met))
    console.print(table)


def write_json(path: Path, figures: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=1, default=_plain) + "\n")
    return path


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def plot(path: Path, backends: Sequence[Backend], title: str) -> Path:
    """Recall@10 against queries/s, a line per backend and way, a panel per call size."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, batch in zip(axes, (1, 32), strict=True):
        for n, backend in enumerate(backends):
            rows = sorted(backend.rows, key=lambda row: row.recall)
            recall = [row.recall for row in rows]
            for mode, style in (("partition", "-o"), ("grpc", "--x")):
                qps = [row.qps(mode, batch) for row in rows]
                name = "in-process" if mode == "partition" else "gRPC"
                axis.plot(recall, qps, style, color=colours[n % len(colours)],
                          label=f"{backend.spec}, {name}")  # fmt: skip
        axis.set_yscale("log")
        axis.set_xlabel("recall@10 against exact search")
        axis.set_title(f"{batch} quer{'y' if batch == 1 else 'ies'} a call")
        axis.axvline(RECALL, color="grey", linewidth=0.8)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("queries per second (median of runs)")
    axes[1].legend(fontsize=7, loc="lower left")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
