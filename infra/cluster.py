"""Starts and stops the cluster on loopback, every service its own process.

    python -m infra.cluster up      # returns once every service reports SERVING
    python -m infra.cluster down    # SIGTERM (in-flight calls drain), SIGKILL after the grace
    python -m infra.cluster status

Config comes from VS_CONFIG (or infra/cluster.toml) and VS_* overrides, as for the services.
"""

import argparse
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from common import config as cluster_config
from common.config import ClusterConfig
from infra import process

PID_FILE = "cluster.json"


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    address: str
    args: tuple[str, ...] = ()


def services(config: ClusterConfig) -> list[Service]:
    """Every process of the cluster, with the address it serves on."""
    shards = [
        Service(f"shard-{n}", "index_svc.server", address, ("--shard", str(n)))
        for n, address in enumerate(config.shard_addresses)
    ]
    encoders = [
        Service(f"encoder-{n}", "encoder_svc.server", address, ("--replica", str(n)))
        for n, address in enumerate(config.encoder_addresses)
    ]
    return [
        Service("taxonomy", "taxonomy_svc.server", config.address(config.taxonomy.port)),
        *encoders,
        *shards,
        Service("gateway", "gateway.server", config.address(config.gateway.port)),
    ]


def up(config: ClusterConfig, timeout_s: float = 120.0) -> dict[str, int]:
    """Starts every service and waits until each reports SERVING; stops them all on failure.

    Returns:
        The process id of each service, by name (also written to the run directory).

    Raises:
        RuntimeError: a service exited or did not become ready in time; its log tail says why.
    """
    run_dir = Path(config.run_dir)
    if _read_pids(run_dir):
        raise RuntimeError(f"a cluster is already running from {run_dir}; stop it first")
    run_dir.mkdir(parents=True, exist_ok=True)
    started = {
        service.name: process.spawn(service.module, service.args, _log(run_dir, service))
        for service in services(config)
    }
    (run_dir / PID_FILE).write_text(json.dumps({n: p.pid for n, p in started.items()}))
    try:
        deadline = time.monotonic() + timeout_s
        for service in services(config):
            log = _log(run_dir, service)
            process.wait_serving(service.address, started[service.name], log, deadline, config.tls)
    except BaseException:
        down(config)
        raise
    return {name: child.pid for name, child in started.items()}


def down(config: ClusterConfig) -> None:
    """Sends SIGTERM to every service, waits for the grace period, then kills what is left."""
    run_dir = Path(config.run_dir)
    pids = _read_pids(run_dir)
    for pid in pids.values():
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + config.grace_s + 5.0
    while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids.values():
        _signal(pid, signal.SIGKILL)
    (run_dir / PID_FILE).unlink(missing_ok=True)


def status(config: ClusterConfig) -> dict[str, str]:
    """Each service's health as its server reports it (or why it cannot be asked)."""
    return {
        service.name: process.health(service.address, config.tls) for service in services(config)
    }


def _log(run_dir: Path, service: Service) -> Path:
    return run_dir / f"{service.name}.log"


def _read_pids(run_dir: Path) -> dict[str, int]:
    try:
        pids: dict[str, int] = json.loads((run_dir / PID_FILE).read_text())
    except FileNotFoundError:
        return {}
    return {name: pid for name, pid in pids.items() if _alive(pid)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (FileNotFoundError, IndexError):
        return False


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args()
    config = cluster_config.load()
    if args.command == "up":
        for name, pid in up(config).items():
            print(f"{name:10s} pid {pid}")
    elif args.command == "down":
        down(config)
    else:
        for name, health in status(config).items():
            print(f"{name:10s} {health}")


if __name__ == "__main__":
    main()
