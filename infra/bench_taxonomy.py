"""Taxonomy server time on a generated marketplace tree: the rerank, a subtree move, the load.

    python -m infra.bench_taxonomy [--seed 7] [--nodes 10000] [--items 20000] [--calls 2000]
        [--moves 15] [--quick] [--baseline 84a8e88] [--profile rerank|move]

Each figure is measured beside today's implementation as it was at --baseline (its tree.py,
rerank.py, db.py and store.py read with `git show` into a scratch package at run time; if git
or the commit is missing, the baseline columns stay empty). Rerank calls alternate between the
implementations, so a ratio compares figures taken under the same load. Server time is the
servicer's work for a call without gRPC: the rerank alone, and with the lookup of the
candidates' leaves in the database (SQLite files in a temporary folder) as Rerank does it.
A benchmark, not a test: it asserts nothing.
"""

import argparse
import cProfile
import dataclasses
import gc
import importlib
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session, sessionmaker

from common import paths
from common.config import TaxonomyConfig
from common.progress import progress
from infra import taxonomy_market as market
from infra.taxonomy_market import COLOURS, Call, Catalog
from taxonomy_svc import db
from taxonomy_svc.ops import MoveNode
from taxonomy_svc.record import Record
from taxonomy_svc.rerank import Settings, Step, rerank
from taxonomy_svc.tree import ROOT, Node, Tree

REPO = Path(__file__).resolve().parents[1]
BASELINE_FILES = ("tree.py", "rerank.py", "db.py", "store.py")
RERANK_TARGET_MS, MOVE_TARGET_MS = 1.0, 100.0
PARTITION_LEVEL = 2  # the cluster's default: the audit log names the partitions an edit touches
Row = tuple[str, list[int], list[int], float | None]  # figure, new ns, old ns, target ms


def main() -> None:
    args = _arguments()
    config = TaxonomyConfig()
    settings = Settings(config.max_distance, config.visual_weight, Step(config.widest_step))
    catalog = market.generate(random.Random(args.seed), args.nodes, args.items, args.related)
    tree = Tree(catalog.nodes, catalog.related)
    calls = market.calls(
        random.Random(args.seed + 1), catalog, tree, args.scenarios, args.candidates
    )
    print(_describe(catalog, tree, calls, args.k, settings))
    gc.collect()
    gc.freeze()  # the generated catalog and calls, which no server holds, are never scanned
    with tempfile.TemporaryDirectory(prefix="bench_taxonomy_") as scratch:
        old = _baseline(Path(scratch), args.baseline)
        sessions = sessionmaker(_new_db(Path(scratch) / "new.sqlite", catalog))
        record = Record(sessions, PARTITION_LEVEL)
        old_sessions = _old_db(old, Path(scratch) / "old.sqlite", catalog) if old else None
        if args.profile:
            _profile(args.profile, record, calls, settings, args)
            return
        notes = [
            f"old: taxonomy_svc at {args.baseline}, read from git into a scratch package"
            if old
            else f"old: baseline unavailable ({args.baseline}), its columns are empty",
            "medians and 90th percentiles, the garbage collector on (the generated catalog and "
            "calls frozen out of it); on shared cores only ratios of one run mean much",
        ]
        rows = [
            *_bench_rerank(record, old, old_sessions, calls, settings, args, notes),
            *_bench_move(record, old_sessions, args, notes),
            *_bench_load(catalog, sessions, old, old_sessions, args.runs, notes),
        ]
    _print_table(rows, notes)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="seed of the tree, items and calls")
    parser.add_argument("--nodes", type=int, default=10_000, help="nodes in the generated tree")
    parser.add_argument("--items", type=int, default=20_000, help="items in the catalog")
    parser.add_argument("--related", type=int, default=25, help="related links in the tree")
    parser.add_argument("--calls", type=int, default=2000, help="timed rerank calls")
    parser.add_argument("--candidates", type=int, default=200, help="candidates per call")
    parser.add_argument("--k", type=int, default=10, help="results kept per call")
    parser.add_argument("--scenarios", type=int, default=64, help="distinct calls, cycled")
    parser.add_argument("--moves", type=int, default=15, help="timed subtree moves")
    parser.add_argument("--subtree", type=int, default=500, help="nodes in the moved subtree")
    parser.add_argument("--runs", type=int, default=7, help="timed tree builds and loads")
    parser.add_argument("--baseline", default="84a8e88", help="commit of today's implementation")
    parser.add_argument("--quick", action="store_true", help="fewer calls, moves and loads")
    parser.add_argument(
        "--profile", choices=("rerank", "move"), help="print a cProfile of the new one instead"
    )
    args = parser.parse_args()
    if args.quick:
        args.calls, args.moves, args.runs, args.scenarios = 300, 5, 3, 32
    return args


def _baseline(scratch: Path, commit: str) -> ModuleType | None:
    """Today's taxonomy modules from git, as the package `baseline_taxonomy`, or None."""
    package = scratch / "baseline_taxonomy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in BASELINE_FILES:
        try:
            source = subprocess.run(
                ["git", "show", f"{commit}:taxonomy_svc/{name}"],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or error
            print(f"baseline unavailable (git show {commit}:taxonomy_svc/{name}: {detail})")
            return None
        (package / name).write_text(source.replace("taxonomy_svc.", "baseline_taxonomy."))
    sys.path.insert(0, str(scratch))
    try:
        for name in BASELINE_FILES:
            importlib.import_module(f"baseline_taxonomy.{name.removesuffix('.py')}")
    except ImportError as error:  # it needs something of common/ that has gone since
        print(f"baseline unavailable ({commit}: {error})")
        return None
    return importlib.import_module("baseline_taxonomy")


def _new_db(file: Path, catalog: Catalog) -> Engine:
    engine = db.make_engine(str(file))
    with sessionmaker(engine).begin() as session:
        session.execute(insert(db.NodeRow), [_node_row(node) for node in catalog.nodes])
        session.execute(insert(db.ItemRow), [_item_row(i, leaf) for i, leaf in catalog.items])
        session.execute(insert(db.RelatedRow), [{"a": a, "b": b} for a, b in catalog.related])
        session.add(db.TreeVersionRow(id=1, version=1))
    return engine


def _old_db(old: ModuleType, file: Path, catalog: Catalog) -> sessionmaker[Session]:
    """The same catalog in the old path-keyed schema, made by the old db.py."""
    engine = old.db.make_engine(str(file))
    node_rows = [
        {
            "path": catalog.paths[node.id],
            "name": node.name,
            "parent": catalog.paths[node.parent] if node.parent else None,
            "depth": catalog.paths[node.id].count(paths.SEP) + 1,
        }
        for node in catalog.nodes
    ]
    item_rows = [{**_item_row(i, leaf), "leaf": catalog.paths[leaf]} for i, leaf in catalog.items]
    for row in item_rows:
        del row["leaf_id"]
    sessions = sessionmaker(engine)
    with sessions.begin() as session:
        session.execute(insert(old.db.NodeRow), node_rows)
        session.execute(insert(old.db.ItemRow), item_rows)
        session.add(old.db.TreeVersionRow(id=1, version=1))
    return sessions


def _node_row(node: Node) -> dict[str, Any]:
    return {"id": node.id, "name": node.name, "parent_id": node.parent or None, "archived": False}


def _item_row(item_id: str, leaf: int) -> dict[str, Any]:
    colour = COLOURS[leaf % len(COLOURS)]
    return {
        "id": item_id,
        "leaf_id": leaf,
        "leaf_source": "given",
        "title": f"{colour} thing {item_id}",
        "colour": colour,
        "usage": "Casual",
    }


def _bench_rerank(
    record: Record,
    old: ModuleType | None,
    old_sessions: sessionmaker[Session] | None,
    calls: list[Call],
    settings: Settings,
    args: argparse.Namespace,
    notes: list[str],
) -> list[Row]:
    """The implementations' calls interleaved, their order rotated each call, after a warm-up."""
    new = partial(_new_rank, record, settings, args.k)
    runs: dict[str, tuple[Callable[[Call], object], list[Call]]] = {
        "new": (new, calls),
        "new+lookup": (partial(_served_new, record, settings, args.k), calls),
    }
    if old is not None and old_sessions is not None:
        config, old_tree = TaxonomyConfig(), old.tree.Tree.from_paths(record.tree.nodes())

        def old_rank(call: Call) -> object:
            return old.rerank.rerank(
                old_tree, call.query, call.candidates, args.k, config.max_distance,
                config.visual_weight,
            )  # fmt: skip

        def old_lookup(ids: list[str]) -> tuple[list[Any], list[str]]:
            with old_sessions() as session:
                return old.store.get_items(session, ids)  # type: ignore[no-any-return]

        old_calls = [_as_old(old, call) for call in calls]
        runs["old"] = (old_rank, old_calls)
        runs["old+lookup"] = (partial(_served, old_lookup, old_rank), old_calls)
    times: dict[str, list[int]] = {name: [] for name in runs}
    warm, order = max(20, args.calls // 10), list(runs)
    for n in progress(range(warm + args.calls), desc="rerank calls", unit="call"):
        for name in order[n % len(order) :] + order[: n % len(order)]:
            run, inputs = runs[name]
            took = _timed(partial(run, inputs[n % len(inputs)]))
            times[name] += [took] if n >= warm else []
    notes += [
        f"rerank: {args.candidates} candidates, k={args.k}, 3 believed leaves; {args.calls} "
        f"calls timed after {warm}, the implementations alternating; old: its rerank.py and "
        "tree.py (paths as keys, no related links or back-off steps)",
        "+ item lookup: what each servicer's Rerank does without gRPC and protobuf (new: "
        "Record.rerank, the candidates' leaves from memory, the k kept items read from SQLite; "
        "old: every candidate read by id with its store.get_items, then the rerank)",
    ]
    return [
        ("rerank", times["new"], times.get("old", []), RERANK_TARGET_MS),
        ("rerank + item lookup", times["new+lookup"], times.get("old+lookup", []), None),
    ]


def _new_rank(record: Record, settings: Settings, k: int, call: Call) -> object:
    return rerank(record.tree, call.query, call.candidates, k, settings, [])


def _served_new(record: Record, settings: Settings, k: int, call: Call) -> object:
    """What the Taxonomy servicer's Rerank does between the protobufs (Record.rerank)."""
    return record.rerank(call.query, call.candidates, k, settings)


def _served(
    lookup: Callable[[list[str]], tuple[list[Any], list[str]]],
    rank: Callable[[Call], object],
    call: Call,
) -> object:
    """What the old Taxonomy servicer's Rerank did between the request and the response
    protobufs: the candidates' leaves as the database records them, then the rerank."""
    found, _ = lookup([c.item_id for c in call.candidates])
    known = {item.id: item for item in found}
    placed = [
        dataclasses.replace(c, leaf=known[c.item_id].leaf) if c.item_id in known else c
        for c in call.candidates
    ]
    return rank(Call(call.query, placed))


def _as_old(old: ModuleType, call: Call) -> Call:
    """The call with the old rerank's own Candidate class (duck-typed the same)."""
    return Call(
        call.query, [old.rerank.Candidate(c.item_id, c.visual, c.leaf) for c in call.candidates]
    )


def _bench_move(
    record: Record,
    old_sessions: sessionmaker[Session] | None,
    args: argparse.Namespace,
    notes: list[str],
) -> list[Row]:
    """The subtree moved back and forth, each move first planned as a dry run; the first
    round trip warms the caches and is not counted."""
    tree = record.tree
    moved, away = _move_pair(tree, args.subtree)
    name, home = tree.node(moved).name, tree.node(moved).parent
    ends = [(away, tree.path_of(away)), (home, tree.path_of(home) if home else "")]
    times: list[list[int]] = [[], [], []]  # dry run, commit, old
    for n in progress(range(2 + args.moves), desc="subtree moves", unit="move"):
        (target, parent), (_, source) = ends[n % 2], ends[(n + 1) % 2]
        op = MoveNode(moved, target or None)
        took = [
            _timed(partial(record.apply, op, record.version, "bench", dry_run=True)),
            _timed(partial(record.apply, op, record.version, "bench")),
        ]
        if old_sessions is not None:
            took.append(_timed(partial(_old_move, old_sessions, _child(source, name), parent)))
        for kept, ns in zip(times, took, strict=False):
            kept += [ns] if n >= 2 else []
    size, items = len(record.tree.subtree(moved)), record.counts().get(moved, 0)
    notes += [
        f"move: {name!r} ({size} nodes, {items} items beneath) between "
        f"{ends[1][1] or 'the top level'!r} and {ends[0][1]!r}, {args.moves} times after a "
        "round trip; Record.apply(MoveNode) plans and checks the new tree, then writes the "
        "node row, the version and the audit log and commits (SQLite, WAL)",
        f"old move: the old code had none; its schema forces rewriting the {size} node rows "
        f"and {items} item rows: timed as that minimal SQL (2 UPDATEs and the version bump "
        "in one transaction, foreign keys checked at commit), with no check, tree or log",
    ]
    return [
        ("subtree move, committed", times[1], times[2], MOVE_TARGET_MS),
        ("subtree move, dry run", times[0], [], None),
    ]


def _move_pair(tree: Tree, size: int) -> tuple[int, int]:
    """The node whose subtree is nearest `size` nodes, and a node one level above it to move
    it under: another node of its parent's depth, with no child of its name."""
    sizes: dict[int, int] = {}
    for node_id in tree.active_ids():
        for ancestor in tree.chain(node_id):
            sizes[ancestor] = sizes.get(ancestor, 0) + 1
    moved = min(sizes, key=lambda i: (abs(sizes[i] - size), i))
    depth, name = len(tree.chain(moved)), tree.node(moved).name.casefold()
    inside = set(tree.subtree(moved))
    away = next(
        i
        for i in tree.active_ids()
        if len(tree.chain(i)) == max(1, depth - 1)
        and i not in inside
        and i != tree.node(moved).parent
        and all(tree.node(c).name.casefold() != name for c in tree.child_ids(i))
    )
    return moved, away


def _child(parent: str, name: str) -> str:
    return paths.join(parent, name) if parent else name


_OLD_MOVE = (
    "PRAGMA defer_foreign_keys = ON",  # both tables' keys change: check them at commit
    "UPDATE nodes SET path = :new || substr(path, :cut), depth = depth + :shift,"
    " parent = CASE WHEN path = :old THEN :parent ELSE :new || substr(parent, :cut) END"
    " WHERE path = :old OR (path >= :low AND path < :high)",
    "UPDATE items SET leaf = :new || substr(leaf, :cut) WHERE leaf >= :low AND leaf < :high",
    "UPDATE tree_version SET version = version + 1 WHERE id = 1",
)


def _old_move(sessions: sessionmaker[Session], source: str, parent: str) -> None:
    """The least the old path-keyed schema needs for a subtree move: every node row of the
    subtree and every item row beneath it rewritten, in one transaction."""
    new = _child(parent, source.rsplit(paths.SEP, 1)[-1])
    values = {
        "old": source,
        "new": new,
        "cut": len(source) + 1,
        "shift": new.count(paths.SEP) - source.count(paths.SEP),
        "parent": parent or None,
        "low": source + paths.SEP,
        "high": source + chr(ord(paths.SEP) + 1),
    }
    with sessions.begin() as session:
        for statement in _OLD_MOVE:
            session.execute(text(statement), values)


def _bench_load(
    catalog: Catalog,
    sessions: sessionmaker[Session],
    old: ModuleType | None,
    old_sessions: sessionmaker[Session] | None,
    runs: int,
    notes: list[str],
) -> list[Row]:
    """The tree built from its nodes, and the record loaded as a server does at start."""
    node_paths = list(catalog.paths.values())
    times: list[list[int]] = [[], [], [], []]
    for _ in progress(range(runs), desc="tree builds and loads", unit="run"):
        times[0].append(_timed(partial(Tree, catalog.nodes, catalog.related)))
        times[1].append(_timed(partial(Record, sessions, PARTITION_LEVEL)))
        if old is not None and old_sessions is not None:
            times[2].append(_timed(partial(old.tree.Tree.from_paths, node_paths)))
            times[3].append(_timed(partial(_old_load, old, old_sessions)))
    notes.append(
        f"tree build: Tree(nodes, related links), old: Tree.from_paths; load: Record(...) "
        f"reads nodes and links and builds the tree, old: its server's path query and "
        f"Tree.from_paths; {runs} runs each"
    )
    return [
        (f"tree build, {len(catalog.nodes):,} nodes", times[0], times[2], None),
        ("record load at start", times[1], times[3], None),
    ]


def _old_load(old: ModuleType, sessions: sessionmaker[Session]) -> object:
    """What the old server did at start: every path read, the tree built from them."""
    with sessions() as session:
        node_paths, version = old.store.load_paths(session), old.store.tree_version(session)
    return old.tree.Tree.from_paths(node_paths), version


def _timed(run: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    run()
    return time.perf_counter_ns() - start


def _describe(catalog: Catalog, tree: Tree, calls: list[Call], k: int, settings: Settings) -> str:
    """The generated tree and calls, so that the figures can be judged."""
    depths = Counter(len(tree.chain(i)) for i in tree.leaf_ids())
    results = [rerank(tree, c.query, c.candidates, k, settings) for c in calls]
    leaves = [len({c.leaf for c in call.candidates}) for call in calls]
    steps = [r.step.name.lower() for result in results for r in result.items]
    return (
        f"tree: {len(catalog.nodes):,} nodes, {len(tree.leaf_ids()):,} leaves, "
        f"{sum(1 for n in catalog.nodes if n.parent == ROOT)} top-level, height {tree.height}, "
        f"leaves by depth {dict(sorted(depths.items()))}, {len(catalog.related)} related links, "
        f"{len(catalog.items):,} items\n"
        f"rerank calls: {len(calls)} distinct, cycled; candidate leaves per call {min(leaves)}"
        f" to {max(leaves)} (median {statistics.median(leaves):g}); dropped per call: median "
        f"{statistics.median(r.dropped for r in results):g}; steps of the top {k}: "
        + ", ".join(f"{s} {steps.count(s)}" for s in ("leaf", "sibling", "subtree", "related"))
    )


def _profile(
    what: str, record: Record, calls: list[Call], settings: Settings, args: argparse.Namespace
) -> None:
    """cProfile of the new rerank with its lookup, or of the moves, by cumulative time."""
    profile = cProfile.Profile()
    if what == "rerank":
        profile.runcall(lambda: [_served_new(record, settings, args.k, c) for c in calls * 5])
    else:
        moved, away = _move_pair(record.tree, args.subtree)
        home = record.tree.node(moved).parent
        for n in range(args.moves):
            op = MoveNode(moved, (away, home)[n % 2] or None)
            profile.runcall(record.apply, op, record.version, "bench")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


def _print_table(rows: list[Row], notes: list[str]) -> None:
    table = Table(title="Taxonomy server time in ms (new: this tree; old: the baseline)")
    for column in ("figure", "new median", "new p90", "target", "old median", "old p90"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    table.add_column("new/old", justify="right")
    for figure, new, old, target in rows:
        median = statistics.median(new)
        met = (
            ""
            if target is None
            else f"< {target:g} " + ("met" if _ms(median) < target else "MISSED")
        )
        table.add_row(
            figure,
            _shown(median),
            _shown(_p90(new)),
            met,
            _shown(statistics.median(old)) if old else "-",
            _shown(_p90(old)) if old else "-",
            f"{median / statistics.median(old):.2f}" if old else "-",
        )
    console = Console()
    console.width = max(console.width, 100)
    console.print(table)
    for note in notes:
        console.print(note, highlight=False)


def _ms(ns: float) -> float:
    return ns / 1e6


def _shown(ns: float) -> str:
    ms = _ms(ns)
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def _p90(values: list[int]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else float(values[0])


if __name__ == "__main__":
    main()
