"""Dynamic batching: the images of concurrent requests in one model run (N images or T ms)."""

import dataclasses
import queue
import threading
import time
from concurrent.futures import Future
from typing import Protocol

import numpy as np

Outputs = tuple[np.ndarray, np.ndarray]


class Model(Protocol):
    """What a batch runs through: rows in, the same number of rows out in each output."""

    def embed(self, batch: np.ndarray) -> Outputs: ...


@dataclasses.dataclass
class _Part:
    """One submitted block of rows, waiting for its share of a batch's outputs."""

    model: Model
    inputs: np.ndarray
    arrived: float  # time.monotonic() when submitted
    future: Future[Outputs] = dataclasses.field(default_factory=Future)


_STOP = object()  # queued by close(): the worker finishes what it holds, then exits


class Batcher:
    """Runs submitted rows through their model in batches, on one worker thread.

    A batch starts with the oldest waiting part and takes the parts queued after it until it
    holds `max_images` rows or the oldest has waited `max_wait_s`. A batch holds parts of one
    model only, so switching models happens between batches and a part never sees two.
    While a batch runs, the next requests are decoded and queued by other threads.
    """

    def __init__(self, max_images: int, max_wait_s: float) -> None:
        if max_images < 1 or max_wait_s < 0:
            raise ValueError(f"max_images {max_images} must be >= 1, max_wait_s {max_wait_s} >= 0")
        self.max_images = max_images
        self._max_wait_s = max_wait_s
        self._queue: queue.SimpleQueue[_Part | object] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self._worker.start()

    def submit(self, model: Model, inputs: np.ndarray) -> Future[Outputs]:
        """Queues rows for `model`; safe to call from any thread.

        Args:
            model: what the rows run through; parts of different models never share a batch.
            inputs: 1 to max_images rows (the first axis).

        Returns:
            A future of the model's outputs for exactly these rows, in order.

        Raises:
            ValueError: no rows or more than max_images.
        """
        if not 0 < len(inputs) <= self.max_images:
            raise ValueError(f"{len(inputs)} rows in one part; 1 to {self.max_images} allowed")
        part = _Part(model, inputs, time.monotonic())
        self._queue.put(part)
        return part.future

    def close(self) -> None:
        """Runs what is queued, then stops the worker."""
        self._queue.put(_STOP)
        self._worker.join()

    def _loop(self) -> None:
        carried: _Part | object | None = None
        while carried is not _STOP:
            first = carried if carried is not None else self._queue.get()
            if not isinstance(first, _Part):
                return
            batch, carried = self._collect(first)
            _run(batch)

    def _collect(self, first: _Part) -> tuple[list[_Part], _Part | object | None]:
        """The parts of one batch, and the part (or stop) that did not fit, to start the next."""
        batch = [first]
        rows = len(first.inputs)
        deadline = first.arrived + self._max_wait_s
        while rows < self.max_images:
            try:
                remaining = deadline - time.monotonic()
                item = (
                    self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get(False)
                )
            except queue.Empty:
                break
            if (
                not isinstance(item, _Part)
                or item.model is not first.model
                or rows + len(item.inputs) > self.max_images
            ):
                return batch, item
            batch.append(item)
            rows += len(item.inputs)
        return batch, None


def _run(batch: list[_Part]) -> None:
    """One model run for the parts still wanted; each gets its own rows of every output."""
    wanted = [part for part in batch if part.future.set_running_or_notify_cancel()]
    if not wanted:
        return
    try:
        inputs = (
            wanted[0].inputs if len(wanted) == 1 else np.concatenate([p.inputs for p in wanted])
        )
        outputs = wanted[0].model.embed(inputs)
    except Exception as error:  # every caller of this batch hears of the failure
        for part in wanted:
            part.future.set_exception(error)
        return
    start = 0
    for part in wanted:
        stop = start + len(part.inputs)
        part.future.set_result((outputs[0][start:stop], outputs[1][start:stop]))
        start = stop
