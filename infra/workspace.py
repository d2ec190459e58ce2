"""A cluster's working files for one catalog: taxonomy database, models, shard data."""

import shutil
import subprocess
import sys
from pathlib import Path


def overrides(workdir: Path) -> dict[str, str]:
    """The VS_* settings that point every service at `workdir`."""
    return {
        "VS_TAXONOMY_DATABASE": str(workdir / "taxonomy.sqlite"),
        "VS_ENCODER_MODELS_DIR": str(workdir / "models"),
        "VS_INDEX_DATA_DIR": str(workdir / "shards"),
        "VS_RUN_DIR": str(workdir / "run"),
    }


def prepare(catalog: Path, workdir: Path, epochs: int | None = None) -> None:
    """Starts `workdir` afresh: seeds the taxonomy from the catalog, exports it, trains a model.

    Each step is the project's own command, run as a child process so its progress shows.
    """
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    settings = overrides(workdir)
    database, export = settings["VS_TAXONOMY_DATABASE"], str(workdir / "taxonomy.json")
    _run("taxonomy_svc.admin", "seed", "--database", database, "--catalog", str(catalog))
    _run("taxonomy_svc.admin", "export", "--database", database, "--out", export)
    train = ["--catalog", str(catalog), "--taxonomy", export]
    train += ["--models-dir", settings["VS_ENCODER_MODELS_DIR"]]
    _run("encoder_svc.train", *train, *(["--epochs", str(epochs)] if epochs else []))


def _run(module: str, *args: str) -> None:
    print(f"$ python -m {module} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", module, *args], check=True)
