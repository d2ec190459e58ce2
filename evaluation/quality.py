"""A model version's quality figures on a catalog, beside plain baselines over the same queries."""

import time
from pathlib import Path
from typing import Any

import numpy as np

from catalog.items import open_catalog
from catalog.split import is_held_out
from common import paths
from common.errors import FailedPrecondition
from encoder_svc.evaluate import CUTOFF, Retrieval, retrieval, top1_accuracy
from encoder_svc.runtime import Encoder
from evaluation.features import Features, embed_catalog

CURVE = 50  # the P@k curves run k = 1..CURVE
EMBEDDINGS = ("model", "colour_histogram", "raw_pixels")  # the Features fields compared
WORST = 12  # queries shown in the report's grid
SHOWN = CUTOFF  # neighbours shown per query


def evaluate(
    catalog_dir: Path,
    version_dir: Path,
    variant: str = "fp32",
    queries: int | None = None,
    threads: int = 2,
) -> dict[str, Any]:
    """Embeds the catalog with a model version and measures retrieval and classification.

    The held-out items (catalog.split) are the queries, searched by exact cosine search
    against every decodable item of the catalog, the query itself left out.

    Args:
        catalog_dir: the catalog (styles.csv and images).
        version_dir: the model version (model.onnx, model.int8.onnx, meta.json).
        variant: "fp32" or "int8".
        queries: use only the first this many held-out items as queries; None for all.
        threads: decoding and onnxruntime threads.

    Returns:
        JSON-ready figures: "figures" per embedding (model and baselines), "per_master",
        "worst" queries with their neighbours, "counts", "seconds" and what was measured.

    Raises:
        FailedPrecondition: the catalog has no held-out item with an image.
    """
    started = time.monotonic()
    encoder = Encoder.load(version_dir, threads, variant=variant)
    with open_catalog(catalog_dir) as catalog:
        features = embed_catalog(catalog, encoder, threads)
    embedded = time.monotonic()
    (leaves, _), (colours, _), masters = (
        _codes(features, key) for key in ("leaf", "colour", "master")
    )
    chosen = _queries(features, queries)
    k = min(CURVE, len(features.items) - 1)
    runs = {
        name: retrieval(getattr(features, name), leaves, colours, chosen, k) for name in EMBEDDINGS
    }
    truth = _truth(features, encoder.leaves)
    figures = {name: {**run.figures(), **run.curves()} for name, run in runs.items()}
    figures["model"].update(_top1(features.probs, truth, chosen))
    return {
        "model_version": encoder.version,
        "variant": variant,
        "catalog": str(catalog_dir),
        "model_dir": str(version_dir),
        "counts": {
            "embedded": len(features.items),
            "undecodable": features.undecodable,
            "queries": len(chosen),
            "model_leaves": len(encoder.leaves),
            "neighbours": k,
        },
        "figures": figures,
        "per_master": _per_master(runs["model"], masters, features.probs, truth),
        "worst": _worst(runs["model"], features),
        "seconds": {
            "embed": round(embedded - started, 1),
            "search": round(time.monotonic() - embedded, 1),
            "total": round(time.monotonic() - started, 1),
        },
    }


def _codes(features: Features, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Each item's leaf, colour or master category as an integer code, and the codes' names."""
    if field == "master":
        values = [paths.split(item.leaf)[0] for item in features.items]
    else:
        values = [getattr(item, field) for item in features.items]
    names, codes = np.unique(np.array(values), return_inverse=True)
    return codes, names


def _queries(features: Features, limit: int | None) -> np.ndarray:
    held_out = [i for i, item in enumerate(features.items) if is_held_out(item.id)]
    if not held_out:
        raise FailedPrecondition("the catalog has no held-out item with an image to query with")
    return np.array(held_out[:limit], dtype=np.int64)


def _truth(features: Features, model_leaves: tuple[str, ...]) -> np.ndarray:
    """Each item's index among the model's leaves; -1 where the model does not predict it."""
    index = {leaf: i for i, leaf in enumerate(model_leaves)}
    return np.array([index.get(item.leaf, -1) for item in features.items], dtype=np.int64)


def _top1(probs: np.ndarray, truth: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    """Top-1 leaf accuracy over the queries whose leaf the model predicts; the rest counted."""
    scored = queries[truth[queries] >= 0]
    return {
        "top1_leaf": round(top1_accuracy(probs[scored], truth[scored]), 4),
        "top1_queries": len(scored),
        "top1_excluded": len(queries) - len(scored),
    }


def _per_master(
    run: Retrieval, masters: tuple[np.ndarray, np.ndarray], probs: np.ndarray, truth: np.ndarray
) -> dict[str, dict[str, Any]]:
    """The model's headline figures over the queries of each master category, largest first."""
    codes, names = masters
    rows: dict[str, dict[str, Any]] = {}
    for code in np.unique(codes[run.queries]):
        picked = np.flatnonzero(codes[run.queries] == code)
        rows[str(names[code])] = {**run.figures(picked), **_top1(probs, truth, run.queries[picked])}
    return dict(sorted(rows.items(), key=lambda row: -row[1]["queries"]))


def _worst(run: Retrieval, features: Features) -> list[dict[str, Any]]:
    """The queries with the lowest P@10 (leaf), then AP@10, the most confidently wrong first."""
    nearest = features.model[run.neighbours[:, 0]]
    confidence = np.einsum("qd,qd->q", features.model[run.queries], nearest)
    order = np.lexsort((-confidence, run.ap_leaf, run.query_precision()))[:WORST]
    return [_query(run, features, int(row)) for row in order]


def _query(run: Retrieval, features: Features, row: int) -> dict[str, Any]:
    query = features.items[run.queries[row]]
    shown = run.neighbours[row, :SHOWN]
    scores = features.model[shown] @ features.model[run.queries[row]]
    return {
        "id": query.id,
        "leaf": query.leaf,
        "colour": query.colour,
        "p_at_10_leaf": round(float(run.query_precision()[row]), 4),
        "neighbours": [
            {
                "id": features.items[i].id,
                "leaf": features.items[i].leaf,
                "colour": features.items[i].colour,
                "score": round(float(score), 4),
                "same_leaf": bool(same),
            }
            for i, score, same in zip(shown, scores, run.leaf[row, :SHOWN], strict=True)
        ],
    }
