"""Trains a model version for a catalog:
`python -m infra.train [--catalog DIR] [--epochs N] [--recipe default|daily]`.

Seeds the taxonomy from the catalog the first time (later runs train on the curated tree),
exports it, trains, evaluates, exports to ONNX and registers the version behind the quality
gate, all in var/work/<catalog folder name>/.
"""

import argparse
from pathlib import Path

from catalog.generate import generate
from infra import workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", type=Path, help="a catalog folder (default: the embedded one)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the recipe's)")
    parser.add_argument("--recipe", help="encoder_svc.train's recipe (default: default)")
    args = parser.parse_args()
    catalog_dir = args.catalog.resolve() if args.catalog else generate(workspace.GENERATED)
    workdir = workspace.workdir_for(catalog_dir)
    workspace.seed(catalog_dir, workdir)
    workspace.train(catalog_dir, workdir, args.epochs, args.recipe)


if __name__ == "__main__":
    main()
