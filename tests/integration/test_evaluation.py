"""`python -m evaluation` end to end: a tiny model, fp32 and int8, on a generated catalog."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from catalog.generate import generate
from catalog.items import open_catalog
from common import paths
from encoder_svc.quantize import INT8_FILE
from encoder_svc.train import Recipe, train
from evaluation.quality import evaluate

ROOT = Path(__file__).resolve().parents[2]
RENAMED = ("Footwear/Sandal/Flip Flops", "Footwear/Sandal/Slippers")
MODELS = ("model fp32", "model int8")
BASELINES = ("colour_histogram", "raw_pixels")


def write_export(catalog_dir: Path, out: Path) -> None:
    """A taxonomy export of the catalog's own leaves, one leaf renamed: the model will predict
    the new name, so that leaf's queries cannot be scored for top-1."""
    with open_catalog(catalog_dir) as catalog:
        items = [
            (item.id, RENAMED[1] if item.leaf == RENAMED[0] else item.leaf)
            for item in catalog.items
        ]
    nodes = {}
    for _, leaf in items:
        names = paths.split(leaf)
        for depth in range(1, len(names) + 1):
            nodes[paths.join(*names[:depth])] = paths.join(*names[: depth - 1])
    export = {
        "version": 1,
        "nodes": [{"path": path, "parent": parent} for path, parent in nodes.items()],
        "items": [{"id": item_id, "leaf": leaf, "leaf_source": "given"} for item_id, leaf in items],
    }
    out.write_text(json.dumps(export))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evaluation")
    generate(root / "catalog", seed=5, per_leaf=24)
    write_export(root / "catalog", root / "export.json")
    return root


@pytest.fixture(scope="module")
def version_dir(root: Path) -> Path:
    """A tiny trained version; training also writes its int8 model (encoder_svc.quantize)."""
    recipe = Recipe(epochs=2, batch_size=32, min_items=5)
    trained, _ = train(root / "catalog", root / "export.json", root / "models", recipe)
    return trained


@pytest.fixture(scope="module")
def fp32_only_dir(root: Path, version_dir: Path) -> Path:
    """The trained version without the int8 model that training made with encoder_svc.quantize."""
    assert (version_dir / INT8_FILE).is_file()
    ignored = shutil.ignore_patterns("model.int8.*")
    return Path(shutil.copytree(version_dir, root / "fp32" / version_dir.name, ignore=ignored))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "evaluation", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cli_result(root: Path, version_dir: Path) -> dict[str, Any]:
    done = run_cli("--catalog", str(root / "catalog"), "--model", str(version_dir))
    assert done.returncode == 0, done.stderr
    names = ("P@10 leaf", "model fp32", "model int8", "raw pixels", "int8 vs fp32", "own item @1")
    for shown in names:
        assert shown in done.stdout
    return json.loads((version_dir / "evaluation" / "evaluation.json").read_text())


@pytest.mark.slow
def test_the_json_holds_every_figure_for_fp32_int8_and_the_baselines(
    cli_result: dict[str, Any], version_dir: Path
) -> None:
    assert cli_result["model_version"] == version_dir.name
    assert cli_result["variants"] == ["fp32", "int8"]
    assert list(cli_result["figures"]) == [*MODELS, *BASELINES]
    for figures in cli_result["figures"].values():
        for key in ("p_at_10_leaf", "p_at_10_leaf_colour", "map_at_10_leaf"):
            assert 0.0 <= figures[key] <= 1.0
        assert figures["p_at_10_leaf_colour"] <= figures["p_at_10_leaf"]
        assert len(figures["p_at_k_leaf"]) == 50
        assert figures["queries"] == cli_result["counts"]["queries"] > 0
    for model in MODELS:
        assert 0.0 <= cli_result["figures"][model]["top1_leaf"] <= 1.0
    assert set(cli_result["seconds"]) == {"embed", "search", "total"}


@pytest.mark.slow
def test_int8_is_compared_with_fp32_on_the_same_items(cli_result: dict[str, Any]) -> None:
    compared = cli_result["comparisons"]["int8 vs fp32"]
    fp32, int8 = (cli_result["figures"][model]["p_at_10_leaf"] for model in MODELS)
    assert compared["p_at_10_leaf_difference"] == pytest.approx(int8 - fp32, abs=1e-4)
    assert compared["items"] == cli_result["counts"]["embedded"]
    assert 0.0 <= compared["top_leaf_agreement"] <= 1.0
    assert compared["mean_cosine"] > 0.9  # int8 serves nearly the same vectors


@pytest.mark.slow
def test_queries_whose_leaf_the_model_does_not_predict_are_left_out_of_top1(
    cli_result: dict[str, Any],
) -> None:
    for model in (cli_result["figures"][name] for name in MODELS):
        assert model["top1_excluded"] > 0  # the renamed leaf's held-out items
        assert model["top1_queries"] + model["top1_excluded"] == cli_result["counts"]["queries"]


@pytest.mark.slow
def test_per_master_rows_split_the_queries(cli_result: dict[str, Any]) -> None:
    rows = cli_result["per_master"]
    assert {"Apparel", "Footwear"} <= set(rows)
    assert sum(row["queries"] for row in rows.values()) == cli_result["counts"]["queries"]


@pytest.mark.slow
def test_the_report_embeds_the_plot_and_the_worst_queries(
    cli_result: dict[str, Any], version_dir: Path
) -> None:
    page = (version_dir / "evaluation" / "evaluation.html").read_text()
    assert "data:image/png;base64," in page  # the P@k plot
    assert "model int8" in page and "int8 vs fp32" in page
    worst = cli_result["worst"]
    assert worst and len(worst[0]["neighbours"]) == 10
    assert worst[0]["p_at_10_leaf"] <= worst[-1]["p_at_10_leaf"]
    assert f"query {worst[0]['id']}" in page
    examples = cli_result["changed"]["examples"]
    assert page.count("data:image/jpeg;base64,") == (len(worst) + len(examples)) * 11
    assert "Changed photos" in page and f"{examples[0]['id']} changed: " in page


@pytest.mark.slow
def test_changed_photos_are_measured_for_every_embedding_and_kind_of_change(
    cli_result: dict[str, Any],
) -> None:
    changed = cli_result["changed"]
    assert changed["seed"] == 0 and changed["queries"] == cli_result["counts"]["queries"]
    assert list(changed["figures"]) == [*MODELS, *BASELINES]
    for rows in changed["figures"].values():
        assert rows["all"]["queries"] == changed["queries"]
        assert {"crop", "pad", "light", "mix of 2"} <= set(rows)
        assert (
            sum(row["queries"] for name, row in rows.items() if name != "all")
            == (changed["queries"])
        )
        for row in rows.values():
            assert 0.0 <= row["own_at_1"] <= row["own_at_10"] <= 1.0
            assert row["p_at_10_leaf_colour"] <= row["p_at_10_leaf"]
    kinds = [name for name in changed["figures"]["model fp32"] if name != "all"]
    assert [" ".join(e["changes"]) if len(e["changes"]) == 1 else f"mix of {len(e['changes'])}"
            for e in changed["examples"]] == kinds  # fmt: skip
    assert all(len(example["neighbours"]) == 10 for example in changed["examples"])


@pytest.mark.slow
def test_asking_for_a_missing_int8_model_says_how_to_make_it(
    root: Path, fp32_only_dir: Path
) -> None:
    catalog, model = str(root / "catalog"), str(fp32_only_dir)
    done = run_cli("--catalog", catalog, "--model", model, "--variant", "fp32", "--variant", "int8")
    assert done.returncode == 1
    assert "model.int8.onnx" in done.stderr and "python -m encoder_svc.quantize" in done.stderr


@pytest.mark.slow
def test_a_version_without_int8_is_measured_in_fp32_and_queries_can_be_limited(
    root: Path, fp32_only_dir: Path
) -> None:
    result = evaluate(root / "catalog", fp32_only_dir, queries=5, threads=1, changed_seed=None)
    assert result["variants"] == ["fp32"] and result["comparisons"] == {}
    assert "changed" not in result
    assert list(result["figures"]) == ["model fp32", *BASELINES]
    assert result["counts"]["queries"] == 5
    assert result["per_master"] and len(result["worst"]) == 5


@pytest.mark.slow
def test_one_variant_can_be_chosen(root: Path, version_dir: Path) -> None:
    result = evaluate(root / "catalog", version_dir, variants=["int8"], queries=5, threads=1)
    assert result["variants"] == ["int8"] and result["comparisons"] == {}
    assert list(result["figures"]) == ["model int8", *BASELINES]
    again = evaluate(root / "catalog", version_dir, variants=["int8"], queries=5, threads=1)
    assert again["changed"] == result["changed"]  # the same seed, the same changed photos
