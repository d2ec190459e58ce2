"""A backend that searches on the GPUs: a copy of any backend's index placed there by faiss.

The CPU index stays the master copy (GPU indexes cannot be written to disk, and most cannot
take an id selector); the GPU copy is remade at the first search after a write, and a search
with a bitmap of allowed rows, or of an index faiss cannot place on a GPU (HNSW), runs on
the CPU index.
"""

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from index_svc.specs import SearchParams

if TYPE_CHECKING:
    from index_svc.backend import Backend
    from index_svc.faiss_backend import FaissBackend

log = logging.getLogger(__name__)


def on_gpus(backend: "FaissBackend") -> "Backend":
    """The backend wrapped to search on the GPUs, where faiss has any; else itself."""
    return GpuBackend(backend) if faiss.get_num_gpus() > 0 else backend


def devices() -> str:
    """Where searches that can use a GPU run: "GPU xN" or "CPU"."""
    gpus = faiss.get_num_gpus()
    return f"GPU x{gpus}" if gpus else "CPU"


class GpuBackend:
    def __init__(self, cpu: "FaissBackend") -> None:
        self.cpu = cpu
        self.spec, self.dim = cpu.spec, cpu.dim
        self._gpu: faiss.Index | None = None
        self._placeable = True
        self._lock = threading.Lock()

    @property
    def trained(self) -> bool:
        return self.cpu.trained

    @property
    def exact_scores(self) -> bool:
        return self.cpu.exact_scores

    def device(self) -> str:
        return devices() if self._placeable else "CPU"

    def train(self, vectors: np.ndarray) -> None:
        self.cpu.train(vectors)
        self._gpu = None

    def add(self, vectors: np.ndarray) -> None:
        self.cpu.add(vectors)
        self._gpu = None

    def search(
        self, queries: np.ndarray, k: int, params: SearchParams, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        gpu = self._copy() if allowed is None else None
        if gpu is None:
            return self.cpu.search(queries, k, params, allowed)
        if params.nprobe and hasattr(gpu, "nprobe"):
            gpu.nprobe = params.nprobe
        scores, rows = gpu.search(queries, k)
        return scores, rows

    def count(self) -> int:
        return self.cpu.count()

    def save(self, path: Path) -> None:
        self.cpu.save(path)

    def load(self, path: Path) -> None:
        self.cpu.load(path)
        self._gpu = None

    def _copy(self) -> faiss.Index | None:
        with self._lock:
            if self._gpu is None and self._placeable and self.cpu.trained:
                try:
                    self._gpu = faiss.index_cpu_to_all_gpus(self.cpu.index)
                except RuntimeError as error:
                    log.warning("%s stays on the CPU: %s", self.spec, error)
                    self._placeable = False
            return self._gpu
