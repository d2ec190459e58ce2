"""How a model version holds up when the query is a shopper's photo, not the catalog's own.

    python -m evaluation.robustness --catalog DIR --model VERSION_DIR [--queries N]
        [--seed S] [--variant fp32|int8] [--threads T] [--out DIR]

Each held-out item's photo is changed (evaluation.perturb: each change alone, and mixes of two
to six, from the seed), embedded through the serving path (decode, normalise, onnxruntime) and
searched exactly against the whole catalog, its own item included. Scored per kind of change:
own item at 1 and in the top 10, P@10 leaf and P@10 leaf and colour (the own item counts as a
neighbour of its leaf). Beside them, the clean figures of the same held-out items (the
catalog's photo, the item itself left out, through the same retrieval as `python -m
evaluation`). Prints a table and writes robustness.json.
"""

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from catalog.items import open_catalog
from catalog.split import is_held_out
from common.errors import InvalidArgument
from encoder_svc.evaluate import CUTOFF, hits, nearest_to, retrieval
from encoder_svc.preprocess import Limits, decode, normalise
from encoder_svc.runtime import Encoder
from evaluation.features import BATCH, embed_catalog
from evaluation.perturb import changed, label, plan
from evaluation.quality import codes


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


def evaluate(
    catalog_dir: Path,
    version_dir: Path,
    variant: str = "fp32",
    queries: int | None = None,
    seed: int = 0,
    threads: int = 2,
) -> dict[str, Any]:
    """The changed-photo figures of a model variant beside the clean ones (module docstring)."""
    encoder = Encoder.load(version_dir, threads, variant=variant)
    with open_catalog(catalog_dir) as catalog:
        features = embed_catalog(catalog, {variant: encoder}, threads)
        held = [i for i, item in enumerate(features.items) if is_held_out(item.id)][:queries]
        if not held:
            raise InvalidArgument(f"catalog {catalog_dir} has no held-out item to query with")
        kinds = plan(len(held), seed)
        rng = np.random.default_rng(seed)
        photos = [changed(catalog.image_bytes(features.items[i].id), k, rng) for i, k in
                  zip(held, kinds, strict=True)]  # fmt: skip
    images = np.stack([decode(photo, Limits(), encoder.params) for photo in photos])
    vectors = np.concatenate(
        [
            encoder.embed(normalise(images[start : start + BATCH], encoder.params))[0]
            for start in range(0, len(images), BATCH)
        ]
    )
    (leaves, _), (colours, _) = codes(features, "leaf"), codes(features, "colour")
    catalog_vectors = features.model[variant]
    own = np.array(held, dtype=np.int64)
    found = nearest_to(catalog_vectors, vectors, CUTOFF)
    clean = retrieval(catalog_vectors, leaves, colours, own, CUTOFF).figures()
    return {
        "model_version": encoder.version,
        "variant": variant,
        "catalog": str(catalog_dir),
        "seed": seed,
        "changed": by_change(found, own, [label(k) for k in kinds], leaves, colours),
        "clean": clean,
    }


def text(result: dict[str, Any]) -> str:
    """The figures as a table: each group of changed photos, then the clean photos."""
    columns = ("own_at_1", "own_at_10", "p_at_10_leaf", "p_at_10_leaf_colour")
    lines = [f"{'queries':<22}{'n':>6}" + "".join(f"{c:>21}" for c in columns)]
    for group, row in result["changed"].items():
        cells = "".join(f"{row.get(c, float('nan')):>21.4f}" for c in columns)
        lines.append(f"{'changed: ' + group:<22}{row['queries']:>6}" + cells)
    clean = result["clean"]
    cells = "".join(f"{clean[c]:>21.4f}" if c in clean else f"{'-':>21}" for c in columns)
    lines.append(f"{'clean (left out)':<22}{clean['queries']:>6}" + cells)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="model version folder")
    parser.add_argument("--variant", default="fp32", choices=("fp32", "int8"))
    parser.add_argument("--queries", type=int, help="the first N held-out items; default all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="default <model>/robustness-<variant>")
    args = parser.parse_args(argv)
    result = evaluate(args.catalog, args.model, args.variant, args.queries, args.seed, args.threads)
    print(text(result))
    out = args.out or args.model / f"robustness-{args.variant}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'robustness.json'}")


if __name__ == "__main__":
    main()
