"""A model version's quality figures on a catalog, each variant beside the others and baselines."""

import time
from pathlib import Path
from typing import Any

import numpy as np

from catalog.items import CatalogItem, open_catalog
from catalog.split import is_held_out
from common.errors import FailedPrecondition, InvalidArgument
from encoder_svc.evaluate import CUTOFF, Retrieval, agreement, retrieval, top1_accuracy
from encoder_svc.runtime import VARIANTS, Encoder
from evaluation import robustness
from evaluation.features import Features, embed_catalog, figure_name

CURVE = 50  # the P@k curves run k = 1..CURVE
WORST = 12  # queries shown in the report's grid
SHOWN = CUTOFF  # neighbours shown per query


def evaluate(
    catalog_dir: Path,
    version_dir: Path,
    variants: list[str] | None = None,
    queries: int | None = None,
    threads: int = 2,
    changed_seed: int | None = 0,
) -> dict[str, Any]:
    """Embeds the catalog with each variant of a model version and measures them side by side,
    on the held-out items' own photos and on those photos changed (evaluation.robustness).

    Each image is decoded once and run through every variant. The held-out items
    (catalog.split) are the queries, searched by exact cosine search against every decodable
    item of the catalog, the query itself left out.

    Args:
        catalog_dir: the catalog (styles.csv and images).
        version_dir: the model version (model.onnx, model.int8.onnx, meta.json).
        variants: the variants to evaluate ("fp32", "int8"); None for fp32 and every other
            variant whose file the version holds.
        queries: use only the first this many held-out items as queries; None for all.
        threads: decoding and onnxruntime threads.
        changed_seed: draws the changed photos; None to measure the catalog's photos only.

    Returns:
        JSON-ready figures: "variants" evaluated (fp32 first), "figures" per embedding (each
        variant's "model <variant>", then the baselines), "comparisons" of each further
        variant with the first ("int8 vs fp32"), the first variant's "per_master" figures and
        "worst" queries with their neighbours, "changed" (robustness.measure, unless
        changed_seed is None), "counts", "seconds" and what was measured.

    Raises:
        InvalidArgument: an empty or unknown choice of variants.
        NotFound: the version has no file for a chosen variant.
        FailedPrecondition: the catalog has no held-out item with an image.
    """
    started = time.monotonic()
    encoders = {
        variant: Encoder.load(version_dir, threads, variant=variant)
        for variant in _variants(version_dir, variants)
    }
    with open_catalog(catalog_dir) as catalog:
        features = embed_catalog(catalog, encoders, threads)
        embedded = time.monotonic()
        chosen = _queries(features, queries)
        changed = (
            robustness.measure(catalog, features, encoders, chosen, changed_seed, threads)
            if changed_seed is not None
            else None
        )
    (leaves, _), (colours, _), masters = (
        features.codes(key) for key in ("leaf", "colour", "master")
    )
    k = min(CURVE, len(features.items) - 1)
    runs = {
        name: retrieval(vectors, leaves, colours, chosen, k)
        for name, vectors in features.embeddings().items()
    }
    first, encoder = next(iter(encoders.items()))
    truth = _truth(features, encoder.leaves)
    figures = _figures(runs, features.probs, truth, chosen)
    return {
        "model_version": encoder.version,
        "variants": list(encoders),
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
        "comparisons": _comparisons(features, figures),
        "per_master": _per_master(runs[figure_name(first)], masters, features.probs[first], truth),
        "worst": _worst(runs[figure_name(first)], features.model[first], features.items),
        **({"changed": changed} if changed else {}),
        "seconds": {
            "embed": round(embedded - started, 1),
            "search": round(time.monotonic() - embedded, 1),
            "total": round(time.monotonic() - started, 1),
        },
    }


def _variants(version_dir: Path, chosen: list[str] | None) -> list[str]:
    """The variants to evaluate, fp32 first: those chosen, or fp32 and those the version has."""
    if chosen is None:
        chosen = [
            variant
            for variant, model_file in VARIANTS.items()
            if variant == "fp32" or (version_dir / model_file).is_file()
        ]
    if not chosen:
        raise InvalidArgument("no model variant to evaluate")
    return sorted(set(chosen), key=lambda variant: (variant != "fp32", variant))


def _figures(
    runs: dict[str, Retrieval], probs: dict[str, np.ndarray], truth: np.ndarray, queries: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Each embedding's headline figures and P@k curves; each model variant's top-1 as well."""
    figures = {name: {**run.figures(), **run.curves()} for name, run in runs.items()}
    for variant, variant_probs in probs.items():
        figures[figure_name(variant)].update(_top1(variant_probs, truth, queries))
    return figures


def _comparisons(
    features: Features, figures: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """How each further variant differs from the first: "int8 vs fp32" and the like."""
    first, *others = features.model
    p_at_10 = {variant: figures[figure_name(variant)]["p_at_10_leaf"] for variant in features.model}
    return {
        f"{other} vs {first}": {
            "p_at_10_leaf_difference": round(p_at_10[other] - p_at_10[first], 4),
            **_agreement(features, other, first),
        }
        for other in others
    }


def _agreement(features: Features, variant: str, reference: str) -> dict[str, Any]:
    """How closely two variants agree over every embedded item: vectors and top leaves."""
    outputs = (features.model[variant], features.probs[variant])
    reference_outputs = (features.model[reference], features.probs[reference])
    return {**agreement(outputs, reference_outputs), "items": len(features.items)}


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


def _worst(run: Retrieval, model: np.ndarray, items: list[CatalogItem]) -> list[dict[str, Any]]:
    """The queries with the lowest P@10 (leaf), then AP@10, the most confidently wrong first."""
    confidence = np.einsum("qd,qd->q", model[run.queries], model[run.neighbours[:, 0]])
    order = np.lexsort((-confidence, run.ap_leaf, run.query_precision()))[:WORST]
    return [_query(run, model, items, int(row)) for row in order]


def _query(run: Retrieval, model: np.ndarray, items: list[CatalogItem], row: int) -> dict[str, Any]:
    query = items[run.queries[row]]
    shown = run.neighbours[row, :SHOWN]
    scores = model[shown] @ model[run.queries[row]]
    return {
        "id": query.id,
        "leaf": query.leaf,
        "colour": query.colour,
        "p_at_10_leaf": round(float(run.query_precision()[row]), 4),
        "neighbours": [
            {
                "id": items[i].id,
                "leaf": items[i].leaf,
                "colour": items[i].colour,
                "score": round(float(score), 4),
                "same_leaf": bool(same),
            }
            for i, score, same in zip(shown, scores, run.leaf[row, :SHOWN], strict=True)
        ],
    }
