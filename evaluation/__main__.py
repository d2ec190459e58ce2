"""Evaluates a model version on a catalog and writes evaluation.json and evaluation.html.

python -m evaluation --catalog DIR --model VERSION_DIR [--variant fp32|int8 ...] [--out DIR]
    [--queries N] [--threads T] [--seed S] [--no-changed]

By default every variant the version has (fp32, and int8 once `python -m encoder_svc.quantize`
made model.int8.onnx) is measured in the same run, side by side; `--variant`, repeated, chooses.
Beside the catalog's own photos, the same held-out items' photos changed the way a shopper's
photo differs (evaluation.robustness, drawn from --seed) are measured too, unless --no-changed.
"""

import argparse
from pathlib import Path

from common.errors import VisualSearchError
from encoder_svc.runtime import VARIANTS
from evaluation import report
from evaluation.quality import evaluate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, required=True, help="catalog folder")
    parser.add_argument("--model", type=Path, required=True, help="model version folder")
    parser.add_argument(
        "--variant",
        dest="variants",
        action="append",
        choices=sorted(VARIANTS),
        help="a model variant to evaluate, repeatable; default every one the version has",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder; default <model>/evaluation, or evaluation-<variants> for a choice",
    )
    parser.add_argument("--queries", type=int, help="only the first N held-out items as queries")
    parser.add_argument("--threads", type=int, default=2, help="decoding and onnxruntime threads")
    parser.add_argument("--seed", type=int, default=0, help="draws the changed photos")
    parser.add_argument(
        "--no-changed", action="store_true", help="the catalog's own photos only, none changed"
    )
    args = parser.parse_args(argv)
    chosen = "-".join(sorted(set(args.variants or [])))
    out = args.out or args.model / ("evaluation" + (f"-{chosen}" if chosen else ""))
    try:
        seed = None if args.no_changed else args.seed
        result = evaluate(args.catalog, args.model, args.variants, args.queries, args.threads, seed)
    except VisualSearchError as error:
        parser.exit(1, f"evaluation failed: {error}\n")
    print(report.text(result))
    print(f"wrote {report.write_json(result, out)} and {report.write_html(result, out)}")


if __name__ == "__main__":
    main()
