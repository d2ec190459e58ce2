"""Dynamic batching: the images that queue while the model runs go through it in one run."""

import collections
import dataclasses
import threading
import time
from concurrent.futures import Future
from typing import Protocol

import numpy as np
import prometheus_client

Outputs = tuple[np.ndarray, np.ndarray]


class Model(Protocol):
    """What a batch runs through: rows in, the same number of rows out in each output."""

    def embed(self, batch: np.ndarray) -> Outputs: ...


@dataclasses.dataclass
class _Part:
    """One caller's rows [start, stop) of a batch, and the future of their outputs."""

    start: int
    stop: int
    future: Future[Outputs] = dataclasses.field(default_factory=Future)


@dataclasses.dataclass
class _Batch:
    """The rows of one model's run, written in place by the threads that reserved them."""

    model: Model
    rows: np.ndarray  # (max_images, ...): rows [0, used) are reserved
    opened: float  # time.monotonic() of the first reservation
    used: int = 0
    unwritten: int = 0  # parts reserved but not yet written
    parts: list[_Part] = dataclasses.field(default_factory=list)


_Share = tuple[_Batch, list[_Part]]  # consecutive parts of a batch, run together

BATCH_IMAGES = prometheus_client.Histogram(
    "visualsearch_encoder_batch_images",
    "Images in one model run (a share of a batch; cancelled callers' images left out).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
QUEUE_IMAGES = prometheus_client.Gauge(
    "visualsearch_encoder_queue_images",
    "Images reserved in batches and not yet running through the model.",
)


class Slot:
    """Rows reserved in a batch: write them in place (`rows`), then call `written`."""

    def __init__(self, batcher: "Batcher", batch: _Batch, part: _Part) -> None:
        self._batcher = batcher
        self._batch = batch
        self._part = part

    @property
    def rows(self) -> np.ndarray:
        """The reserved rows, a view of the batch: what is written here is what runs."""
        return self._batch.rows[self._part.start : self._part.stop]

    @property
    def future(self) -> Future[Outputs]:
        """The model's outputs for exactly these rows, in order."""
        return self._part.future

    def written(self) -> None:
        """The rows hold their inputs; the batch may run once all its slots say so."""
        self._batcher._written(self._batch)


class Batcher:
    """Runs reserved rows through their model in batches, on `runners` worker threads.

    A batch opens with the first reservation and runs as soon as a worker is free and its
    rows are written: a lone part on an idle batcher starts at once, and the parts that come
    while every worker is busy gather in one batch until a worker frees or it holds
    `max_images` rows. A batch whose rows are still being written takes more reservations
    for up to `max_wait_s` after it opened. A batch holds rows of one model only, so
    switching models happens between batches and a part never sees two.

    Callers write their rows straight into the batch (`reserve`, then `Slot.written`), on
    their own threads, while the workers run the previous batches: a worker's only work
    between two runs is to hand out the outputs. A worker that takes a batch while others are
    idle shares it out between them, whole parts each, so that one batch can use them all.
    """

    def __init__(self, max_images: int, max_wait_s: float, runners: int = 1) -> None:
        if max_images < 1 or max_wait_s < 0 or runners < 1:
            raise ValueError(
                f"max_images {max_images} and runners {runners} must be >= 1, "
                f"max_wait_s {max_wait_s} >= 0"
            )
        self.max_images = max_images
        self._max_wait_s = max_wait_s
        self._changed = threading.Condition()
        self._open: _Batch | None = None  # taking reservations
        self._full: collections.deque[_Batch] = collections.deque()  # closed, oldest first
        self._shares: collections.deque[_Share] = collections.deque()  # for idle workers
        self._idle = 0  # workers waiting for a batch
        self._stopping = False
        self._workers = [
            threading.Thread(target=self._loop, name=f"batcher-{i}", daemon=True)
            for i in range(runners)
        ]
        for worker in self._workers:
            worker.start()

    def reserve(
        self, model: Model, count: int, row_shape: tuple[int, ...], dtype: type = np.float32
    ) -> Slot:
        """Reserves `count` rows for `model`; safe to call from any thread.

        Args:
            model: what the rows run through; rows of different models never share a batch.
            count: 1 to max_images rows.
            row_shape: the shape of one row; rows of another shape start another batch.
            dtype: the rows' element type.

        Returns:
            The slot to write the rows into; its future gives their outputs.

        Raises:
            ValueError: no rows or more than max_images.
            RuntimeError: the batcher is closed.
        """
        if not 0 < count <= self.max_images:
            raise ValueError(f"{count} rows in one part; 1 to {self.max_images} allowed")
        with self._changed:
            if self._stopping:
                raise RuntimeError("the batcher is closed")
            batch = self._open
            if batch is not None and (
                batch.model is not model
                or batch.rows.shape[1:] != row_shape
                or batch.rows.dtype != dtype
                or batch.used + count > self.max_images
            ):
                self._close(batch)
                batch = None
            if batch is None:  # the worker learns the new batch's deadline
                rows: np.ndarray = np.empty((self.max_images, *row_shape), dtype)
                batch = self._open = _Batch(model, rows, time.monotonic())
                self._changed.notify()
            part = _Part(batch.used, batch.used + count)
            batch.parts.append(part)
            batch.used += count
            batch.unwritten += 1
            QUEUE_IMAGES.inc(count)
            if batch.used == self.max_images:
                self._close(batch)
        return Slot(self, batch, part)

    def submit(self, model: Model, inputs: np.ndarray) -> Future[Outputs]:
        """Copies `inputs`' rows (the first axis) into a batch: `reserve`, write, `written`."""
        slot = self.reserve(model, len(inputs), inputs.shape[1:], inputs.dtype.type)
        try:
            slot.rows[...] = inputs
        finally:
            slot.written()
        return slot.future

    def close(self) -> None:
        """Runs what is reserved, then stops the workers; later reservations are refused."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for worker in self._workers:
            worker.join()

    def _close(self, batch: _Batch) -> None:
        """Takes no more reservations in `batch`; it runs once written. Holds the lock."""
        self._open = None
        self._full.append(batch)
        if batch.unwritten == 0:
            self._changed.notify()

    def _written(self, batch: _Batch) -> None:
        with self._changed:
            batch.unwritten -= 1
            if batch.unwritten == 0:  # it may run, closed or open
                self._changed.notify()

    def _loop(self) -> None:
        while (share := self._next()) is not None:
            _run(*share)

    def _next(self) -> _Share | None:
        """The next share of a batch to run; None when closing and nothing is left."""
        with self._changed:
            self._idle += 1
            try:
                return self._wait_for_share()
            finally:
                self._idle -= 1

    def _wait_for_share(self) -> _Share | None:
        """Waits for a share, or for the oldest closed batch once written to share out; closes
        the open batch once written (or past its wait), since this worker is free. Holds the
        lock."""
        while True:
            if self._shares:
                return self._shares.popleft()
            if self._full:
                if self._full[0].unwritten == 0:
                    batch = self._full.popleft()
                    first, *others = _split(batch, pieces=self._idle)
                    self._shares.extend(others)
                    self._changed.notify(len(others))
                    return first
                timeout = None  # its writers notify
            elif (taking := self._open) is not None:
                timeout = taking.opened + self._max_wait_s - time.monotonic()
                if taking.unwritten == 0 or timeout <= 0 or self._stopping:
                    self._close(taking)
                    continue
                # else its writers notify, or the wait ends
            elif self._stopping:
                return None
            else:
                timeout = None
            self._changed.wait(timeout)


def _split(batch: _Batch, pieces: int) -> list[_Share]:
    """The batch's parts cut into up to `pieces` shares of about equal rows, in order: a part
    goes to the share its middle row falls in."""
    shares: list[list[_Part]] = [[] for _ in range(max(pieces, 1))]
    for part in batch.parts:
        shares[(part.start + part.stop) * len(shares) // (2 * batch.used)].append(part)
    return [(batch, parts) for parts in shares if parts]


def _run(batch: _Batch, parts: list[_Part]) -> None:
    """One model run for the parts still wanted; each gets its own rows of every output."""
    QUEUE_IMAGES.dec(parts[-1].stop - parts[0].start)  # a share's parts are consecutive
    wanted = [part for part in parts if part.future.set_running_or_notify_cancel()]
    if not wanted:
        return
    try:
        if len(wanted) == len(parts):  # consecutive rows
            inputs = batch.rows[parts[0].start : parts[-1].stop]
        else:  # a caller cancelled: its rows do not run
            inputs = np.concatenate([batch.rows[part.start : part.stop] for part in wanted])
        BATCH_IMAGES.observe(len(inputs))
        outputs = batch.model.embed(inputs)
    except Exception as error:  # every caller of this batch hears of the failure
        for part in wanted:
            part.future.set_exception(error)
        return
    start = 0
    for part in wanted:
        stop = start + part.stop - part.start
        part.future.set_result((outputs[0][start:stop], outputs[1][start:stop]))
        start = stop
