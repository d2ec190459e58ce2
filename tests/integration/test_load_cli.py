"""The load generator as a command (Locust in its own process) against gateways that do not
answer: a port nobody serves, and a server that refuses every call; the report counts the
failures by status code, and the calls carry the bearer token."""

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from catalog.generate import generate
from infra import process
from protos.visualsearch.v1 import gateway_pb2, gateway_pb2_grpc


class _Busy(gateway_pb2_grpc.VisualSearchServicer):
    """A gateway that refuses every call as an overloaded one does, noting the token sent."""

    def __init__(self) -> None:
        self.tokens: list[str | None] = []

    def SimilarProducts(self, request: gateway_pb2.SimilarProductsRequest, context: Any) -> Any:
        self.tokens.append(dict(context.invocation_metadata()).get("authorization"))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many calls in flight")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("catalog"), per_leaf=2)


@pytest.fixture
def busy() -> Iterator[tuple[str, _Busy]]:
    servicer = _Busy()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    gateway_pb2_grpc.add_VisualSearchServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(None)


def _load(target: str, out: Path, catalog: Path, *args: str) -> tuple[dict[str, Any], str]:
    command = [sys.executable, "-m", "infra.load", "--target", target, *args]
    command += ["--out", str(out), "--catalog", str(catalog), "--timeout", "5"]
    run = subprocess.run(command, cwd=process.ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads((out / "summary.json").read_text()), run.stdout


def test_calls_to_a_dead_gateway_are_counted_as_unavailable(tmp_path: Path, catalog: Path) -> None:
    (port,) = process.free_ports()
    mix = ["--mix", "search=1,similar=1,ingest=1", "--users", "3", "--count", "12"]
    report, printed = _load(f"127.0.0.1:{port}", tmp_path, catalog, *mix)
    assert report["total"]["calls"] == 12
    assert report["total"]["answered"] == 0
    assert report["total"]["errors"] == {"UNAVAILABLE": 12}
    assert report["total"]["p50_ms"] is None  # no answered call to take a latency of
    assert sum(kind["calls"] for kind in report["kinds"].values()) == 12
    assert "UNAVAILABLE 12" in printed
    assert "UNAVAILABLE" in (tmp_path / "report.html").read_text()


def test_refusals_count_under_their_code_and_every_call_carries_the_token(
    tmp_path: Path, catalog: Path, busy: tuple[str, _Busy]
) -> None:
    target, servicer = busy
    pace = ["--mix", "similar=1", "--rate", "50", "--count", "10", "--token", "s3cret"]
    report, _ = _load(target, tmp_path, catalog, *pace)
    assert report["kinds"]["SimilarProducts"]["errors"] == {"RESOURCE_EXHAUSTED": 10}
    assert servicer.tokens == ["Bearer s3cret"] * 10
    assert "s3cret" not in (tmp_path / "summary.json").read_text()
