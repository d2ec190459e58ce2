"""One service as its own process on loopback: start it, wait until it serves, stop it.

The cluster, the tests and the benchmark all start services this way.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common import config
from common.config import TlsConfig
from common.tls import blocking_channel

ROOT = Path(__file__).resolve().parent.parent


def free_ports(n: int = 1) -> list[int]:
    """Loopback ports nothing listens on right now (all held open until all are chosen)."""
    probes = [socket.socket() for _ in range(n)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def spawn(
    module: str, args: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Starts `python -m module args` in a session of its own, its output appended to `log`.

    `env` is laid over this process's environment (VS_* settings, say).
    """
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the shell reaches the caller, not the service
        )


def wait_serving(
    address: str,
    process: subprocess.Popen[bytes],
    log: Path,
    deadline: float,
    tls: TlsConfig | None = None,
) -> None:
    """Returns once the process reports SERVING on grpc.health.v1 (asked over TLS if `tls`).

    Raises:
        RuntimeError: the process exited, or did not serve by `deadline`; with its log's tail.
    """
    while health(address, tls) != "SERVING":
        if process.poll() is not None:
            raise RuntimeError(f"{address} exited ({process.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{address} did not serve in time:\n{tail(log)}")
        time.sleep(0.2)


def start(
    module: str,
    args: Sequence[str],
    address: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
) -> subprocess.Popen[bytes]:
    """Spawns a service and waits until it serves; stops it again if it does not.

    The health check speaks TLS where the service's configuration (`env` over this
    process's) turns it on.
    """
    tls = config.load(environ={**os.environ, **(env or {})}).tls
    process = spawn(module, args, log, env)
    try:
        wait_serving(address, process, log, time.monotonic() + timeout_s, tls)
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen[bytes], grace_s: float = 30.0) -> int:
    """SIGTERM (in-flight calls drain), SIGKILL after `grace_s`; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def health(address: str, tls: TlsConfig | None = None) -> str:
    """The server's overall health status name, or why it could not be asked.

    With `tls` on, asks with the cluster's certificate, as an internal service requires.
    """
    with blocking_channel(address, tls) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        except grpc.RpcError as error:
            return f"unreachable ({error.code().name})"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def tail(log: Path, lines: int = 20) -> str:
    """The last lines of a log file, or nothing if it does not exist."""
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
