"""Progress of long commands: a live bar on a terminal, a plain line every few seconds in a file.

A bar repainted in place (carriage returns) is right on a terminal and wrong in a log file or a
pipe (`make train` under nohup), which would fill with thousands of repaints on one line. Every
progress bar of the project comes from `progress()`, which picks by where the bar goes.
"""

import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

from tqdm import tqdm

TICK_S = (
    10.0  # where the output is no terminal: a line at most (and with ticking, at least) this often
)

Item = TypeVar("Item")


class _Lines:
    """A stream for tqdm that writes each refresh as a line of its own, without repaints."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable: Iterable[Item] | None = None, **options: Any) -> "tqdm[Item]":
    """A tqdm bar (the same arguments) suited to where it is written (`file`, else stderr).

    On a terminal it is tqdm's own; elsewhere it writes a plain line when it starts, at most
    every TICK_S while it moves, and when it closes.
    """
    file = options.pop("file", None) or sys.stderr
    if _terminal(file):
        return tqdm(iterable, file=file, **options)
    options.setdefault("mininterval", TICK_S)
    return tqdm(iterable, file=_Lines(file), **options)


@contextmanager
def ticking(bar: "tqdm[Any]") -> Iterator[None]:
    """Refreshes `bar` every TICK_S while the block runs: one long call shows its elapsed time."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(TICK_S):
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _terminal(file: Any) -> bool:
    isatty = getattr(file, "isatty", None)
    return bool(isatty and isatty())
