"""Offline quality figures of an encoder: held-out leaf accuracy and P@k by exact cosine search."""

import dataclasses
from typing import Any

import numpy as np

from common.errors import InvalidArgument

QUERY_CHUNK = 512  # queries per matmul, to bound memory (512 x 44k floats: 90 MB)
CUTOFF = 10  # the k of the headline figures: P@10, mAP@10


def top1_accuracy(probs: np.ndarray, truth: np.ndarray) -> float:
    """Share of rows whose most probable class is the true one.

    Args:
        probs: (N, L) class probabilities.
        truth: (N,) true class indexes.

    Returns:
        The accuracy in [0, 1]; 0.0 when there are no rows.
    """
    if len(truth) == 0:
        return 0.0
    return float((probs.argmax(axis=1) == truth).mean())


def agreement(
    outputs: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray]
) -> dict[str, float]:
    """How closely one model's outputs follow another's on the same images.

    Args:
        outputs: (embeddings (N, dim), unit rows; leaf probabilities (N, leaves)).
        reference: the same from the reference model, same images in the same order.

    Returns:
        "mean_cosine" of each image's two embeddings and "top_leaf_agreement", the share of
        images whose most probable leaf is the same, both rounded for reports.
    """
    cosines = np.einsum("nd,nd->n", outputs[0], reference[0])
    same_top = outputs[1].argmax(axis=1) == reference[1].argmax(axis=1)
    return {
        "mean_cosine": round(float(cosines.mean()), 5),
        "top_leaf_agreement": round(float(same_top.mean()), 4),
    }


def nearest(embeddings: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Each query's k nearest vectors by exact inner product, the query itself left out.

    Ties are broken by the lower catalog index, so the answer is the same on every run.

    Args:
        embeddings: (N, D) L2-normalised vectors of the whole catalog.
        queries: (Q,) indexes into `embeddings` of the query items.
        k: neighbours per query; at most N - 1.

    Returns:
        (Q, k) indexes into `embeddings`, nearest first.
    """
    if not 0 < k < len(embeddings):
        raise InvalidArgument(f"k={k} must be in 1..{len(embeddings) - 1}")
    found = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = queries[start : start + QUERY_CHUNK]
        scores = embeddings[chunk] @ embeddings.T
        scores[np.arange(len(chunk)), chunk] = -np.inf
        found[start : start + len(chunk)] = _top_k(scores, k)
    return found


def nearest_to(embeddings: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Each query vector's k nearest catalog vectors by exact inner product, ties to the lower
    index; for queries that are not catalog items (a changed photo of one, say), so nothing is
    left out.

    Args:
        embeddings: (N, D) L2-normalised vectors of the whole catalog.
        queries: (Q, D) L2-normalised query vectors.
        k: neighbours per query; at most N.

    Returns:
        (Q, k) indexes into `embeddings`, nearest first.
    """
    if not 0 < k <= len(embeddings):
        raise InvalidArgument(f"k={k} must be in 1..{len(embeddings)}")
    found = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = queries[start : start + QUERY_CHUNK]
        found[start : start + len(chunk)] = _top_k(chunk @ embeddings.T, k)
    return found


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The columns of each row's k highest scores, highest first, ties to the lower column."""
    kth = np.partition(scores, -k, axis=1)[:, -k, None]
    above = scores > kth
    at = scores == kth
    chosen = above | at
    room = k - above.sum(axis=1, keepdims=True)
    crowded = np.flatnonzero(at.sum(axis=1) > room[:, 0])  # more ties at the k-th than places
    if len(crowded):
        first = np.cumsum(at[crowded], axis=1) <= room[crowded]
        chosen[crowded] = above[crowded] | (at[crowded] & first)
    columns = np.nonzero(chosen)[1].reshape(len(scores), k)  # ascending within each row
    order = np.argsort(-np.take_along_axis(scores, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)


def hits(neighbours: np.ndarray, labels: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(Q, k) bool: whether each neighbour has its query's label."""
    return labels[neighbours] == labels[queries, None]


def precision_curve(matches: np.ndarray) -> np.ndarray:
    """Mean precision at every cutoff: entry i is P@(i + 1) over the queries.

    Args:
        matches: (Q, k) bool, as `hits` returns.

    Returns:
        (k,) floats; zeros when there are no queries.
    """
    if len(matches) == 0:
        return np.zeros(matches.shape[1])
    cutoffs = np.arange(1, matches.shape[1] + 1)
    return (np.cumsum(matches, axis=1) / cutoffs).mean(axis=0)


def relevant_counts(labels: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """How many other catalog items share each query's label (the query itself not counted)."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return counts[inverse[queries]] - 1


def average_precision(matches: np.ndarray, relevant: np.ndarray, k: int = CUTOFF) -> np.ndarray:
    """AP@k of each query: the sum of P@i at every rank i <= k holding a match, over min(k, R).

    Args:
        matches: (Q, >=k) bool, as `hits` returns.
        relevant: (Q,) R, the relevant items each query could find (`relevant_counts`).
        k: the cutoff.

    Returns:
        (Q,) floats in [0, 1]; 0.0 for a query with nothing to find.
    """
    top = matches[:, :k]
    precision = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)
    found = (precision * top).sum(axis=1)
    return found / np.maximum(np.minimum(relevant, k), 1)


def precision_at_k(
    embeddings: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int = CUTOFF
) -> float:
    """Mean share of each query's k nearest neighbours (cosine, itself excluded) sharing its label.

    Args:
        embeddings: (N, D) L2-normalised vectors of the whole catalog.
        labels: (N,) a label per vector (e.g. a leaf index).
        queries: indexes into `embeddings` of the query items.
        k: neighbours per query.

    Returns:
        The mean precision in [0, 1]; 0.0 when there are no queries. With fewer than k + 1
        vectors, every other vector counts as a neighbour.
    """
    k = min(k, len(embeddings) - 1)
    if len(queries) == 0 or k < 1:
        return 0.0
    return float(hits(nearest(embeddings, queries, k), labels, queries).mean())


@dataclasses.dataclass(frozen=True)
class Retrieval:
    """One embedding's search results for the queries, with each neighbour judged."""

    queries: np.ndarray  # (Q,) catalog indexes
    neighbours: np.ndarray  # (Q, k) catalog indexes, nearest first
    leaf: np.ndarray  # (Q, k) bool: the neighbour shares the query's leaf
    leaf_colour: np.ndarray  # (Q, k) bool: ... its leaf and its colour
    ap_leaf: np.ndarray  # (Q,) AP@10, leaf

    def figures(self, rows: np.ndarray | None = None) -> dict[str, Any]:
        """P@10 (leaf; leaf and colour) and mAP@10 (leaf), over all queries or the chosen `rows`."""
        picked = slice(None) if rows is None else rows
        leaf = self.leaf[picked, :CUTOFF]
        return {
            "queries": len(leaf),
            "p_at_10_leaf": _mean(leaf),
            "p_at_10_leaf_colour": _mean(self.leaf_colour[picked, :CUTOFF]),
            "map_at_10_leaf": _mean(self.ap_leaf[picked]),
        }

    def curves(self) -> dict[str, list[float]]:
        """P@k for k = 1..len(neighbours), leaf and leaf and colour, over all queries."""
        return {
            "p_at_k_leaf": _rounded(precision_curve(self.leaf)),
            "p_at_k_leaf_colour": _rounded(precision_curve(self.leaf_colour)),
        }

    def query_precision(self) -> np.ndarray:
        """(Q,) each query's P@10 (leaf)."""
        return self.leaf[:, :CUTOFF].mean(axis=1)


def retrieval(
    embeddings: np.ndarray, leaves: np.ndarray, colours: np.ndarray, queries: np.ndarray, k: int
) -> Retrieval:
    """Searches the whole catalog for each query and judges the neighbours.

    Args:
        embeddings: (N, D) L2-normalised vectors of the whole catalog.
        leaves: (N,) each item's leaf, as integers.
        colours: (N,) each item's colour, as integers.
        queries: (Q,) indexes of the query items.
        k: neighbours per query (the length of the P@k curves), at least 10 and below N.

    Returns:
        The neighbours and their judgements.
    """
    neighbours = nearest(embeddings, queries, k)
    leaf = hits(neighbours, leaves, queries)
    leaf_colour = leaf & hits(neighbours, colours, queries)
    ap_leaf = average_precision(leaf, relevant_counts(leaves, queries))
    return Retrieval(queries, neighbours, leaf, leaf_colour, ap_leaf)


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(value), 4) for value in values]


def _mean(values: np.ndarray) -> float:
    return round(float(values.mean()), 4) if values.size else 0.0
