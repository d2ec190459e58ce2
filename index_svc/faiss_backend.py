"""Every kind of index through one class, built from a FAISS factory string."""

from pathlib import Path

import faiss
import numpy as np

from common.errors import InvalidArgument
from index_svc.specs import SearchParams, is_exact, metric_of

_METRICS = {"IP": faiss.METRIC_INNER_PRODUCT, "L2": faiss.METRIC_L2}


class FaissBackend:
    """`faiss.index_factory(dim, spec)`; under L2 (PCA specs) scores are 1 - d/2, the inner
    product of unit vectors, so that higher is closer whatever the metric."""

    def __init__(self, spec: str, dim: int) -> None:
        self.spec = spec
        self.dim = dim
        self._l2 = metric_of(spec) == "L2"
        try:
            self._take(faiss.index_factory(dim, spec, _METRICS[metric_of(spec)]))
        except RuntimeError as error:
            raise InvalidArgument(f"faiss cannot build index spec {spec!r}: {error}") from None

    @property
    def trained(self) -> bool:
        return bool(self.index.is_trained)

    @property
    def exact_scores(self) -> bool:
        return is_exact(self.spec)

    def device(self) -> str:
        return "CPU"

    def train(self, vectors: np.ndarray) -> None:
        self.index.train(vectors)

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(vectors)

    def search(
        self, queries: np.ndarray, k: int, params: SearchParams, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        selector = (
            None
            if allowed is None
            else faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(allowed))
        )
        scores, rows = self.index.search(queries, k, params=self._params(params, selector))
        if self._l2:
            scores = 1.0 - scores / 2.0
        return scores, rows

    def count(self) -> int:
        return int(self.index.ntotal)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    def load(self, path: Path) -> None:
        index = faiss.read_index(str(path))
        if index.d != self.dim:
            raise ValueError(f"{path} holds an index of dimension {index.d}, not {self.dim}")
        self._take(index)

    def _take(self, index: faiss.Index) -> None:
        """Holds an index, and the one whose kind decides a search's parameters (under a
        transform such as PCA, the index beneath it), found once rather than per search."""
        self.index = index
        outer = faiss.downcast_index(index)
        if isinstance(outer, faiss.IndexPreTransform):
            self._transformed, self._searched = True, faiss.downcast_index(outer.index)
        else:
            self._transformed, self._searched = False, outer

    def _params(
        self, params: SearchParams, selector: faiss.IDSelector | None
    ) -> faiss.SearchParameters | None:
        """The faiss search parameters of the index's kind; a transform (PCA) passes them to
        the index under it, where the selector must be too."""
        found = _params_of(self._searched, params, selector)
        if not self._transformed:
            return found
        outer = faiss.SearchParametersPreTransform()
        outer.index_params = found
        return outer


def _params_of(
    index: faiss.Index, params: SearchParams, selector: faiss.IDSelector | None
) -> faiss.SearchParameters | None:
    if isinstance(index, faiss.IndexHNSW):
        found = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        if params.ef_search:
            found.efSearch = params.ef_search
    elif isinstance(index, faiss.IndexIVF):
        found = faiss.SearchParametersIVF()
        found.nprobe = params.nprobe or index.nprobe
    elif selector is None:
        return None
    else:
        found = faiss.SearchParameters()
    if selector is not None:
        found.sel = selector
    return found
