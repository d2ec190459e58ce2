"""`python -m evaluation` end to end: a tiny trained model on a generated catalog, JSON and HTML."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from catalog.generate import generate
from catalog.items import open_catalog
from common import paths
from encoder_svc.train import Recipe, train
from evaluation.quality import evaluate

ROOT = Path(__file__).resolve().parents[2]
RENAMED = ("Footwear/Sandal/Flip Flops", "Footwear/Sandal/Slippers")


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
    recipe = Recipe(epochs=2, batch_size=32, min_items=5)
    trained, _ = train(root / "catalog", root / "export.json", root / "models", recipe)
    return trained


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
    assert "P@10 leaf" in done.stdout and "raw pixels" in done.stdout
    return json.loads((version_dir / "evaluation" / "evaluation.json").read_text())


@pytest.mark.slow
def test_the_json_holds_every_figure_for_the_model_and_the_baselines(
    cli_result: dict[str, Any], version_dir: Path
) -> None:
    assert cli_result["model_version"] == version_dir.name
    assert cli_result["variant"] == "fp32"
    assert set(cli_result["figures"]) == {"model", "colour_histogram", "raw_pixels"}
    for figures in cli_result["figures"].values():
        for key in ("p_at_10_leaf", "p_at_10_leaf_colour", "map_at_10_leaf"):
            assert 0.0 <= figures[key] <= 1.0
        assert figures["p_at_10_leaf_colour"] <= figures["p_at_10_leaf"]
        assert len(figures["p_at_k_leaf"]) == 50
        assert figures["queries"] == cli_result["counts"]["queries"] > 0
    assert 0.0 <= cli_result["figures"]["model"]["top1_leaf"] <= 1.0
    assert set(cli_result["seconds"]) == {"embed", "search", "total"}


@pytest.mark.slow
def test_queries_whose_leaf_the_model_does_not_predict_are_left_out_of_top1(
    cli_result: dict[str, Any],
) -> None:
    model = cli_result["figures"]["model"]
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
    worst = cli_result["worst"]
    assert worst and len(worst[0]["neighbours"]) == 10
    assert worst[0]["p_at_10_leaf"] <= worst[-1]["p_at_10_leaf"]
    assert f"query {worst[0]['id']}" in page
    assert page.count("data:image/jpeg;base64,") == len(worst) * 11


@pytest.mark.slow
def test_a_missing_int8_model_is_named(root: Path, version_dir: Path) -> None:
    done = run_cli(
        "--catalog", str(root / "catalog"), "--model", str(version_dir), "--variant", "int8"
    )
    assert done.returncode == 1
    assert "model.int8.onnx" in done.stderr


@pytest.mark.slow
def test_evaluate_can_limit_the_queries(root: Path, version_dir: Path) -> None:
    result = evaluate(root / "catalog", version_dir, queries=5, threads=1)
    assert result["counts"]["queries"] == 5
    assert result["per_master"] and len(result["worst"]) == 5
