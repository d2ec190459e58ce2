"""Test markers (`gpu` skipped without CUDA) and the databases the storage tests run against."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests import postgres

# What became of PostgreSQL in this run, for the summary: (it ran, the line to print).
_POSTGRES = pytest.StashKey[tuple[bool, str]]()


def _has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A SQLAlchemy URL to a PostgreSQL database shared by the whole run, started on first use.

    Tests that ask for it are skipped, and the summary says why, where there is no server.
    """
    with postgres.configured() as server:
        if isinstance(server, str):
            request.config.stash[_POSTGRES] = (False, f"POSTGRESQL SKIPPED: {server}")
            pytest.skip(f"PostgreSQL: {server}")
        request.config.stash[_POSTGRES] = (
            True,
            f"PostgreSQL: {server.version} at {make_url(server.url)}",
        )
        yield server.url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy URL to a fresh, empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite'}"
        return
    # getfixturevalue, not a parameter: SQLite-only runs never start the server.
    with postgres.fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    ran, line = config.stash.get(_POSTGRES, (True, ""))
    if line:
        terminalreporter.write_sep("=", line, green=ran, red=not ran, bold=True)
