"""The cluster's one log format: a JSON object a line, with the request id of the call.

Each line has `time` (ISO 8601, UTC), `level`, `logger`, `pid`, `service` (once the process
has named it), `message`, `request_id` (inside a call, see `common.observe`), and `exc_info`
with the traceback where there is one.
"""

import logging
import sys
import time
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from common.observe import request_id

_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}


class _Context(logging.Filter):
    """Adds the process's service name and the current call's request id to each record."""

    def __init__(self) -> None:
        super().__init__()
        self.service = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if self.service:
            record.service = self.service
        rid = request_id()
        if rid:
            record.request_id = rid
        return True


_context = _Context()


def configure(level: int = logging.INFO) -> None:
    """Sends the root logger's records to stderr as JSON lines (replacing its handlers)."""
    logging.basicConfig(level=level, handlers=[json_handler(sys.stderr)], force=True)


def json_handler(stream: TextIO) -> logging.Handler:
    """A handler writing records to `stream` in the cluster's format."""
    handler = logging.StreamHandler(stream)
    formatter = JsonFormatter(_FIELDS, rename_fields=_RENAMED, json_ensure_ascii=False)
    formatter.converter = time.gmtime  # 2026-01-31T23:59:59.123Z
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    handler.setFormatter(formatter)
    handler.addFilter(_context)
    return handler


def name_service(name: str) -> None:
    """Names the service in every line logged from now on ("taxonomy", "index-0")."""
    _context.service = name
