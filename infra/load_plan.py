"""What a load run does and what it found: the mix, pace and stop of `python -m infra.load`, and
the summary of its calls. Free of Locust (which patches the process on import) and of gRPC."""

import argparse
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

KINDS = {"search": "SearchByImage", "similar": "SimilarProducts", "ingest": "Ingest"}
PERCENTILES = (50, 95, 99)
CALLS_PER_USER_S = 4.0  # a paced user's share of --rate, unless --users says otherwise
OK = "OK"
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """One run: where, which calls in which proportions, how fast, until when."""

    targets: tuple[str, ...]
    mix: dict[str, int]  # call name (KINDS' values) -> weight
    users: int
    rate: float | None  # calls/s of all users together; None: each calls again when answered
    duration_s: float | None
    count: int | None
    out: Path
    catalog: Path | None = None
    token: str = ""
    timeout_s: float = 10.0
    k: int = 10
    items: int = 1000
    prepare: bool = False


@dataclass(frozen=True)
class Call:
    """One finished call as the load generator saw it."""

    kind: str
    started: float  # seconds, on one monotonic clock
    latency_s: float
    code: str  # the gRPC status code's name; OK when answered


def parse_mix(text: str) -> dict[str, int]:
    """`search=6,similar=3,ingest=1` as {call name: weight}; kinds left out weigh 0.

    Raises:
        ValueError: an unknown kind, a weight that is not a whole number >= 0, or all zero.
    """
    mix: dict[str, int] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        kind, _, weight = part.partition("=")
        if kind.strip() not in KINDS:
            raise ValueError(f"mix: unknown call {kind!r} (known: {', '.join(KINDS)})")
        if not weight.strip().isdigit():
            raise ValueError(f"mix: weight of {kind!r} must be a whole number >= 0, not {weight!r}")
        mix[KINDS[kind.strip()]] = int(weight)
    if not any(mix.values()):
        raise ValueError(f"mix: {text!r} gives no call a weight above 0")
    return {name: weight for name, weight in mix.items() if weight}


def parse_duration(text: str) -> float:
    """Seconds of `90`, `90s`, `1.5m` or `1h`.

    Raises:
        ValueError: anything else, or not above zero.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise ValueError(f"duration {text!r}: expected a number of s, m or h (30s, 2m)")
    seconds = float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be above zero")
    return seconds


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.load",
        description="Runs a mix of gateway calls on Locust; prints and writes what it measured.",
    )
    parser.add_argument(
        "--target",
        default="127.0.0.1:50051",
        help="gateway address; several, comma-separated, share the users in turn",
    )
    parser.add_argument("--mix", default="search=6,similar=3,ingest=1", help="call=weight,...")
    parser.add_argument(
        "--users",
        type=int,
        help=f"concurrent callers (default 1; with --rate: one per {CALLS_PER_USER_S:g} calls/s)",
    )
    parser.add_argument("--rate", type=float, help="calls/s of all users together")
    stop = parser.add_mutually_exclusive_group(required=True)
    stop.add_argument("--duration", type=parse_duration, help="how long: 30s, 2m")
    stop.add_argument("--count", type=int, help="how many calls in all")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("var/load") / time.strftime("%Y%m%d-%H%M%S"),
        help="folder for summary.json and report.html (default: var/load/<date-time>)",
    )
    parser.add_argument(
        "--catalog", type=Path, help="catalog of the images and ids (default: the generated one)"
    )
    parser.add_argument("--token", default="", help="bearer token sent with every call")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of a call, seconds")
    parser.add_argument("--k", type=int, default=10, help="neighbours asked of a search")
    parser.add_argument(
        "--items", type=int, default=1000, help="catalog items whose images and ids are sent"
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="first ingest the --items (idempotent), so that SimilarProducts finds them",
    )
    return parser


def plan_from(argv: Sequence[str] | None = None) -> Plan:
    """The plan of a command line; argparse exits with a message naming a bad argument."""
    cli = parser()
    args = cli.parse_args(argv)
    try:
        mix = parse_mix(args.mix)
    except ValueError as error:
        cli.error(str(error))
    if args.rate is not None and args.rate <= 0:
        cli.error(f"--rate must be above zero, not {args.rate}")
    for name in ("users", "count", "items"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            cli.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    users = args.users or (math.ceil(args.rate / CALLS_PER_USER_S) if args.rate else 1)
    targets = tuple(t.strip() for t in args.target.split(",") if t.strip())
    return Plan(
        targets,
        mix,
        users,
        args.rate,
        args.duration,
        args.count,
        args.out,
        args.catalog,
        args.token,
        args.timeout,
        args.k,
        args.items,
        args.prepare,
    )


@dataclass(frozen=True)
class Figures:
    """Calls of one kind (or all): how many, how fast, latency of the answered ones, errors."""

    calls: int
    answered: int
    per_s: float  # calls over the whole run's time, answered or not
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: dict[str, int]  # status code name -> calls that ended with it


@dataclass(frozen=True)
class Summary:
    elapsed_s: float  # first call's start to last call's answer
    kinds: dict[str, Figures]
    total: Figures


def sample(items: Sequence[T], n: int) -> list[T]:
    """`n` of the items (all where fewer), spread evenly over them."""
    step = max(1, len(items) // max(1, n))
    return list(items[::step][:n])


def summarise(calls: Sequence[Call]) -> Summary:
    """Per call kind and in all: calls, calls/s over the run (first start to last answer),
    p50/p95/p99 latency of the answered calls in ms, and the failures by status code name."""
    if not calls:
        return Summary(0.0, {}, _figures([], 0.0))
    elapsed = max(c.started + c.latency_s for c in calls) - min(c.started for c in calls)
    kinds = sorted({c.kind for c in calls})
    by_kind = {kind: _figures([c for c in calls if c.kind == kind], elapsed) for kind in kinds}
    return Summary(elapsed, by_kind, _figures(calls, elapsed))


def _figures(calls: Sequence[Call], elapsed: float) -> Figures:
    answered = [c.latency_s * 1000 for c in calls if c.code == OK]
    ms: list[float | None] = [None] * len(PERCENTILES)
    if answered:
        ms = [float(value) for value in np.percentile(answered, PERCENTILES)]
    errors = dict(sorted(Counter(c.code for c in calls if c.code != OK).items()))
    per_s = len(calls) / elapsed if elapsed > 0 else 0.0
    p50, p95, p99 = ms
    return Figures(len(calls), len(answered), per_s, p50, p95, p99, errors)


def table(summary: Summary) -> str:
    """The summary as a few lines of text."""
    rows = [
        f"{'call':16s} {'calls':>7s} {'per s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s}"
        "  errors"
    ]
    for name, figures in [*summary.kinds.items(), ("all", summary.total)]:
        latencies = " ".join(_ms(v) for v in (figures.p50_ms, figures.p95_ms, figures.p99_ms))
        errors = ", ".join(f"{code} {n}" for code, n in figures.errors.items()) or "-"
        rows.append(f"{name:16s} {figures.calls:7d} {figures.per_s:8.1f} {latencies}  {errors}")
    return "\n".join(rows)


def _ms(value: float | None) -> str:
    return f"{value:8.1f}" if value is not None else f"{'-':>8s}"
