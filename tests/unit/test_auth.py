"""Bearer tokens: the file, who a header names, and whether a caller has a role."""

from pathlib import Path

import pytest

from common.auth import ANONYMOUS, Caller, Tokens, acting_as, current_caller, require
from common.errors import InvalidArgument, PermissionDenied, Unauthenticated

_FILE = """
[[token]]
name = "search-ui"
value = "s3cret-reader"
roles = ["reader"]

[[token]]
name = "curator"
value = "s3cret-editor"
roles = ["reader", "editor"]
"""


def _tokens(tmp_path: Path, text: str = _FILE) -> Tokens:
    file = tmp_path / "tokens.toml"
    file.write_text(text)
    return Tokens.load(file)


def test_a_bearer_token_names_its_caller_and_roles(tmp_path: Path) -> None:
    tokens = _tokens(tmp_path)
    assert len(tokens) == 2
    assert tokens.identify("Bearer s3cret-editor") == Caller(
        "curator", frozenset({"reader", "editor"})
    )
    assert tokens.identify("bearer s3cret-reader").name == "search-ui"


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (None, "no authorization"),
        ("", "no authorization"),
        ("s3cret-reader", "malformed"),
        ("Basic s3cret-reader", "malformed"),
        ("Bearer ", "malformed"),
        ("Bearer s3cret", "unknown bearer token"),
    ],
)
def test_a_missing_malformed_or_unknown_token_is_unauthenticated(
    tmp_path: Path, header: str | None, says: str
) -> None:
    with pytest.raises(Unauthenticated, match=says):
        _tokens(tmp_path).identify(header)


def test_roles_are_a_set_with_no_hierarchy() -> None:
    editor = Caller("curator", frozenset({"editor"}))
    require(editor, "editor", "/t.T/Edit")
    with pytest.raises(PermissionDenied, match=r"'reader' role.*'curator'"):
        require(editor, "reader", "/t.T/Read")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no \\[\\[token\\]\\] tables"),
        ("[[token]\n", "tokens file"),
        ('[[token]]\nname = "a"\nvalue = "x"\n', "keys name, value and roles"),
        ('[[token]]\nname = "a"\nvalue = ""\nroles = []\n', "non-empty"),
        ('[[token]]\nname = "a"\nvalue = "x"\nroles = "reader"\n', "list of strings"),
        ('[[token]]\nname = "a"\nvalue = "x"\nroles = ["admin"]\n', "unknown roles \\['admin'\\]"),
        (
            '[[token]]\nname = "a"\nvalue = "x"\nroles = []\n'
            '[[token]]\nname = "b"\nvalue = "x"\nroles = []\n',
            "two tokens",
        ),
    ],
)
def test_a_bad_tokens_file_is_refused_at_start(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        _tokens(tmp_path, text)


def test_a_missing_tokens_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"absent\.toml"):
        Tokens.load(tmp_path / "absent.toml")


def test_the_current_caller_is_anonymous_with_every_role_unless_set() -> None:
    assert current_caller() == ANONYMOUS
    curator = Caller("curator", frozenset({"editor"}))
    with acting_as(curator):
        assert current_caller() == curator
    assert current_caller() == ANONYMOUS
