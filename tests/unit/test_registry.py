"""Model versions on disk: registering, the CURRENT pointer, and the meta that travels along."""

from pathlib import Path

import pytest

from common.errors import FailedPrecondition, NotFound
from encoder_svc import registry
from encoder_svc.preprocess import PreprocessParams

LEAVES = ["A/B/c", "A/B/d"]
PARAMS = PreprocessParams(mean=(0.8, 0.7, 0.6), std=(0.3, 0.2, 0.1))


def _model_file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / f"model-{content.hex()}.onnx"
    path.write_bytes(content)
    return path


def _register(models_dir: Path, content: bytes, make_current: bool = True) -> Path:
    model = _model_file(models_dir.parent, content)
    return registry.register(models_dir, model, LEAVES, 8, PARAMS, {"epochs": 1}, make_current)


def test_register_stores_the_model_and_its_meta_and_makes_it_current(tmp_path: Path) -> None:
    version_dir = _register(tmp_path / "models", b"first")
    assert registry.current(tmp_path / "models") == version_dir
    assert (version_dir / registry.MODEL_FILE).read_bytes() == b"first"
    meta = registry.ModelMeta.load(version_dir)
    assert meta.version == version_dir.name
    assert meta.leaves == tuple(LEAVES) and meta.dim == 8
    assert meta.preprocess == PARAMS and meta.training == {"epochs": 1}
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".")] == []


def test_versions_sort_by_creation_and_current_moves_only_when_asked(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    first = _register(models_dir, b"first")
    second = _register(models_dir, b"second", make_current=False)
    assert registry.current(models_dir) == first
    assert first.name[:15] <= second.name[:15]  # YYYYMMDD-HHMMSS
    registry.set_current(models_dir, second.name)
    assert registry.current(models_dir) == second


def test_current_without_a_model_names_the_command_to_run(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition, match=r"encoder_svc\.train"):
        registry.current(tmp_path)


def test_current_naming_a_missing_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / registry.CURRENT_FILE).write_text("20260101-000000-deadbeef\n")
    with pytest.raises(FailedPrecondition, match="20260101-000000-deadbeef"):
        registry.current(tmp_path)


def test_set_current_refuses_an_unknown_version(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        registry.set_current(tmp_path, "nope")
