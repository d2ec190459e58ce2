"""Exact inner-product search (IndexFlatIP behind an id map), on the GPUs when faiss has any."""

import threading
from pathlib import Path

import faiss
import numpy as np


class FlatBackend:
    """Exact search; the CPU index is the master copy, the GPUs hold a search copy.

    GPU flat indexes cannot remove ids or be written to disk, so writes go to the CPU index
    and the GPU copy is rebuilt at the first search after a write.
    """

    kind = "flat"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._on_gpu = faiss.get_num_gpus() > 0
        self._gpu: faiss.Index | None = None
        self._gpu_lock = threading.Lock()

    @classmethod
    def device(cls) -> str:
        gpus = faiss.get_num_gpus()
        return f"GPU x{gpus}" if gpus else "CPU"

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(vectors, ids)
        self._gpu = None

    def remove(self, ids: np.ndarray) -> int:
        self._gpu = None
        # faiss's Python wrapper turns an int64 array into an IDSelectorBatch
        return int(self._index.remove_ids(ids))  # type: ignore[arg-type]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._searcher().search(queries, k)
        return scores, ids

    def count(self) -> int:
        return int(self._index.ntotal)

    def reconstruct(self, id: int) -> np.ndarray:
        return np.asarray(self._index.reconstruct(id), dtype=np.float32)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    def load(self, path: Path) -> None:
        index = faiss.read_index(str(path))
        if not isinstance(index, faiss.IndexIDMap2) or index.d != self.dim:
            raise ValueError(f"{path} is not a flat index of dimension {self.dim}")
        self._index = index
        self._gpu = None

    def _searcher(self) -> faiss.Index:
        if not self._on_gpu:
            return self._index
        with self._gpu_lock:
            if self._gpu is None:
                self._gpu = faiss.index_cpu_to_all_gpus(self._index)
            return self._gpu
