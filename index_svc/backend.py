"""The protocol every partition backend offers, and the factory that picks one by kind."""

from pathlib import Path
from typing import Protocol

import numpy as np

from common.errors import InvalidArgument
from index_svc.flat import FlatBackend


class Backend(Protocol):
    """An ANN index over int64 labels; `search` scores are higher for closer vectors.

    Queries and vectors are C-contiguous float32 matrices of shape (n, dim).
    """

    kind: str
    dim: int

    def __init__(self, dim: int) -> None: ...

    @classmethod
    def device(cls) -> str:
        """Where searches run: "CPU" or "GPU xN"."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> int:
        """Removes the labels present; returns how many were."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns (scores, ids), each (n, k), best first; ids are -1 past the last hit."""
        ...

    def count(self) -> int: ...

    def reconstruct(self, id: int) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...

    def load(self, path: Path) -> None: ...


KINDS: dict[str, type[Backend]] = {"flat": FlatBackend}


def backend_class(kind: str) -> type[Backend]:
    """The backend class of a kind.

    Raises:
        InvalidArgument: the kind is not one of KINDS.
    """
    if kind not in KINDS:
        raise InvalidArgument(f"unknown index backend {kind!r}; known: {sorted(KINDS)}")
    return KINDS[kind]


def make_backend(kind: str, dim: int) -> Backend:
    """An empty backend of a kind for vectors of `dim` floats.

    Raises:
        InvalidArgument: the kind is unknown or the dimension is not positive.
    """
    if dim <= 0:
        raise InvalidArgument(f"vector dimension must be positive, got {dim}")
    return backend_class(kind)(dim)
