"""The log format and the progress bars: what a reader of a log file or a terminal sees."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from common import logs, observe, progress


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose records are written to a string in the cluster's format."""
    stream = io.StringIO()
    logger = logging.getLogger("tests.observe")
    handler = logs.json_handler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logs.name_service("")


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_log_line_is_one_json_object_with_the_fields_of_the_format(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logs.name_service("taxonomy")
    logger.info("moved %s to %s", "Apparel/Shoes", 'Footwear "new"')

    (line,) = _lines(stream)
    assert line["message"] == 'moved Apparel/Shoes to Footwear "new"'
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.observe"
    assert line["service"] == "taxonomy"
    assert isinstance(line["pid"], int)
    assert str(line["time"]).endswith("Z") and "T" in str(line["time"])
    assert "request_id" not in line  # logged outside any call


def test_a_line_logged_inside_a_call_carries_its_request_id(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    with observe.requested_as("req-7"):
        logger.warning("inside")
    logger.warning("after")

    inside, after = _lines(stream)
    assert inside["request_id"] == "req-7"
    assert "request_id" not in after


def test_a_traceback_stays_inside_its_line(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    try:
        raise KeyError("lost")
    except KeyError:
        logger.exception("failed")

    (line,) = _lines(stream)
    assert "KeyError: 'lost'" in str(line["exc_info"])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_to_a_file_writes_plain_lines_without_repaints() -> None:
    out = io.StringIO()
    with progress.progress(total=50, desc="embed", unit="img", file=out, mininterval=0) as bar:
        for _ in range(50):
            bar.update()

    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 2  # at least the start and the end, each a line of its own
    assert all(line.startswith("embed:") for line in lines)
    assert "50/50" in lines[-1]


def test_progress_to_a_file_writes_at_most_a_line_per_tick() -> None:
    out = io.StringIO()
    for _ in progress.progress(range(10_000), desc="seed", file=out):
        pass

    assert len(out.getvalue().splitlines()) <= 3  # start, end, perhaps one tick between


def test_progress_on_a_terminal_keeps_tqdms_bar_repainted_in_place() -> None:
    out = _Terminal()
    with progress.progress(total=3, desc="train", file=out, mininterval=0) as bar:
        bar.update(3)

    assert "\r" in out.getvalue()
