"""Training end to end on a small generated catalog: a registered, servable version."""

import asyncio
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from catalog.generate import generate
from catalog.items import open_catalog
from catalog.split import is_held_out
from common import paths
from common.config import EncoderConfig
from common.errors import ItemFailure
from encoder_svc import quantize, registry
from encoder_svc.embedder import Embedded, Embedder
from encoder_svc.export import TOLERANCE, load_torch, max_difference
from encoder_svc.runtime import Encoder
from encoder_svc.train import Recipe, train

RENAMED = ("Footwear/Sandal/Flip Flops", "Footwear/Sandal/Slippers")
STARVED = "Accessories/Watches/Digital"


def write_export(catalog_dir: Path, out: Path) -> list[str]:
    """A taxonomy export as the taxonomy service writes it, from the catalog's own leaves, with
    one leaf renamed and one leaf whose items are nearly all predicted (not trainable).

    Returns:
        The ids of the starved leaf's items that keep a given label.
    """
    with open_catalog(catalog_dir) as catalog:
        items = [
            (item.id, RENAMED[1] if item.leaf == RENAMED[0] else item.leaf)
            for item in catalog.items
        ]
    nodes: dict[str, str] = {}
    for _, leaf in items:
        names = paths.split(leaf)
        for depth in range(1, len(names) + 1):
            nodes[paths.join(*names[:depth])] = paths.join(*names[: depth - 1])
    starved = [item_id for item_id, leaf in items if leaf == STARVED]
    export = {
        "version": 7,
        "nodes": [{"path": path, "parent": parent} for path, parent in nodes.items()],
        "items": [
            {
                "id": item_id,
                "leaf": leaf,
                "leaf_source": "predicted" if item_id in starved[3:] else "given",
            }
            for item_id, leaf in items
        ],
    }
    out.write_text(json.dumps(export))
    return starved[:3]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("training")


@pytest.fixture(scope="module")
def starved_given(root: Path) -> list[str]:
    return write_export(generate(root / "catalog", seed=3, per_leaf=24), root / "export.json")


@pytest.fixture(scope="module")
def trained(root: Path, starved_given: list[str]) -> Path:
    recipe = Recipe(epochs=2, batch_size=32, min_items=5)
    version_dir, verdict = train(root / "catalog", root / "export.json", root / "models", recipe)
    assert verdict.promote and verdict.against is None
    return version_dir


def _trained_ids(root: Path) -> list[str]:
    """The items a model may learn from: given a leaf by a person and not held out."""
    export = json.loads((root / "export.json").read_text())
    return sorted(
        item["id"]
        for item in export["items"]
        if item["leaf_source"] == "given" and not is_held_out(item["id"])
    )


@pytest.mark.slow
def test_training_registers_a_current_version_with_its_meta(root: Path, trained: Path) -> None:
    models_dir = trained.parent
    assert registry.current(models_dir) == trained
    assert (trained / registry.MODEL_FILE).stat().st_size > 0
    assert (trained / quantize.INT8_FILE).stat().st_size > 0  # a CURRENT version has int8 too
    meta = registry.ModelMeta.load(trained)
    assert meta.version == trained.name
    assert meta.training["recipe"]["epochs"] == 2
    assert meta.training["recipe"]["precision"] in ("bf16", "fp32")  # "auto", resolved
    for figure in registry.GATED:
        assert 0.0 <= meta.evaluation[figure] <= 1.0
    assert meta.data["catalog"] == str((root / "catalog").resolve())
    assert meta.data["taxonomy_version"] == 7
    digest = hashlib.sha256("\n".join(_trained_ids(root)).encode()).hexdigest()
    assert meta.data["trained_ids_sha256"] == digest
    assert meta.data["items"]["trained"] == len(_trained_ids(root))


@pytest.mark.slow
def test_leaves_come_from_the_taxonomy_export(trained: Path, starved_given: list[str]) -> None:
    meta = registry.ModelMeta.load(trained)
    assert RENAMED[1] in meta.leaves and RENAMED[0] not in meta.leaves
    assert STARVED not in meta.leaves
    trainable = sum(not is_held_out(item_id) for item_id in starved_given)
    assert meta.data["small_leaves"]["leaves"] == {STARVED: trainable}
    assert meta.data["items"]["predicted"] > 0


@pytest.mark.slow
def test_heads_come_from_the_tree_above_the_leaves_and_the_colours(trained: Path) -> None:
    heads = registry.ModelMeta.load(trained).training["heads"]
    masters, subs = heads["levels"]
    assert masters == ["Accessories", "Apparel", "Footwear"]
    assert "Footwear/Sandal" in subs and "Accessories/Watches" in subs
    assert {"Black", "White", "Red"} <= set(heads["colours"])


@pytest.mark.slow
def test_the_torch_weights_rebuild_the_exported_model(trained: Path) -> None:
    model = load_torch(trained)
    batch = torch.randn(3, 3, 80, 60, generator=torch.Generator().manual_seed(1))
    assert max_difference(model, trained / registry.MODEL_FILE, [batch]) <= TOLERANCE
    served = Encoder.load(trained, threads=1).embed(batch.numpy())[0]
    assert served.shape == (3, model.dim) == (3, registry.ModelMeta.load(trained).dim)


@pytest.mark.slow
def test_the_version_serves_the_catalog_images(root: Path, trained: Path) -> None:
    with open_catalog(root / "catalog") as catalog:
        images = [catalog.image_bytes(item.id) for item in catalog.items[:4]]
    settings = EncoderConfig(max_batch=8, top_leaves=3)
    embedder = Embedder(Encoder.load(trained, threads=1), settings)
    answer = asyncio.run(embedder.embed([*images, b"not an image"]))
    embedder.close()
    assert answer.model_version == trained.name
    vectors = [result.vector for result in answer.results if isinstance(result, Embedded)]
    assert len(vectors) == 4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert isinstance(answer.results[4], ItemFailure) and answer.results[4].index == 4
