"""Taxonomy paths: a node is keyed by its path of names joined by '/'."""

from common.errors import InvalidArgument

SEP = "/"


def split(path: str) -> list[str]:
    """Splits a path into its names, refusing empty names.

    Raises:
        InvalidArgument: the path is empty or has an empty segment.
    """
    names = path.split(SEP)
    if not path or any(not name.strip() for name in names):
        raise InvalidArgument(f"taxonomy path {path!r} is empty or has an empty segment")
    return names


def join(*names: str) -> str:
    return SEP.join(names)


def partition_of(leaf: str, level: int) -> str:
    """The partition serving a leaf: its ancestor at `level` (or the leaf if shallower)."""
    return join(*split(leaf)[:level])


def is_within(path: str, ancestor: str) -> bool:
    """True if `path` is `ancestor` or lies in its subtree."""
    return path == ancestor or path.startswith(ancestor + SEP)
