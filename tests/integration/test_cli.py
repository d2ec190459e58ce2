"""The `taxonomy` command line against a real taxonomy server process on loopback."""

import json
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner, Result

from infra import process
from protos.visualsearch.v1 import taxonomy_pb2, taxonomy_pb2_grpc
from taxonomy_svc import cli

LINES = """\
Apparel
Apparel > Bottomwear
Apparel > Bottomwear > Jeans
Apparel > Topwear
Apparel > Topwear > Shirts
Apparel > Topwear > Tshirts
Footwear
Footwear > Shoes
Footwear > Shoes > Casual Shoes
"""
TIMEOUT = 5.0


class Server:
    """A running taxonomy server: the CLI's environment, a stub, and the ids of the import."""

    def __init__(self, env: dict[str, str | None], stub: taxonomy_pb2_grpc.TaxonomyStub) -> None:
        self.env = env
        self.stub = stub
        self.ids: dict[str, int] = {}

    def taxonomy(self, *args: str, input: str | None = None) -> Result:
        """Runs `taxonomy ARGS`; the address comes from VS_* as for a user of the cluster."""
        return CliRunner().invoke(cli.app, list(args), input=input, env=self.env)

    def version(self) -> int:
        return int(self.stub.GetTree(taxonomy_pb2.GetTreeRequest(), timeout=TIMEOUT).version)

    def name(self, node_id: int) -> str:
        return str(self.stub.GetNode(taxonomy_pb2.NodeRef(id=node_id), timeout=TIMEOUT).node.name)

    def ref(self, path: str) -> str:
        """The imported node at `path` by id, which later edits to its ancestors do not change."""
        return f"#{self.ids[path]}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An empty server, a tree imported through the CLI, three items; stopped cleanly after."""
    folder = tmp_path_factory.mktemp("taxonomy_cli")
    (folder / "cluster.toml").write_text("")
    (port,) = process.free_ports()
    env = {
        "VS_CONFIG": str(folder / "cluster.toml"),
        "VS_TAXONOMY_PORT": str(port),
        "VS_TAXONOMY_DATABASE": str(folder / "taxonomy.sqlite"),
    }
    log = folder / "server.log"
    running = process.start("taxonomy_svc.server", [], f"127.0.0.1:{port}", log, env)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield _imported(
                Server({**env, "VS_TOKEN": None, "COLUMNS": "200"}, _stub(channel)), folder
            )
    finally:
        returncode = process.stop(running)
    assert returncode == 0, log.read_text()


def _stub(channel: grpc.Channel) -> taxonomy_pb2_grpc.TaxonomyStub:
    return taxonomy_pb2_grpc.TaxonomyStub(channel)


def _imported(server: Server, folder: Path) -> Server:
    (folder / "tree.txt").write_text(LINES)
    result = server.taxonomy("import", str(folder / "tree.txt"), "--yes")
    assert result.exit_code == 0, result.output
    assert "applied: version 1" in result.output
    tree = server.stub.GetTree(taxonomy_pb2.GetTreeRequest(), timeout=TIMEOUT)
    server.ids = {node.path: node.id for node in tree.nodes}
    items = [
        _item("tee1", "Apparel/Topwear/Tshirts", "Blue tee", "Blue"),
        _item("tee2", "Apparel/Topwear/Tshirts", "White tee", "White"),
        _item("shirt", "Apparel/Topwear/Shirts", "Oxford shirt", "White"),
    ]
    stored = server.stub.PutItems(taxonomy_pb2.PutItemsRequest(items=items), timeout=TIMEOUT)
    assert stored.stored == 3, stored.errors
    return server


def _item(item_id: str, leaf: str, title: str, colour: str) -> taxonomy_pb2.Item:
    given = taxonomy_pb2.LEAF_SOURCE_GIVEN
    return taxonomy_pb2.Item(id=item_id, leaf=leaf, leaf_source=given, title=title, colour=colour)


def _line(output: str, word: str) -> str:
    """The one line of `output` that holds `word`."""
    (line,) = [line for line in output.splitlines() if word in line]
    return line


def test_tree_shows_the_imported_nodes_with_ids_and_counts(server: Server) -> None:
    result = server.taxonomy("tree")
    assert result.exit_code == 0, result.output
    for path, node_id in server.ids.items():
        assert f"#{node_id}" in result.output, path
    assert "2 items" in _line(result.output, f"#{server.ids['Apparel/Topwear/Tshirts']} ")
    assert "3 items" in _line(result.output, f"#{server.ids['Apparel']} ")
    shallow = server.taxonomy("tree", "--depth", "1").output
    assert "Apparel" in shallow and "Bottomwear" not in shallow
    past = server.taxonomy("tree", "--version", "1").output
    assert "version 1" in past and "Bottomwear" in past
    assert "items" not in past  # counts are of where items are now: not shown on a past tree


def test_add_with_yes_applies_and_bumps_the_version(server: Server) -> None:
    before = server.version()
    result = server.taxonomy("add", "Footwear", "Sandals", "--yes", "--comment", "summer")
    assert result.exit_code == 0, result.output
    assert "add Footwear/Sandals" in result.output
    assert f"applied: version {before + 1}" in result.output
    assert "Apply?" not in result.output
    top = server.taxonomy("add", "--top", "Kids", "-y")
    assert top.exit_code == 0, top.output
    assert server.version() == before + 2
    shown = server.taxonomy("show", "Footwear/Sandals")
    assert shown.exit_code == 0, shown.output
    assert "Footwear/Sandals" in shown.output and "yes" in _line(shown.output, "leaf")


def test_dry_run_prints_the_effect_and_changes_nothing(server: Server) -> None:
    before = server.version()
    shirts = server.ids["Apparel/Topwear/Shirts"]
    result = server.taxonomy("rename", server.ref("Apparel/Topwear/Shirts"), "Formal", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"dry run against version {before}" in result.output
    assert "/Formal" in _line(result.output, f"#{shirts} ")
    assert "Apply?" not in result.output and "not applied" in result.output
    assert (server.version(), server.name(shirts)) == (before, "Shirts")


def test_an_edit_that_changes_nothing_makes_no_version(server: Server) -> None:
    before = server.version()
    result = server.taxonomy("move", server.ref("Footwear"), "--top", "--yes")
    assert result.exit_code == 0, result.output
    assert f"nothing to change: the tree stays at version {before}" in result.output
    assert server.version() == before


def test_answering_no_at_the_prompt_changes_nothing(server: Server) -> None:
    before = server.version()
    result = server.taxonomy("add", "Apparel", "Hats", input="n\n")
    assert result.exit_code == 0, result.output
    assert "Apply? [y/N]" in result.output and "not applied" in result.output
    assert server.version() == before
    answered_yes = server.taxonomy("add", "Apparel", "Hats", input="y\n")
    assert f"applied: version {before + 1}" in answered_yes.output


def test_rename_then_history_lists_both_edits_with_the_actor(server: Server) -> None:
    shoes = server.ids["Footwear/Shoes/Casual Shoes"]
    renamed = server.taxonomy("rename", f"{shoes}", "Sneakers", "-y", "--comment", "clearer")
    assert renamed.exit_code == 0, renamed.output
    version = server.version()
    result = server.taxonomy("history")
    assert result.exit_code == 0, result.output
    first, last = _line(result.output, "import 9 paths"), _line(result.output, "Sneakers")
    assert "anonymous" in first and "import" in first
    assert f" {version} " in last and "rename" in last and "anonymous" in last and "clearer" in last
    recent = server.taxonomy("history", "--from", str(version - 1)).output
    assert "Sneakers" in recent and "import 9 paths" not in recent


def test_revert_restores_the_name(server: Server) -> None:
    jeans = server.ids["Apparel/Bottomwear/Jeans"]
    renamed = server.taxonomy("rename", server.ref("Apparel/Bottomwear/Jeans"), "Denim", "-y")
    assert renamed.exit_code == 0, renamed.output
    renamed_in = server.version()
    assert server.name(jeans) == "Denim"
    result = server.taxonomy("revert", str(renamed_in), "--yes")
    assert result.exit_code == 0, result.output
    assert server.name(jeans) == "Jeans"
    assert f"{renamed_in}" in _line(server.taxonomy("history").output, "revert version")


def test_diff_lists_renames_moves_and_item_moves(server: Server) -> None:
    topwear, shirts = server.ids["Apparel/Topwear"], server.ids["Apparel/Topwear/Shirts"]
    tshirts = server.ref("Apparel/Topwear/Tshirts")
    edits = [
        ("move", f"#{shirts}", "Apparel/Bottomwear"),
        ("rename", f"#{topwear}", "Tops"),
        ("split", tshirts, "--child", "Blue=colour:blue", "--rest", "Other"),
    ]
    for edit in edits:
        result = server.taxonomy(*edit, "--yes")
        assert result.exit_code == 0, result.output
    assert "items moved: 2" in result.output  # the split's dry run
    result = server.taxonomy("diff", "1")
    assert result.exit_code == 0, result.output
    assert "Tops" in _line(result.output, f"#{topwear} ")
    assert "Apparel/Bottomwear/Shirts" in _line(result.output, "Apparel/Topwear/Shirts")
    assert "items moved: 2" in result.output
    assert "Apparel/Tops/Tshirts/Blue" in _line(result.output, "tee1")
    assert "Apparel/Tops/Tshirts/Other" in _line(result.output, "tee2")


def test_export_of_the_first_version_equals_the_imported_lines(
    server: Server, tmp_path: Path
) -> None:
    result = server.taxonomy("export", "--version", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == LINES
    written = tmp_path / "tree.json"
    as_json = ("--format", "json", "--out", str(written))
    assert server.taxonomy("export", "--version", "1", *as_json).exit_code == 0
    assert [n["path"] for n in json.loads(written.read_text())["nodes"]] == [
        line.replace(" > ", "/") for line in LINES.splitlines()
    ]


def test_a_path_the_tree_lacks_is_not_found_without_a_traceback(server: Server) -> None:
    before = server.version()
    for args in (("show", "Apparel/Nope"), ("rename", "Apparel/Nope", "X", "--yes")):
        result = server.taxonomy(*args)
        assert result.exit_code == 1, result.output
        assert "NOT_FOUND" in result.stderr and "Apparel/Nope" in result.stderr
        assert "Traceback" not in result.output
    assert server.version() == before


def test_a_bad_rule_is_a_usage_error(server: Server) -> None:
    result = server.taxonomy("split", "Apparel/Bottomwear/Jeans", "--child", "Blue=size:9")
    assert result.exit_code == 2
    assert "NAME=FIELD:V1,V2" in result.output


def test_an_edit_overtaken_at_the_prompt_exits_3_naming_the_version(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def another_editor_goes_first(text: str, default: bool) -> bool:
        op = taxonomy_pb2.EditOp(add=taxonomy_pb2.AddNode(name="Elsewhere"))
        request = taxonomy_pb2.EditRequest(base_version=server.version(), op=op)
        server.stub.Edit(request, timeout=TIMEOUT)
        return True

    monkeypatch.setattr(cli.typer, "confirm", another_editor_goes_first)
    before = server.version()
    result = server.taxonomy("add", "--top", "Late")
    assert result.exit_code == 3, result.output
    assert f"version {before + 1}" in result.stderr
    assert "Traceback" not in result.output
    assert server.version() == before + 1


class _Recorder(taxonomy_pb2_grpc.TaxonomyServicer):
    """Answers GetTree and keeps the metadata of each call."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def GetTree(
        self, request: taxonomy_pb2.GetTreeRequest, context: grpc.ServicerContext
    ) -> taxonomy_pb2.Tree:
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
        return taxonomy_pb2.Tree(version=7)


def test_the_token_is_sent_as_a_bearer_header_only_when_given(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    (tmp_path / "token.toml").write_text('[auth]\ntoken = "from-config"\n')
    recorder = _Recorder()
    fake = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    taxonomy_pb2_grpc.add_TaxonomyServicer_to_server(recorder, fake)
    port = fake.add_insecure_port("127.0.0.1:0")
    fake.start()
    cases: list[tuple[list[str], str, str | None]] = [
        (["--token", "s3cret"], "token.toml", None),  # the option wins over the config
        ([], "token.toml", "from-env"),  # and so does VS_TOKEN
        ([], "token.toml", None),
        ([], "empty.toml", None),
    ]
    try:
        for args, config, token in cases:
            env = {"VS_CONFIG": str(tmp_path / config), "VS_TOKEN": token}
            address = ["--address", f"127.0.0.1:{port}"]
            result = CliRunner().invoke(cli.app, [*address, *args, "tree"], env=env)
            assert result.exit_code == 0, result.output
            assert "version 7" in result.output
    finally:
        fake.stop(None)
    assert [m.get("authorization") for m in recorder.metadata] == [
        "Bearer s3cret",
        "Bearer from-env",
        "Bearer from-config",
        None,
    ]
