"""The batcher's grouping, ordering and in-place rows, with a plain function standing in for
the model run."""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

import numpy as np
import prometheus_client
import pytest

from encoder_svc.batcher import Batcher, Outputs, Slot

WAIT_S = 30.0  # a guard against a hang, not a timing assertion


class Recorder:
    """Returns each row and its sum, records the size of every run; can hold its first run."""

    def __init__(self, hold_first: bool = False) -> None:
        self.runs: list[int] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def embed(self, batch: np.ndarray) -> Outputs:
        self.runs.append(len(batch))
        self.started.set()
        self.release.wait(WAIT_S)
        return batch.copy(), batch.sum(axis=1)


class Meeting:
    """Returns each row and its sum once another run is under way at the same time."""

    def __init__(self) -> None:
        self.runs: list[int] = []
        self._both_in = threading.Barrier(2, timeout=WAIT_S)  # broken unless two runs meet

    def embed(self, batch: np.ndarray) -> Outputs:
        self.runs.append(len(batch))
        self._both_in.wait()
        return batch.copy(), batch.sum(axis=1)


class Broken:
    def embed(self, batch: np.ndarray) -> Outputs:
        raise RuntimeError("the model failed")


def _rows(first: int, count: int) -> np.ndarray:
    return np.arange(first, first + count, dtype=np.float32)[:, None].repeat(3, axis=1)


@pytest.fixture
def batcher() -> Iterator[Batcher]:
    batcher = Batcher(max_images=5, max_wait_s=0.0)
    yield batcher
    batcher.close()


def _reserved(batcher: Batcher, model: Recorder | Meeting, sizes: list[int]) -> list[Slot]:
    """Slots of `sizes` rows reserved before any is written, so that they share a batch
    whether or not a runner is free; then written, rows numbered on from 0."""
    slots = [batcher.reserve(model, size, (3,)) for size in sizes]
    for slot, start in zip(slots, np.cumsum([0, *sizes[:-1]]), strict=True):
        slot.rows[...] = _rows(start, len(slot.rows))
        slot.written()
    return slots


def _sample(name: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name) or 0.0


def _held(batcher: Batcher, model: Recorder) -> Future[Outputs]:
    """A first part whose run is under way and held, so that the next parts queue up."""
    first = batcher.submit(model, _rows(0, 1))
    assert model.started.wait(WAIT_S)
    return first


@pytest.mark.parametrize("runners", [1, 2])
def test_each_caller_gets_its_own_rows_in_order(runners: int) -> None:
    batcher = Batcher(max_images=16, max_wait_s=0.002, runners=runners)
    model = Recorder()
    sizes = [1, 3, 7, 16, 2, 5, 9, 4] * 4
    starts = np.cumsum([0, *sizes[:-1]])
    with ThreadPoolExecutor(8) as pool:
        futures = list(pool.map(lambda s, n: batcher.submit(model, _rows(s, n)), starts, sizes))
    for start, size, future in zip(starts, sizes, futures, strict=True):
        rows, sums = future.result(WAIT_S)
        assert np.array_equal(rows, _rows(start, size))
        assert np.array_equal(sums, _rows(start, size).sum(axis=1))
    batcher.close()
    assert sum(model.runs) == sum(sizes) and max(model.runs) <= 16


def test_waiting_parts_share_one_run_up_to_the_limit(batcher: Batcher) -> None:
    model = Recorder(hold_first=True)
    first = _held(batcher, model)
    waiting = [batcher.submit(model, _rows(10 * i, 2)) for i in range(1, 4)]
    model.release.set()
    assert [len(f.result(WAIT_S)[0]) for f in [first, *waiting]] == [1, 2, 2, 2]
    assert model.runs == [1, 4, 2]  # the third part would make 6 > 5: it starts the next run


def test_parts_of_different_models_never_share_a_run(batcher: Batcher) -> None:
    old, new = Recorder(hold_first=True), Recorder()
    _held(batcher, old)
    parts = [(old, 1), (new, 1), (new, 2), (old, 1)]
    futures = [batcher.submit(model, _rows(0, size)) for model, size in parts]
    old.release.set()
    for future in futures:
        future.result(WAIT_S)
    assert old.runs == [1, 1, 1] and new.runs == [3]


def test_a_full_batch_runs_without_waiting_out_the_delay() -> None:
    batcher = Batcher(max_images=4, max_wait_s=3600.0)
    model = Recorder()
    futures = [slot.future for slot in _reserved(batcher, model, [1, 3])]
    assert [len(f.result(WAIT_S)[0]) for f in futures] == [1, 3]
    assert model.runs == [4]
    batcher.close()


def test_a_lone_part_starts_at_once_when_a_runner_is_free() -> None:
    batcher = Batcher(max_images=8, max_wait_s=30.0)  # the old batcher waited the 30 s out
    rows, _ = batcher.submit(Recorder(), _rows(0, 1)).result(timeout=5.0)
    assert np.array_equal(rows, _rows(0, 1))
    batcher.close()


def test_parts_queued_while_the_runner_is_busy_run_together_once_it_frees() -> None:
    batcher = Batcher(max_images=8, max_wait_s=30.0)
    model = Recorder(hold_first=True)
    first = _held(batcher, model)
    queued = [batcher.submit(model, _rows(s, n)) for s, n in [(1, 1), (2, 2), (4, 1)]]
    model.release.set()
    first.result(WAIT_S)
    for (start, size), future in zip([(1, 1), (2, 2), (4, 1)], queued, strict=True):
        assert np.array_equal(future.result(timeout=5.0)[0], _rows(start, size))
    assert model.runs == [1, 4]
    batcher.close()


def test_the_metrics_count_queued_images_and_images_per_run() -> None:
    runs, images = (_sample(f"visualsearch_encoder_batch_images_{s}") for s in ("count", "sum"))
    queued = _sample("visualsearch_encoder_queue_images")
    batcher = Batcher(max_images=8, max_wait_s=30.0)
    model = Recorder(hold_first=True)
    _held(batcher, model)
    waiting = [batcher.submit(model, _rows(0, 3)), batcher.submit(model, _rows(3, 2))]
    assert _sample("visualsearch_encoder_queue_images") == queued + 5
    model.release.set()
    for future in waiting:
        future.result(WAIT_S)
    batcher.close()
    assert _sample("visualsearch_encoder_queue_images") == queued
    assert _sample("visualsearch_encoder_batch_images_count") == runs + 2
    assert _sample("visualsearch_encoder_batch_images_sum") == images + 6


def _until_idle(batcher: Batcher, runners: int) -> None:
    """Waits until `runners` workers wait for work (a guard against a start-up race)."""
    deadline = time.monotonic() + WAIT_S
    while batcher._idle < runners and time.monotonic() < deadline:
        time.sleep(0.001)


def test_runners_run_batches_at_the_same_time() -> None:
    batcher = Batcher(max_images=2, max_wait_s=0.0, runners=2)
    model = Meeting()
    futures = [batcher.submit(model, _rows(0, 2)), batcher.submit(model, _rows(2, 2))]
    assert np.array_equal(futures[1].result(WAIT_S)[0], _rows(2, 2))
    assert np.array_equal(futures[0].result(WAIT_S)[0], _rows(0, 2))
    batcher.close()


def test_idle_runners_share_a_batch_by_whole_parts() -> None:
    batcher = Batcher(max_images=5, max_wait_s=3600.0, runners=2)
    _until_idle(batcher, 2)
    model = Meeting()
    sizes = [1, 1, 2, 1]  # 5 rows: the full batch runs as two shares, met at the barrier
    starts = np.cumsum([0, *sizes[:-1]])
    slots = _reserved(batcher, model, sizes)
    for start, size, slot in zip(starts, sizes, slots, strict=True):
        assert np.array_equal(slot.future.result(WAIT_S)[0], _rows(start, size))
    assert sorted(model.runs) == [2, 3]
    batcher.close()


def test_a_failed_run_fails_its_callers_and_the_next_run_works(batcher: Batcher) -> None:
    with pytest.raises(RuntimeError, match="the model failed"):
        batcher.submit(Broken(), _rows(0, 2)).result(WAIT_S)
    rows, _ = batcher.submit(Recorder(), _rows(5, 2)).result(WAIT_S)
    assert np.array_equal(rows, _rows(5, 2))


def test_a_cancelled_part_is_not_run(batcher: Batcher) -> None:
    model = Recorder(hold_first=True)
    _held(batcher, model)
    cancelled = batcher.submit(model, _rows(0, 3))
    assert cancelled.cancel()
    kept = batcher.submit(model, _rows(3, 2))
    model.release.set()
    assert np.array_equal(kept.result(WAIT_S)[0], _rows(3, 2))
    with pytest.raises(CancelledError):
        cancelled.result(WAIT_S)
    assert model.runs == [1, 2]


@pytest.mark.parametrize("count", [0, 6])
def test_a_part_must_fit_one_batch(batcher: Batcher, count: int) -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        batcher.submit(Recorder(), _rows(0, count))


def test_close_runs_what_is_queued() -> None:
    batcher = Batcher(max_images=5, max_wait_s=3600.0)
    model = Recorder()
    future = batcher.submit(model, _rows(0, 2))
    batcher.close()
    assert future.done() and model.runs == [2]


def test_a_batch_runs_once_every_reserved_slot_is_written() -> None:
    batcher = Batcher(max_images=4, max_wait_s=0.0)
    model = Recorder()
    first, second = batcher.reserve(model, 2, (3,)), batcher.reserve(model, 2, (3,))
    second.rows[...] = _rows(2, 2)
    second.written()
    assert not model.started.wait(0.2)  # the batch is full, but the first slot is unwritten
    first.rows[...] = _rows(0, 2)
    first.written()
    assert np.array_equal(first.future.result(WAIT_S)[0], _rows(0, 2))
    assert np.array_equal(second.future.result(WAIT_S)[0], _rows(2, 2))
    assert model.runs == [4]
    batcher.close()


def test_rows_of_another_shape_start_another_batch(batcher: Batcher) -> None:
    model = Recorder(hold_first=True)
    _held(batcher, model)
    wide = batcher.submit(model, np.ones((2, 4), dtype=np.float32))
    narrow = batcher.submit(model, _rows(0, 2))
    model.release.set()
    assert wide.result(WAIT_S)[0].shape == (2, 4) and narrow.result(WAIT_S)[0].shape == (2, 3)
    assert model.runs == [1, 2, 2]


def test_a_closed_batcher_refuses_rows() -> None:
    batcher = Batcher(max_images=4, max_wait_s=0.0)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(Recorder(), _rows(0, 1))
