"""Bearer tokens and roles: who a caller is, and whether it may call a method."""

import contextlib
import hmac
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import InvalidArgument, PermissionDenied, Unauthenticated

ROLES = frozenset({"reader", "writer", "editor"})
_EXPECTED = "expected authorization metadata 'Bearer <token>'"


@dataclass(frozen=True)
class Caller:
    """Who made the call, as its token names it, and the roles its token grants."""

    name: str
    roles: frozenset[str]


ANONYMOUS = Caller("anonymous", ROLES)  # every caller while auth is off
UNIDENTIFIED = Caller("anonymous", frozenset())  # a caller of an open method while auth is on

_caller: ContextVar[Caller] = ContextVar("caller", default=ANONYMOUS)


def current_caller() -> Caller:
    """The caller of the call being served; `ANONYMOUS` (every role) when auth is off."""
    return _caller.get()


@contextlib.contextmanager
def acting_as(caller: Caller) -> Iterator[None]:
    """Makes `caller` the `current_caller()` of the code run inside the block."""
    reset = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(reset)


def known_roles(names: Iterable[str], where: str) -> frozenset[str]:
    """The role names, checked.

    Raises:
        InvalidArgument: a name that is not one of `ROLES`, naming `where` it was found.
    """
    roles = frozenset(names)
    unknown = roles - ROLES
    if unknown:
        raise InvalidArgument(f"unknown roles {sorted(unknown)} in {where}; known: {sorted(ROLES)}")
    return roles


def method_roles(service: str, by_role: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """The role each method of `service` (a full name, "visualsearch.v1.Taxonomy") needs.

    Returns:
        {"/visualsearch.v1.Taxonomy/Edit": "editor", ...}, as serve's `roles`.
    """
    return {f"/{service}/{method}": role for role, methods in by_role.items() for method in methods}


def require(caller: Caller, role: str, method: str) -> None:
    """Lets `caller` call `method` only if it has `role`.

    Raises:
        PermissionDenied: naming the role needed and the caller.
    """
    if role not in caller.roles:
        raise PermissionDenied(
            f"{method} needs the {role!r} role, which caller {caller.name!r} does not have"
        )


class Tokens:
    """The bearer tokens the cluster accepts, each naming a caller and its roles."""

    def __init__(self, callers: Iterable[tuple[str, Caller]]) -> None:
        self._callers = [(secret.encode(), caller) for secret, caller in callers]

    @classmethod
    def load(cls, path: str | Path) -> "Tokens":
        """Reads a TOML file of `[[token]]` tables, each with `name`, `value` and `roles`.

        Raises:
            InvalidArgument: a missing or unreadable file, a table without its keys, an
                unknown role, or one secret given twice.
        """
        where = f"tokens file {path}"
        try:
            tables = tomllib.loads(Path(path).read_text()).get("token", [])
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise InvalidArgument(f"{where}: {error}") from error
        if not isinstance(tables, list) or not tables:
            raise InvalidArgument(f"{where}: no [[token]] tables")
        callers = [_entry(table, f"{where}, token {n}") for n, table in enumerate(tables)]
        if len({secret for secret, _ in callers}) < len(callers):
            raise InvalidArgument(f"{where}: one value is given to two tokens")
        return cls(callers)

    def __len__(self) -> int:
        return len(self._callers)

    def identify(self, authorization: str | None) -> Caller:
        """The caller whose token the `authorization` metadata value carries.

        Args:
            authorization: the value of the call's `authorization` metadata, if any.

        Raises:
            Unauthenticated: no value, one not of the form "Bearer <token>", or a token
                that is not in the file.
        """
        if not authorization:
            raise Unauthenticated(f"no authorization metadata; {_EXPECTED}")
        scheme, _, secret = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated(f"malformed authorization metadata; {_EXPECTED}")
        given = secret.strip().encode()
        found = None
        for known, caller in self._callers:  # all compared, so timing tells nothing
            if hmac.compare_digest(known, given):
                found = caller
        if found is None:
            raise Unauthenticated("unknown bearer token")
        return found


def _entry(table: Any, where: str) -> tuple[str, Caller]:
    if not isinstance(table, dict) or set(table) != {"name", "value", "roles"}:
        raise InvalidArgument(f"{where}: expected exactly the keys name, value and roles")
    name, secret, roles = table["name"], table["value"], table["roles"]
    if not (isinstance(name, str) and name and isinstance(secret, str) and secret.strip()):
        raise InvalidArgument(f"{where}: name and value must be non-empty strings")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidArgument(f"{where} ({name}): roles must be a list of strings")
    return secret.strip(), Caller(name, known_roles(roles, f"{where} ({name})"))
