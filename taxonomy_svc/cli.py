"""The taxonomy editors' command line (`taxonomy --help`), a client of the Taxonomy service."""

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar, cast

import grpc
import typer
from google.protobuf.message import Message
from rich.console import Console

from common import config
from common.errors import VisualSearchError
from common.serve import channel_options
from common.tls import blocking_channel
from protos.visualsearch.v1 import taxonomy_pb2 as pb
from protos.visualsearch.v1.taxonomy_pb2_grpc import TaxonomyStub
from taxonomy_svc import cli_show as show
from taxonomy_svc.ops import RULE_FIELDS

app = typer.Typer(no_args_is_help=True, help="Reads and edits the taxonomy through its service.")

Response = TypeVar("Response")

EXIT_FAILED = 1
EXIT_ABORTED = 3  # the tree moved on between the dry run and the edit: read again, redo

_ID = re.compile(r"#?(\d+)")
_RULE = re.compile(rf"(?P<name>.+)=(?P<field>{'|'.join(RULE_FIELDS)}):(?P<values>.+)")

NodeArg = Annotated[str, typer.Argument(help='"#123" or "123" (an id) or a path "A/B/C"')]
Top = Annotated[bool, typer.Option("--top", help="to the top level")]
Version = Annotated[int, typer.Option("--version", help="a past version (0: the current one)")]


@dataclass(frozen=True)
class _Session:
    """The service and how to call it, shared by every command of one invocation."""

    stub: TaxonomyStub
    metadata: tuple[tuple[str, str], ...]
    timeout: float
    out: Console
    err: Console

    def call(self, method: Callable[..., Response], request: Message) -> Response:
        """Calls `method` with the deadline and token; a refusal is printed, then exits.

        Exits 3 on ABORTED (the server's message names the current version), else 1.
        """
        try:
            return method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as error:
            self._fail(cast(grpc.Call, error))

    def _fail(self, error: grpc.Call) -> NoReturn:
        if error.code() == grpc.StatusCode.ABORTED:
            self.err.print(error.details(), markup=False, highlight=False)
            raise typer.Exit(EXIT_ABORTED)
        self.err.print(f"{error.code().name}: {error.details()}", style="red", markup=False)
        raise typer.Exit(EXIT_FAILED)


@app.callback()
def main(
    ctx: typer.Context,
    address: Annotated[
        str | None, typer.Option(help="host:port of the service [default: the cluster config's]")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="VS_TOKEN", help="bearer token [default: the config's auth.token]"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds each call may take")] = 10.0,
) -> None:
    """Reads and edits the taxonomy through its service."""
    err = Console(stderr=True)
    try:
        cluster = config.load()  # also says whether the cluster speaks TLS
        address = address or cluster.address(cluster.taxonomy.port)
        channel = ctx.with_resource(blocking_channel(address, cluster.tls, channel_options()))
    except VisualSearchError as error:
        err.print(f"config: {error}", style="red", markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    token = token if token is not None else cluster.auth.token
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    ctx.obj = _Session(TaxonomyStub(channel), metadata, timeout, Console(), err)


def _ref(text: str) -> pb.NodeRef:
    """'#123' or '123' names a node by id, anything else by path; '' names none (the top)."""
    found = _ID.fullmatch(text.strip())
    return pb.NodeRef(id=int(found.group(1))) if found else pb.NodeRef(path=text.strip())


def _rule(spec: str) -> tuple[str, pb.Rule]:
    """'Name=field:v1,v2' as the name and its rule."""
    found = _RULE.fullmatch(spec.strip())
    values = [v.strip() for v in found.group("values").split(",") if v.strip()] if found else []
    if found is None or not values:
        fields = "|".join(RULE_FIELDS)
        raise typer.BadParameter(f"{spec!r} is not NAME=FIELD:V1,V2 with FIELD {fields}")
    return found.group("name").strip(), pb.Rule(field=found.group("field"), values=values)


def _edit(session: _Session, op: pb.EditOp, yes: bool, dry_run: bool, comment: str) -> None:
    """A dry run against the current version, printed; then, once confirmed, the edit itself."""
    version = session.call(session.stub.GetTree, pb.GetTreeRequest(version_only=True)).version
    request = pb.EditRequest(base_version=version, op=op, dry_run=True, comment=comment)
    session.out.print(show.edit(session.call(session.stub.Edit, request)))
    if dry_run or not (yes or typer.confirm("Apply?", default=False)):
        session.out.print("not applied")
        return
    request.dry_run = False
    reply = session.call(session.stub.Edit, request)
    kept = f"nothing to change: the tree stays at version {reply.version}"
    session.out.print(f"applied: version {reply.version}" if reply.applied else kept)


_EDIT_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
    for name, default, kind in (
        ("yes", False, Annotated[bool, typer.Option("--yes", "-y", help="apply without asking")]),
        (
            "dry_run",
            False,
            Annotated[bool, typer.Option("--dry-run", help="show the effect, change nothing")],
        ),
        ("comment", "", Annotated[str, typer.Option(help="a note for the audit log")]),
    )
]


def _verb(build: Callable[..., pb.EditOp]) -> Callable[..., pb.EditOp]:
    """Registers an edit verb: `build` makes the op from the arguments; the flow is `_edit`.

    The verb is named after the function (less a trailing '_') and gets the --yes, --dry-run
    and --comment options.
    """

    def command(ctx: typer.Context, yes: bool, dry_run: bool, comment: str, **args: Any) -> None:
        _edit(ctx.obj, build(**args), yes, dry_run, comment)

    own = inspect.signature(build)
    context = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    command.__signature__ = own.replace(  # type: ignore[attr-defined]
        parameters=[context, *own.parameters.values(), *_EDIT_OPTIONS], return_annotation=None
    )
    command.__doc__ = build.__doc__
    app.command(build.__name__.rstrip("_"))(command)
    return build


@_verb
def add(
    parent: Annotated[
        str, typer.Argument(help='the parent ("" for the top level); with --top, NAME')
    ],
    name: Annotated[str | None, typer.Argument()] = None,
    top: Top = False,
) -> pb.EditOp:
    """Adds a node under PARENT (`add --top NAME` for a top-level one)."""
    if top and name is not None:
        raise typer.BadParameter("with --top, give only NAME")
    if name is None and not top:
        raise typer.BadParameter("missing NAME (or use --top)")
    parent, name = ("", parent) if top else (parent, cast(str, name))
    return pb.EditOp(add=pb.AddNode(parent=_ref(parent), name=name))


@_verb
def rename(node: NodeArg, name: str) -> pb.EditOp:
    """Renames a node (its id, items and children stay)."""
    return pb.EditOp(rename=pb.Rename(node=_ref(node), name=name))


@_verb
def move(
    node: NodeArg, new_parent: Annotated[str | None, typer.Argument()] = None, top: Top = False
) -> pb.EditOp:
    """Moves a node, its subtree and items under NEW_PARENT (or --top)."""
    if top == (new_parent is not None):
        raise typer.BadParameter("give NEW_PARENT or --top")
    return pb.EditOp(move=pb.Move(node=_ref(node), parent=_ref(new_parent or "")))


@_verb
def merge(node: NodeArg, into: NodeArg) -> pb.EditOp:
    """Moves a node's items and children into INTO and archives it."""
    return pb.EditOp(merge=pb.Merge(node=_ref(node), into=_ref(into)))


@_verb
def split(
    leaf: NodeArg,
    child: Annotated[list[str], typer.Option(help='a new child "Name=field:v1,v2"')],
    rest: Annotated[str, typer.Option(help="a new child for the items no rule takes")] = "",
) -> pb.EditOp:
    """Gives a leaf new children and sends each item to the first whose rule it meets."""
    children = [pb.SplitChild(name=name, rule=rule) for name, rule in map(_rule, child)]
    return pb.EditOp(split=pb.Split(leaf=_ref(leaf), children=children, rest=rest))


@_verb
def reassign(
    node: NodeArg,
    to: Annotated[list[str], typer.Option(help='a leaf and its rule "Target=field:v1,v2"')],
    rest: Annotated[str, typer.Option(help="the leaf for the items no rule takes")] = "",
) -> pb.EditOp:
    """Sends a leaf's items to existing leaves, each to the first whose rule it meets."""
    targets = [pb.Target(to=_ref(target), rule=rule) for target, rule in map(_rule, to)]
    return pb.EditOp(reassign=pb.Reassign(node=_ref(node), targets=targets, rest=_ref(rest)))


@_verb
def retire(
    node: NodeArg,
    items_to: Annotated[str, typer.Option(help="the leaf that takes its items")] = "",
) -> pb.EditOp:
    """Archives a node and its subtree; its items go to --items-to."""
    return pb.EditOp(retire=pb.Retire(node=_ref(node), items_to=_ref(items_to)))


@_verb
def relate(a: NodeArg, b: NodeArg) -> pb.EditOp:
    """Links two nodes of different branches, so that search may cross between them."""
    return pb.EditOp(relate=pb.Relate(a=_ref(a), b=_ref(b)))


@_verb
def unrelate(a: NodeArg, b: NodeArg) -> pb.EditOp:
    """Removes the link between two nodes."""
    return pb.EditOp(unrelate=pb.Relate(a=_ref(a), b=_ref(b)))


@_verb
def revert(version: int) -> pb.EditOp:
    """Undoes the edit that made VERSION, as a new edit."""
    return pb.EditOp(revert=pb.Revert(version=version))


@_verb
def accept(path: str) -> pb.EditOp:
    """Accepts sellers' suggested PATH: creates it and moves the items there."""
    return pb.EditOp(accept=pb.Accept(path=path))


@_verb
def reject(path: str) -> pb.EditOp:
    """Closes sellers' suggestions of PATH."""
    return pb.EditOp(reject=pb.Reject(path=path))


@_verb
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    fmt: Annotated[
        str | None, typer.Option("--format", help="lines or json [default: by extension]")
    ] = None,
) -> pb.EditOp:
    """Adds every path of FILE the tree lacks (lines "A > B", or JSON as export writes it)."""
    guessed = fmt or ("json" if file.suffix.lower() == ".json" else "lines")
    return pb.EditOp(import_tree=pb.Import(format=guessed, text=file.read_text()))


@app.command()
def tree(
    ctx: typer.Context,
    version: Version = 0,
    archived: Annotated[bool, typer.Option("--archived", help="show archived nodes too")] = False,
    depth: Annotated[int, typer.Option(help="the deepest level shown (0: all)")] = 0,
) -> None:
    """The tree with each node's id, and its items for the current version."""
    counts = not version  # the service counts where items are now, even on a past tree
    request = pb.GetTreeRequest(version=version, include_archived=archived, with_counts=counts)
    session: _Session = ctx.obj
    session.out.print(show.tree(session.call(session.stub.GetTree, request), depth, counts))


@app.command(name="show")
def show_node(ctx: typer.Context, node: NodeArg) -> None:
    """One node: id, path, items, children, related; what replaced it if archived."""
    session: _Session = ctx.obj
    session.out.print(show.node(session.call(session.stub.GetNode, _ref(node))))


@app.command()
def history(
    ctx: typer.Context,
    from_version: Annotated[int, typer.Option("--from", help="entries after this version")] = 0,
    limit: Annotated[int, typer.Option(help="at most this many (0: all)")] = 0,
) -> None:
    """The audit log, oldest first."""
    session: _Session = ctx.obj
    request = pb.HistoryRequest(from_version=from_version, limit=limit)
    session.out.print(show.history(session.call(session.stub.History, request).entries))


@app.command()
def diff(
    ctx: typer.Context, from_version: int, to_version: Annotated[int, typer.Argument()] = 0
) -> None:
    """What changed from FROM_VERSION to TO_VERSION (0: the current one)."""
    session: _Session = ctx.obj
    request = pb.DiffRequest(from_version=from_version, to_version=to_version)
    reply = session.call(session.stub.Diff, request)
    session.out.print(show.diff(reply, from_version, to_version))


@app.command()
def suggestions(
    ctx: typer.Context, limit: Annotated[int, typer.Option(help="at most this many (0: all)")] = 0
) -> None:
    """Sellers' open suggestions, grouped by proposed path."""
    session: _Session = ctx.obj
    request = pb.ListSuggestionsRequest(limit=limit)
    session.out.print(
        show.suggestions(session.call(session.stub.ListSuggestions, request).suggestions)
    )


@app.command(name="move-partition")
def move_partition(
    ctx: typer.Context,
    partition: NodeArg,
    to: Annotated[list[str], typer.Option(help="a shard address (host:port); repeat for more")],
) -> None:
    """Moves a partition to other shards: they build it from the record, then the routing
    flips to them and the shards it leaves drop it."""
    session: _Session = ctx.obj
    request = pb.MovePartitionRequest(partition=_ref(partition), to=to)
    route = session.call(session.stub.MovePartition, request)
    moving = f"; building on {', '.join(route.target)}" if route.target else ""
    session.out.print(
        f"partition {route.partition_id}: served by {', '.join(route.serving)}{moving}"
    )


@app.command(name="split-partition")
def split_partition(ctx: typer.Context, partition: NodeArg) -> None:
    """Splits a partition by child node: each child becomes a partition, its vectors move."""
    session: _Session = ctx.obj
    answer = session.call(session.stub.SplitPartition, _ref(partition))
    session.out.print(
        f"{len(answer.partitions)} partitions now; {answer.items_moved} items moved "
        f"(feed position {answer.seq})"
    )


@app.command()
def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="lines or json")] = "lines",
    version: Version = 0,
    ids: Annotated[bool, typer.Option("--ids", help='lines: "123 - A > B"')] = False,
    out: Annotated[Path | None, typer.Option("--out", dir_okay=False, help="write here")] = None,
) -> None:
    """The tree as text, to stdout or --out."""
    session: _Session = ctx.obj
    request = pb.ExportRequest(format=fmt, version=version, with_ids=ids)
    text = session.call(session.stub.Export, request).text
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
