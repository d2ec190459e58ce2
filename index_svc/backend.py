"""The protocol every partition backend offers, and the factory that makes one from a spec.

One FAISS class covers every kind (FaissBackend, built from a factory string: "Flat",
"HNSW32", "IVF1024,Flat", "IVF1024,PQ32", "PCA64,HNSW32", ...); where faiss sees a GPU, any
backend is wrapped to search there (index_svc.gpu). A backend numbers its vectors 0, 1, 2,
... in the order they are added (the partition's rows) and never removes one: deletes are
the partition's tombstones, kept out of searches by the `allowed` bitmap.
"""

from pathlib import Path
from typing import Protocol

import numpy as np

from common.errors import InvalidArgument
from index_svc.faiss_backend import FaissBackend
from index_svc.gpu import on_gpus
from index_svc.specs import SearchParams


class Backend(Protocol):
    """An index over rows 0..count-1; `search` scores are higher for closer vectors."""

    spec: str
    dim: int

    @property
    def trained(self) -> bool: ...

    @property
    def exact_scores(self) -> bool:
        """Whether scores are exact inner products (else rerank with the stored vectors)."""
        ...

    def device(self) -> str:
        """Where searches run: "CPU" or "GPU xN"."""
        ...

    def train(self, vectors: np.ndarray) -> None: ...

    def add(self, vectors: np.ndarray) -> None:
        """Appends rows count, count+1, ...; vectors: C-contiguous float32 (n, dim)."""
        ...

    def search(
        self, queries: np.ndarray, k: int, params: SearchParams, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns (scores, rows), each (n, k), best first; rows are -1 past the last hit.

        Args:
            allowed: a bitmap (np.packbits, little bit order) of the rows that may be
                returned, applied inside the index while it searches; None: any row.
        """
        ...

    def count(self) -> int: ...

    def save(self, path: Path) -> None: ...

    def load(self, path: Path) -> None: ...


def make_backend(spec: str, dim: int) -> Backend:
    """An empty backend of a spec for vectors of `dim` floats, on the GPUs where faiss has
    any.

    Raises:
        InvalidArgument: faiss cannot build the spec, or the dimension is not positive.
    """
    if dim <= 0:
        raise InvalidArgument(f"vector dimension must be positive, got {dim}")
    return on_gpus(FaissBackend(spec, dim))
