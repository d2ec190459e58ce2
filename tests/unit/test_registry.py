"""Model versions on disk: registering, the CURRENT pointer, and the meta that travels along."""

import dataclasses
import json
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


FIGURES = {"p_at_10_leaf": 0.90, "p_at_10_leaf_colour": 0.60, "held_out_top1_leaf": 0.92}
DATA = {"catalog": "/data/fashion-small", "split": "crc32(id) % 10 == 0 held out"}


def _candidate(
    models_dir: Path, content: bytes, figures: dict[str, float], data: dict[str, str] = DATA
) -> Path:
    model = _model_file(models_dir.parent, content)
    return registry.register(
        models_dir, model, LEAVES, 8, PARAMS, {}, False, evaluation=figures, data=data
    )


def _current_with_targets(tmp_path: Path) -> tuple[Path, Path]:
    models_dir = tmp_path / "models"
    first = _candidate(models_dir, b"first", FIGURES)
    assert registry.promote(models_dir, first).promote
    return models_dir, first


def test_the_first_version_is_promoted(tmp_path: Path) -> None:
    models_dir, first = _current_with_targets(tmp_path)
    assert registry.current(models_dir) == first
    verdict = json.loads((first / registry.VERDICT_FILE).read_text())
    assert verdict["promote"] and verdict["against"] is None


def test_a_version_no_worse_than_the_margin_is_promoted(tmp_path: Path) -> None:
    models_dir, first = _current_with_targets(tmp_path)
    figures = {**FIGURES, "p_at_10_leaf": 0.895, "held_out_top1_leaf": 0.95}
    second = _candidate(models_dir, b"second", figures)
    verdict = registry.promote(models_dir, second, margin=0.01)
    assert verdict.promote and verdict.against == first.name
    assert registry.current(models_dir) == second


def test_a_worse_version_is_registered_but_not_promoted(tmp_path: Path) -> None:
    models_dir, first = _current_with_targets(tmp_path)
    worse = _candidate(models_dir, b"worse", {**FIGURES, "p_at_10_leaf_colour": 0.55})
    verdict = registry.promote(models_dir, worse, margin=0.01)
    assert not verdict.promote
    assert "p_at_10_leaf_colour 0.6000 -> 0.5500" in verdict.reason
    assert "p_at_10_leaf " not in verdict.reason  # only the figures that fail are named
    assert registry.current(models_dir) == first
    assert registry.ModelMeta.load(worse).evaluation["p_at_10_leaf_colour"] == 0.55
    assert not json.loads((worse / registry.VERDICT_FILE).read_text())["promote"]


def test_a_wider_margin_lets_the_same_version_through(tmp_path: Path) -> None:
    models_dir, _ = _current_with_targets(tmp_path)
    worse = _candidate(models_dir, b"worse", {**FIGURES, "held_out_top1_leaf": 0.90})
    assert registry.promote(models_dir, worse, margin=0.05).promote


def test_force_promotes_a_worse_version_and_says_so(tmp_path: Path) -> None:
    models_dir, _ = _current_with_targets(tmp_path)
    worse = _candidate(models_dir, b"worse", {**FIGURES, "held_out_top1_leaf": 0.5})
    verdict = registry.promote(models_dir, worse, force=True)
    assert verdict.promote and verdict.reason.startswith("forced")
    assert registry.current(models_dir) == worse


def test_versions_evaluated_on_another_catalog_are_not_compared(tmp_path: Path) -> None:
    models_dir, first = _current_with_targets(tmp_path)
    other = {**DATA, "catalog": "/data/generated"}
    elsewhere = _candidate(models_dir, b"other", {**FIGURES, "p_at_10_leaf": 0.1}, other)
    verdict = registry.promote(models_dir, elsewhere)
    assert verdict.promote and "not compared" in verdict.reason
    assert "/data/generated" in verdict.reason and verdict.against == first.name
    assert registry.current(models_dir) == elsewhere


def test_judge_is_pure_and_reads_only_the_metas(tmp_path: Path) -> None:
    _, first = _current_with_targets(tmp_path)
    incumbent = registry.ModelMeta.load(first)
    better = dataclasses.replace(
        incumbent, version="next", evaluation={**FIGURES, "p_at_10_leaf": 1}
    )
    assert registry.judge(better, incumbent).promote
    assert not registry.judge(incumbent, better).promote
    assert registry.judge(incumbent, None).promote


def test_register_copies_the_extra_files_of_a_version(tmp_path: Path) -> None:
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights")
    model = _model_file(tmp_path, b"model")
    version_dir = registry.register(
        tmp_path / "models", model, LEAVES, 8, PARAMS, {}, files=(weights,)
    )
    assert (version_dir / "model.pt").read_bytes() == b"weights"
