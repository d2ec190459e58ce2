"""int8 quantisation of a real exported model, calibrated on a generated catalog's images."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from catalog.generate import generate
from catalog.items import open_catalog
from common.errors import NotFound
from encoder_svc import registry
from encoder_svc.export import export
from encoder_svc.model import Arch, ResNet
from encoder_svc.preprocess import Limits, PreprocessParams, decode, normalise
from encoder_svc.quantize import FACTS_FILE, INT8_FILE, quantize
from encoder_svc.runtime import INPUT, Encoder

PARAMS = PreprocessParams()
LEAVES = ["A/B/c", "A/B/d", "A/E/f"]
SMALL = Arch(widths=(8, 16), blocks=(1, 1), stem_width=8, dim=16)
DIM = SMALL.dim + len(LEAVES)  # the served embedding: shape part and leaf probabilities
CALIBRATION = 48


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("catalog") / "catalog", per_leaf=6)


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = ResNet(len(LEAVES), SMALL)
    _give_batch_norm_statistics(model, catalog_dir)
    export(model, root / "model.onnx", PARAMS)
    return registry.register(root / "models", root / "model.onnx", LEAVES, DIM, PARAMS, {})


def _give_batch_norm_statistics(model: ResNet, catalog_dir: Path) -> None:
    """Training-mode passes over catalog images, so eval mode has real activation ranges."""
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(_inputs(catalog_dir)))
    model.eval()


def _inputs(catalog_dir: Path) -> np.ndarray:
    with open_catalog(catalog_dir) as catalog:
        images = [decode(catalog.image_bytes(i.id), Limits(), PARAMS) for i in catalog.items]
    return normalise(np.stack(images), PARAMS)


@pytest.fixture(scope="module")
def facts(version_dir: Path, catalog_dir: Path) -> dict[str, object]:
    return quantize(version_dir, catalog_dir, calibration=CALIBRATION, threads=1)


def test_quantize_writes_the_int8_model_and_its_facts(
    version_dir: Path, facts: dict[str, object]
) -> None:
    assert (version_dir / INT8_FILE).is_file()
    written = json.loads((version_dir / FACTS_FILE).read_text())
    assert written == facts
    assert written["calibration"]["images"] == CALIBRATION
    assert written["format"] == "qdq" and written["per_channel"] is True
    assert written["check"]["held_out_images"] > 0
    assert not [path.name for path in version_dir.iterdir() if path.name.startswith(".")]


def test_the_stem_reads_the_image_in_fp32(version_dir: Path, facts: dict[str, object]) -> None:
    graph = _int8_graph(version_dir)
    stems = [node for node in graph.node if INPUT in node.input]
    assert [node.op_type for node in stems] == ["Conv"] and facts["kept_fp32"] == [stems[0].name]
    assert any(node.op_type == "QuantizeLinear" for node in graph.node)  # the trunk is int8


def test_the_colour_branch_pools_the_image_in_fp32(tmp_path: Path, catalog_dir: Path) -> None:
    torch.manual_seed(0)
    model = ResNet(len(LEAVES), SMALL, colours=3)
    _give_batch_norm_statistics(model, catalog_dir)
    export(model, tmp_path / "model.onnx", PARAMS)
    version = registry.register(tmp_path, tmp_path / "model.onnx", LEAVES, model.dim, PARAMS, {})
    facts = quantize(version, catalog_dir, calibration=CALIBRATION, threads=1)
    graph = _int8_graph(version)
    assert sorted(node.op_type for node in graph.node if INPUT in node.input) == [
        "AveragePool",
        "Conv",
    ]
    assert len(facts["kept_fp32"]) == 1  # type: ignore[arg-type]


def _int8_graph(version_dir: Path) -> onnx.GraphProto:
    return onnx.load(str(version_dir / INT8_FILE)).graph


def test_int8_embeddings_agree_with_fp32(
    version_dir: Path, catalog_dir: Path, facts: dict[str, object]
) -> None:
    inputs = _inputs(catalog_dir)
    fp32 = Encoder.load(version_dir, threads=1)
    int8 = Encoder.load(version_dir, threads=1, variant="int8")
    (want, want_probs), (got, got_probs) = fp32.embed(inputs), int8.embed(inputs)
    assert int8.version == fp32.version and int8.leaves == fp32.leaves
    assert got.shape == want.shape and got_probs.shape == want_probs.shape
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.allclose(got_probs.sum(axis=1), 1.0, atol=1e-5)
    assert float((got * want).sum(axis=1).mean()) > 0.98


def test_a_version_without_int8_says_how_to_make_it(tmp_path: Path, version_dir: Path) -> None:
    bare = registry.register(
        tmp_path, version_dir / "model.onnx", LEAVES, DIM, PARAMS, {}, make_current=False
    )
    with pytest.raises(NotFound, match=r"encoder_svc\.quantize"):
        Encoder.load(bare, variant="int8")
