"""A cluster's working files for one catalog: taxonomy database, model versions, shard data."""

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from common import config as cluster_config
from common.config import ClusterConfig
from common.errors import FailedPrecondition
from encoder_svc import registry
from infra import cluster

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


def train(
    catalog: Path, workdir: Path, epochs: int | None = None, recipe: str | None = None
) -> None:
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
    args += ["--epochs", str(epochs)] if epochs else []
    _run("encoder_svc.train", *args, *(["--recipe", recipe] if recipe else []))


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


@contextlib.contextmanager
def cluster_for(catalog: Path, epochs: int | None = None) -> Iterator[ClusterConfig]:
    """Every service of the cluster up over `catalog`'s workspace, stopped on leaving.

    The taxonomy is seeded the first time, a model trained if none is current (or anew for
    `epochs`), and the shards start empty, ready for the catalog to be ingested.
    """
    workdir = workdir_for(catalog)
    os.environ.update(overrides(workdir))
    seed(catalog, workdir)
    if epochs or not has_model(workdir):
        train(catalog, workdir, epochs)
    clear_shards(workdir)
    config = cluster_config.load()
    print("starting the cluster ...", flush=True)
    cluster.up(config)
    try:
        yield config
    finally:
        print("stopping the cluster ...", flush=True)
        cluster.down(config)


def _run(module: str, *args: str) -> None:
    print(f"$ python -m {module} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", module, *args], check=True)
