"""Model versions on disk: `<models_dir>/<version>/{model.onnx,meta.json}` and a CURRENT pointer."""

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from common.errors import AlreadyExists, FailedPrecondition, NotFound
from encoder_svc.preprocess import PreprocessParams

MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
CURRENT_FILE = "CURRENT"
TRAIN_COMMAND = "python -m encoder_svc.train --catalog DIR --taxonomy EXPORT.json --models-dir DIR"


@dataclasses.dataclass(frozen=True)
class ModelMeta:
    """What a model version predicts and how it was made."""

    version: str
    created: str  # ISO 8601, UTC
    leaves: tuple[str, ...]  # the classifier's outputs, in the order of the probs
    dim: int
    preprocess: PreprocessParams
    training: dict[str, Any]  # catalog, taxonomy version, counts, epochs, seconds, figures

    def save(self, directory: Path) -> None:
        raw = dataclasses.asdict(self)
        raw["leaves"] = list(self.leaves)
        raw["preprocess"] = self.preprocess.to_dict()
        (directory / META_FILE).write_text(json.dumps(raw, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> "ModelMeta":
        raw = json.loads((directory / META_FILE).read_text())
        return cls(
            version=raw["version"],
            created=raw["created"],
            leaves=tuple(raw["leaves"]),
            dim=int(raw["dim"]),
            preprocess=PreprocessParams.from_dict(raw["preprocess"]),
            training=raw["training"],
        )


def register(
    models_dir: Path,
    model_file: Path,
    leaves: list[str],
    dim: int,
    preprocess: PreprocessParams,
    training: dict[str, Any],
    make_current: bool = True,
) -> Path:
    """Stores an exported model as a new version, complete before it becomes visible.

    Args:
        models_dir: the directory of versions.
        model_file: the exported ONNX file (copied).
        leaves: the leaves the model predicts, in the order of its probabilities.
        dim: the embedding dimension.
        preprocess: the preprocessing the model was trained with.
        training: the training summary.
        make_current: also point CURRENT at the new version.

    Returns:
        The new version's directory.

    Raises:
        AlreadyExists: the same model file was registered within the same second.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    version = f"{now:%Y%m%d-%H%M%S}-{_digest(model_file)[:8]}"
    meta = ModelMeta(
        version, now.isoformat(timespec="seconds"), tuple(leaves), dim, preprocess, training
    )
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=models_dir))
    staging.chmod(0o755)
    try:
        shutil.copyfile(model_file, staging / MODEL_FILE)
        meta.save(staging)
        staging.rename(models_dir / version)  # refuses to replace an existing version
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if (models_dir / version).exists():
            raise AlreadyExists(f"model version {version} is already registered") from error
        raise
    if make_current:
        set_current(models_dir, version)
    return models_dir / version


def set_current(models_dir: Path, version: str) -> None:
    """Points CURRENT at `version`, atomically (a reader sees the old or the new name).

    Raises:
        NotFound: there is no such version.
    """
    if not (models_dir / version / MODEL_FILE).is_file():
        raise NotFound(f"no model version {version!r} in {models_dir}")
    fd, temp = tempfile.mkstemp(prefix=".CURRENT-", dir=models_dir)
    with os.fdopen(fd, "w") as file:
        file.write(version + "\n")
    os.chmod(temp, 0o644)
    os.replace(temp, models_dir / CURRENT_FILE)


def current(models_dir: Path) -> Path:
    """The directory of the version in use.

    Raises:
        FailedPrecondition: no CURRENT, or it names a version that is not complete.
    """
    pointer = models_dir / CURRENT_FILE
    if not pointer.is_file():
        raise FailedPrecondition(
            f"no model in use: {pointer} does not exist; train one with `{TRAIN_COMMAND}`"
        )
    directory = models_dir / pointer.read_text().strip()
    if not (directory / MODEL_FILE).is_file() or not (directory / META_FILE).is_file():
        raise FailedPrecondition(
            f"{pointer} names {directory.name!r} but {directory} lacks {MODEL_FILE} or "
            f"{META_FILE}; train one with `{TRAIN_COMMAND}`"
        )
    return directory


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
