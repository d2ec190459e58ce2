"""How a model holds up when the query is a shopper's photo, not the catalog's own.

Each held-out item's photo is changed (evaluation.perturb: each change alone, and mixes of two
to six, from a seed), decoded and embedded through the serving path, and searched exactly
against the whole catalog, its own item included. Scored per kind of change: own item at 1 and
in the top 10, P@10 leaf and P@10 leaf and colour (the own item counts as a neighbour of its
leaf). `python -m evaluation` measures this beside the clean figures, for every variant and
baseline; `python -m evaluation.served` measures it through a running cluster.
"""

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from catalog.items import Catalog
from encoder_svc.evaluate import CUTOFF, hits, nearest_to
from encoder_svc.preprocess import Limits, decode
from encoder_svc.runtime import Encoder
from evaluation.features import Features, embed_images
from evaluation.perturb import changed, label, plan


def score(
    neighbours: np.ndarray, own: np.ndarray, leaves: np.ndarray, colours: np.ndarray
) -> dict[str, float | int]:
    """The figures of changed-photo queries.

    Args:
        neighbours: (Q, >=10) catalog indexes found for each query, nearest first.
        own: (Q,) the catalog index of each query's own item.
        leaves: (N,) each catalog item's leaf, as integers.
        colours: (N,) each catalog item's colour, as integers.

    Returns:
        "queries", "own_at_1", "own_at_10" (share of queries whose own item is first, or in the
        top 10), "p_at_10_leaf" and "p_at_10_leaf_colour" (share of the top 10 with the own
        item's leaf, and its leaf and colour), rounded.
    """
    if len(own) == 0:
        return {"queries": 0}
    top = neighbours[:, :CUTOFF]
    leaf = hits(top, leaves, own)
    return {
        "queries": len(own),
        "own_at_1": round(float((top[:, 0] == own).mean()), 4),
        "own_at_10": round(float((top == own[:, None]).any(axis=1).mean()), 4),
        "p_at_10_leaf": round(float(leaf.mean()), 4),
        "p_at_10_leaf_colour": round(float((leaf & hits(top, colours, own)).mean()), 4),
    }


def by_change(
    neighbours: np.ndarray,
    own: np.ndarray,
    groups: list[str],
    leaves: np.ndarray,
    colours: np.ndarray,
) -> dict[str, dict[str, float | int]]:
    """`score` over every query ("all") and over the queries of each group, in order met."""
    rows = {"all": score(neighbours, own, leaves, colours)}
    for group in dict.fromkeys(groups):
        picked = np.array([g == group for g in groups])
        rows[group] = score(neighbours[picked], own[picked], leaves, colours)
    return rows


def photos(
    catalog: Catalog, ids: list[str], seed: int
) -> tuple[list[tuple[str, ...]], list[bytes]]:
    """The changes drawn for each item (perturb.plan) and its photo so changed, from `seed`."""
    kinds = plan(len(ids), seed)
    rng = np.random.default_rng(seed)
    changed_photos = [
        changed(catalog.image_bytes(item_id), drawn, rng)
        for item_id, drawn in zip(ids, kinds, strict=True)
    ]
    return kinds, changed_photos


def measure(
    catalog: Catalog,
    features: Features,
    encoders: dict[str, Encoder],
    queries: np.ndarray,
    seed: int,
    threads: int = 2,
) -> dict[str, Any]:
    """The changed-photo figures of every embedding of `features` (model variants, baselines).

    Args:
        catalog: the open catalog the features were made from.
        features: its embeddings.
        encoders: the variants that embedded it.
        queries: catalog indexes of the items whose photos are changed.
        seed: draws the changes.
        threads: decoding threads.

    Returns:
        "seed", "queries", "figures" (embedding name -> `by_change` rows) and "examples": the
        first query of each kind of change, as JPEG (base64) with the first variant's top 10.
    """
    kinds, changed_photos = photos(catalog, [features.items[i].id for i in queries], seed)
    params = next(iter(encoders.values())).params
    with ThreadPoolExecutor(threads) as pool:
        images = np.stack(list(pool.map(lambda p: decode(p, Limits(), params), changed_photos)))
    vectors = embed_images(images, features, encoders)
    (leaves, _), (colours, _) = features.codes("leaf"), features.codes("colour")
    groups = [label(drawn) for drawn in kinds]
    found = {
        name: nearest_to(catalog_vectors, vectors[name], CUTOFF)
        for name, catalog_vectors in features.embeddings().items()
    }
    first = found[next(iter(found))]
    examples = [
        {
            "id": features.items[queries[row]].id,
            "changes": list(kinds[row]),
            "photo": base64.b64encode(changed_photos[row]).decode(),
            "neighbours": [features.items[i].id for i in first[row]],
        }
        for row in (groups.index(group) for group in dict.fromkeys(groups))
    ]
    return {
        "seed": seed,
        "queries": len(queries),
        "figures": {
            name: by_change(neighbours, queries, groups, leaves, colours)
            for name, neighbours in found.items()
        },
        "examples": examples,
    }
