"""A cluster's working files for one catalog: taxonomy database, model versions, shard data."""

import shutil
import subprocess
import sys
from pathlib import Path

from common.errors import FailedPrecondition
from encoder_svc import registry

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "var" / "catalogs" / "generated"


def workdir_for(catalog: Path) -> Path:
    """Where the cluster keeps its state for `catalog`: var/work/<catalog folder name>."""
    return ROOT / "var" / "work" / catalog.name


def overrides(workdir: Path) -> dict[str, str]:
    """The VS_* settings that point every service at `workdir`."""
    return {
        "VS_TAXONOMY_DATABASE": str(workdir / "taxonomy.sqlite"),
        "VS_ENCODER_MODELS_DIR": str(workdir / "models"),
        "VS_INDEX_DATA_DIR": str(workdir / "shards"),
        "VS_RUN_DIR": str(workdir / "run"),
    }


def seed(catalog: Path, workdir: Path) -> None:
    """Builds the taxonomy from the catalog's labels, once: later runs keep the curated tree."""
    database = overrides(workdir)["VS_TAXONOMY_DATABASE"]
    if not Path(database).exists():
        workdir.mkdir(parents=True, exist_ok=True)
        _run("taxonomy_svc.admin", "seed", "--database", database, "--catalog", str(catalog))


def train(catalog: Path, workdir: Path, epochs: int | None = None) -> None:
    """Exports the current taxonomy and trains a model version on it (behind the quality gate)."""
    settings = overrides(workdir)
    export = str(workdir / "taxonomy.json")
    _run(
        "taxonomy_svc.admin",
        "export",
        "--database",
        settings["VS_TAXONOMY_DATABASE"],
        "--out",
        export,
    )
    args = ["--catalog", str(catalog), "--taxonomy", export]
    args += ["--models-dir", settings["VS_ENCODER_MODELS_DIR"]]
    _run("encoder_svc.train", *args, *(["--epochs", str(epochs)] if epochs else []))


def has_model(workdir: Path) -> bool:
    """True once a model version is current for this workspace."""
    try:
        registry.current(Path(overrides(workdir)["VS_ENCODER_MODELS_DIR"]))
    except FailedPrecondition:
        return False
    return True


def clear_shards(workdir: Path) -> None:
    """Forgets the shards' vectors, so that a new model version can be loaded from scratch."""
    shutil.rmtree(overrides(workdir)["VS_INDEX_DATA_DIR"], ignore_errors=True)


def _run(module: str, *args: str) -> None:
    print(f"$ python -m {module} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", module, *args], check=True)
