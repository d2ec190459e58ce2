"""Model versions on disk: `<models_dir>/<version>/{model.onnx,meta.json,...}`, a CURRENT pointer
and the quality gate that decides whether a new version becomes CURRENT."""

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.errors import AlreadyExists, FailedPrecondition, NotFound
from encoder_svc.preprocess import PreprocessParams

MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
VERDICT_FILE = "gate.json"
CURRENT_FILE = "CURRENT"
TRAIN_COMMAND = "python -m encoder_svc.train --catalog DIR --taxonomy EXPORT.json --models-dir DIR"
GATED = ("p_at_10_leaf", "p_at_10_leaf_colour", "held_out_top1_leaf")  # higher is better
GATE_MARGIN = 0.01


@dataclasses.dataclass(frozen=True)
class ModelMeta:
    """What a model version predicts, how it was made, how good it is and what data it saw.

    `evaluation` holds the held-out figures (the GATED ones among them); `data` the catalog,
    the split, the taxonomy version, item counts and a hash of the trained item ids.
    """

    version: str
    created: str  # ISO 8601, UTC
    leaves: tuple[str, ...]  # the classifier's outputs, in the order of the probs
    dim: int
    preprocess: PreprocessParams
    training: dict[str, Any]  # recipe, heads, loss, seconds
    evaluation: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

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
            evaluation=raw.get("evaluation", {}),
            data=raw.get("data", {}),
        )


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The quality gate's decision on a new version."""

    promote: bool
    reason: str
    against: str | None = None  # the version it was compared with
    margin: float = GATE_MARGIN

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def register(
    models_dir: Path,
    model_file: Path,
    leaves: list[str],
    dim: int,
    preprocess: PreprocessParams,
    training: dict[str, Any],
    make_current: bool = True,
    *,
    evaluation: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    files: tuple[Path, ...] = (),
) -> Path:
    """Stores an exported model as a new version, complete before it becomes visible.

    Args:
        models_dir: the directory of versions.
        model_file: the exported ONNX file (copied).
        leaves: the leaves the model predicts, in the order of its probabilities.
        dim: the embedding dimension.
        preprocess: the preprocessing the model was trained with.
        training: the training summary.
        make_current: also point CURRENT at the new version, without a gate.
        evaluation: the held-out figures.
        data: what the model saw.
        files: more files of the version (e.g. the torch weights), copied under their names.

    Returns:
        The new version's directory.

    Raises:
        AlreadyExists: the same model file was registered within the same second.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    version = f"{now:%Y%m%d-%H%M%S}-{_digest(model_file)[:8]}"
    meta = ModelMeta(
        version,
        now.isoformat(timespec="seconds"),
        tuple(leaves),
        dim,
        preprocess,
        training,
        dict(evaluation or {}),
        dict(data or {}),
    )
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=models_dir))
    staging.chmod(0o755)
    try:
        for source, name in ((model_file, MODEL_FILE), *((f, f.name) for f in files)):
            shutil.copyfile(source, staging / name)
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


def judge(
    candidate: ModelMeta,
    incumbent: ModelMeta | None,
    margin: float = GATE_MARGIN,
    force: bool = False,
) -> Verdict:
    """The quality gate: may `candidate` replace `incumbent` (the current version)?

    It may when there is no incumbent, when the two were evaluated on different catalogs or
    splits (figures that cannot be compared; the reason says so), when no GATED figure is
    worse than the incumbent's by more than `margin`, or when forced.

    Args:
        candidate: the new version's meta.
        incumbent: the current version's meta, None when there is none.
        margin: how much worse a gated figure may be.
        force: promote whatever the figures.

    Returns:
        The decision and its reason.
    """
    if incumbent is None:
        return Verdict(True, "no current version to compare with", None, margin)
    against = incumbent.version
    differs = [
        f"{key} {incumbent.data.get(key)!r} -> {candidate.data.get(key)!r}"
        for key in ("catalog", "split")
        if candidate.data.get(key) != incumbent.data.get(key)
    ]
    if differs:
        reason = f"not compared with {against}, evaluated otherwise ({'; '.join(differs)})"
        return Verdict(True, reason, against, margin)
    figures = {key: _figures(candidate, incumbent, key) for key in GATED}
    worse = [key for key, (old, new) in figures.items() if new < old - margin]
    summary = ", ".join(_describe(key, *figures[key]) for key in figures)
    if not worse:
        reason = f"no gated figure worse by more than {margin}: {summary}"
        return Verdict(True, reason, against, margin)
    refusal = f"worse than {against} by more than {margin}: " + ", ".join(
        _describe(key, *figures[key]) for key in worse
    )
    if force:
        return Verdict(True, f"forced, although {refusal}", against, margin)
    return Verdict(False, refusal, against, margin)


def promote(
    models_dir: Path, version_dir: Path, margin: float = GATE_MARGIN, force: bool = False
) -> Verdict:
    """Puts a registered version through the gate against CURRENT; moves CURRENT if it passes.

    The verdict is also written to the version's gate.json.

    Args:
        models_dir: the directory of versions.
        version_dir: the registered candidate.
        margin: how much worse a gated figure may be.
        force: promote whatever the figures.

    Returns:
        The gate's verdict.
    """
    verdict = judge(ModelMeta.load(version_dir), _incumbent(models_dir), margin, force)
    _write_atomically(version_dir / VERDICT_FILE, json.dumps(verdict.to_dict(), indent=2) + "\n")
    if verdict.promote:
        set_current(models_dir, version_dir.name)
    return verdict


def set_current(models_dir: Path, version: str) -> None:
    """Points CURRENT at `version`, atomically (a reader sees the old or the new name).

    Raises:
        NotFound: there is no such version.
    """
    if not (models_dir / version / MODEL_FILE).is_file():
        raise NotFound(f"no model version {version!r} in {models_dir}")
    _write_atomically(models_dir / CURRENT_FILE, version + "\n")


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


def _incumbent(models_dir: Path) -> ModelMeta | None:
    """The current version's meta; None when there is none or it is incomplete."""
    try:
        return ModelMeta.load(current(models_dir))
    except FailedPrecondition:
        return None


def _figures(candidate: ModelMeta, incumbent: ModelMeta, key: str) -> tuple[float, float]:
    """(incumbent's, candidate's) figure; one the incumbent lacks is not held against anyone."""
    new = float(candidate.evaluation.get(key, 0.0))
    return float(incumbent.evaluation.get(key, new)), new


def _describe(key: str, old: float, new: float) -> str:
    return f"{key} {old:.4f} -> {new:.4f} ({new - old:+.4f})"


def _write_atomically(path: Path, text: str) -> None:
    """Writes a small file so that a reader sees the old or the new content, never a part."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def _digest(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
