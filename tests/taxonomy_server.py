"""A taxonomy server in its own process, with bearer tokens on: shared by the tests that call it."""

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from sqlalchemy.orm import sessionmaker

from infra import process
from protos.visualsearch.v1 import taxonomy_pb2, taxonomy_pb2_grpc
from taxonomy_svc import ops
from taxonomy_svc.db import make_engine
from taxonomy_svc.items import Incoming
from taxonomy_svc.record import Record

TIMEOUT = 10.0
TOKENS = """
[[token]]
name = "ed"
value = "ed-secret"
roles = ["reader", "writer", "editor"]

[[token]]
name = "ann"
value = "ann-secret"
roles = ["reader", "editor"]

[[token]]
name = "reader"
value = "rd-secret"
roles = ["reader"]

[[token]]
name = "writer"
value = "wr-secret"
roles = ["reader", "writer"]
"""
EDITOR, READER, WRITER = "ed-secret", "rd-secret", "wr-secret"


@dataclass
class Server:
    address: str
    database: Path
    log: Path
    child: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL: no drain, no clean close; what the database committed is all that is left."""
        assert self.child is not None
        self.child.kill()
        self.child.wait()

    def stub(self, channel: grpc.Channel) -> taxonomy_pb2_grpc.TaxonomyStub:
        return taxonomy_pb2_grpc.TaxonomyStub(channel)


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def seed(database: Path, lines: str, items: Sequence[Incoming] = ()) -> None:
    """Imports a tree (line format) and records items, as the seed command would."""
    engine = make_engine(str(database))
    record = Record(sessionmaker(engine), partition_level=2)
    record.apply(ops.Import("lines", lines), record.version, "seed")
    if items:
        record.put_items(items, 0.0)
    engine.dispose()


@contextmanager
def running(folder: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Serves folder/taxonomy.sqlite with the tokens above until the block ends (SIGTERM)."""
    (folder / "tokens.toml").write_text(TOKENS)
    (folder / "cluster.toml").write_text("")
    (port,) = process.free_ports()
    server = Server(f"127.0.0.1:{port}", folder / "taxonomy.sqlite", folder / "server.log")
    settings = {
        "VS_CONFIG": str(folder / "cluster.toml"),
        "VS_TAXONOMY_PORT": str(port),
        "VS_TAXONOMY_DATABASE": str(server.database),
        "VS_AUTH_TOKENS_FILE": str(folder / "tokens.toml"),
        **(env or {}),
    }
    server.child = process.start("taxonomy_svc.server", [], server.address, server.log, settings)
    try:
        yield server
    finally:
        killed = server.child.poll() is not None
        returncode = process.stop(server.child)
    assert killed or returncode == 0, server.log.read_text()


def version(stub: taxonomy_pb2_grpc.TaxonomyStub) -> int:
    request = taxonomy_pb2.GetTreeRequest(version_only=True)
    return int(stub.GetTree(request, timeout=TIMEOUT, metadata=bearer(READER)).version)


def edit(
    stub: taxonomy_pb2_grpc.TaxonomyStub,
    op: taxonomy_pb2.EditOp,
    base: int | None = None,
    dry_run: bool = False,
    token: str = EDITOR,
) -> taxonomy_pb2.EditResponse:
    request = taxonomy_pb2.EditRequest(
        base_version=version(stub) if base is None else base, op=op, dry_run=dry_run
    )
    return stub.Edit(request, timeout=TIMEOUT, metadata=bearer(token))  # type: ignore[no-any-return]


def ref(path: str) -> taxonomy_pb2.NodeRef:
    return taxonomy_pb2.NodeRef(path=path)
