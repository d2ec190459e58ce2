"""A throwaway PostgreSQL server for the tests: found or apt-installed, started, then removed."""

import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, create_engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from infra.process import free_ports, tail

APT_LOG = Path(tempfile.gettempdir()) / "vs-test-postgres-apt.log"
ROLE = "postgres"
DATABASE = "vs_test"
_TOOLS = ("initdb", "pg_ctl", "postgres")
# Throwaway data: durability buys nothing here and costs seconds per test run.
_SETTINGS = "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"


@dataclass(frozen=True)
class Server:
    url: str
    version: str


@contextmanager
def configured() -> Iterator[Server | str]:
    """The server the environment asks for (VS_TEST_POSTGRES=0: none; VS_TEST_POSTGRES_URL: that
    one; else one of our own), or the reason there is none."""
    if os.environ.get("VS_TEST_POSTGRES") == "0":
        yield "turned off on purpose (VS_TEST_POSTGRES=0)"
    elif given := os.environ.get("VS_TEST_POSTGRES_URL"):
        yield _existing(given)
    else:
        with running() as server:
            yield server


@contextmanager
def running() -> Iterator[Server | str]:
    """A new server on a free loopback port, stopped and deleted on exit; or why there is none."""
    bindir = find_bindir() or _install_and_find()
    if isinstance(bindir, str):
        yield bindir
        return
    user = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="vs-test-postgres-"))
    try:
        try:
            if user is not None:
                os.chown(root, user.pw_uid, user.pw_gid)
            server = _start(bindir, root, user)
        except OSError as error:
            server = f"could not start PostgreSQL: {error}"
        yield server
    finally:
        # Immediate: the data is thrown away, so there is nothing to shut down cleanly for.
        stop = [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"]
        if (root / "data" / "postmaster.pid").exists():
            _run(stop, user)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database on the server of `url`, dropped (connections and all) on exit."""
    name = f"t_{uuid.uuid4().hex}"
    _execute(url, f"CREATE DATABASE {name}")
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a test that forgot to dispose its engine must not make the drop fail.
        _execute(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def find_bindir() -> Path | None:
    """The first folder holding initdb, pg_ctl and postgres: pg_config's, Debian's, then PATH's."""
    for folder in _candidates():
        if all(os.access(folder / tool, os.X_OK) for tool in _TOOLS):
            return folder
    return None


def apt_commands() -> list[list[str]] | None:
    """The apt-get commands that install the server, or None where this process cannot run them."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    # Waits for a lock held by, say, unattended-upgrades on a fresh machine instead of failing.
    lock = ["-o", "DPkg::Lock::Timeout=120"]
    return [
        ["apt-get", *lock, "update"],
        ["apt-get", *lock, "install", "-y", "--no-install-recommends", "postgresql"],
    ]


def install(log: Path = APT_LOG, timeout_s: float = 420) -> str | None:
    """Installs the server with apt-get, output to `log`; why it could not, or None.

    `timeout_s` covers every command: pytest-timeout (600 s) counts this as a test's setup.
    """
    commands = apt_commands()
    if commands is None:
        return "no PostgreSQL server binaries, and no apt-get run as root to install them"
    log.write_text("")
    deadline = time.monotonic() + timeout_s
    for command in commands:
        reason = _logged(command, log, max(deadline - time.monotonic(), 1))
        if reason:
            return f"`{shlex.join(command)}` {reason} (log: {log})"
    return None


def _logged(command: list[str], log: Path, timeout_s: float) -> str | None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with log.open("a") as out:
        try:
            code = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=timeout_s,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            return f"timed out after {timeout_s:.0f} s"
        except OSError as error:
            return f"failed: {error}"
    return f"exited with {code}: {tail(log, 1)}" if code != 0 else None


def _install_and_find() -> Path | str:
    reason = install()
    return reason or find_bindir() or f"apt-get installed postgresql, but no initdb ({APT_LOG})"


def _candidates() -> list[Path]:
    found = []
    if pg_config := shutil.which("pg_config"):
        bindir = _output([pg_config, "--bindir"])
        if bindir:
            found.append(Path(bindir))
    # Debian keeps the server out of PATH, one folder per major version: newest first.
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major, reverse=True)
    if initdb := shutil.which("initdb"):
        found.append(Path(initdb).resolve().parent)
    return found


def _output(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _major(bindir: Path) -> int:
    return int(bindir.parent.name) if bindir.parent.name.isdigit() else 0


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Whom to run the server as: initdb, pg_ctl and postgres all refuse to run as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def _start(bindir: Path, root: Path, user: pwd.struct_passwd | None) -> Server | str:
    data, log = root / "data", root / "server.log"
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust"]
    # C locale and no sync: nothing to configure on a bare machine, and seconds saved.
    reason = _run([*initdb, "--no-locale", "--encoding=UTF8", "--no-sync"], user)
    if reason:
        return reason
    (port,) = free_ports(1)
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\n")
        conf.write(f"unix_socket_directories = '{root}'\n{_SETTINGS}")
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"]
    reason = _run(start, user, timeout_s=90)
    if reason:
        return f"{reason}: {' | '.join(tail(log, 3).splitlines())}"
    return _with_database(f"postgresql+psycopg://{ROLE}@127.0.0.1:{port}/postgres")


def _with_database(url: str) -> Server | str:
    """Creates DATABASE on the new server; the server with its URL, or why that failed."""
    try:
        _execute(url, f"CREATE DATABASE {DATABASE}")
    except (SQLAlchemyError, ImportError) as error:
        return f"CREATE DATABASE failed: {_first_line(error)}"
    return _existing(make_url(url).set(database=DATABASE).render_as_string(hide_password=False))


def _existing(url: str) -> Server | str:
    """A server that is already running, with its version; or why it cannot be reached."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we install
    try:
        version = str(_execute(parsed, "SHOW server_version"))
    except (SQLAlchemyError, ImportError) as error:
        return f"cannot connect to {parsed}: {_first_line(error)}"
    return Server(parsed.render_as_string(hide_password=False), version)


def _execute(url: URL | str, sql: str) -> Any:
    """Runs one statement outside a transaction (CREATE DATABASE needs that); its first value."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            result = connection.exec_driver_sql(sql)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def _first_line(error: Exception) -> str:
    """The driver's own message: the reason must fit on the one summary line."""
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


def _run(command: list[str], user: pwd.struct_passwd | None, timeout_s: float = 120) -> str | None:
    """Runs a server tool, as `user` if given; why it failed, or None."""
    as_user: dict[str, Any] = {}
    if user is not None:
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd="/",
            timeout=timeout_s,
            check=False,
            **as_user,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{Path(command[0]).name} failed: {error}"
    if result.returncode == 0:
        return None
    said = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
    return f"{Path(command[0]).name} exited with {result.returncode}: {said}"
