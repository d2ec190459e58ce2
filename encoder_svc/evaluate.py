"""Offline quality figures of an encoder: held-out leaf accuracy and P@k by exact cosine search."""

import numpy as np

QUERY_CHUNK = 1024  # queries per matmul, to bound memory on large catalogs


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


def precision_at_k(
    embeddings: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int = 10
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
    hits = 0
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = queries[start : start + QUERY_CHUNK]
        scores = embeddings[chunk] @ embeddings.T
        scores[np.arange(len(chunk)), chunk] = -np.inf
        nearest = np.argpartition(-scores, k, axis=1)[:, :k]
        hits += int((labels[nearest] == labels[chunk, None]).sum())
    return hits / (len(queries) * k)
