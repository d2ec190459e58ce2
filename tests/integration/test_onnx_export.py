"""ONNX export: onnxruntime agrees with torch, the batch axis is dynamic, the runtime serves it."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from encoder_svc import registry
from encoder_svc.export import TOLERANCE, export, max_difference
from encoder_svc.model import Arch, ResNet
from encoder_svc.preprocess import PreprocessParams
from encoder_svc.runtime import Encoder

PARAMS = PreprocessParams()
LEAVES = ["A/B/c", "A/B/d", "A/E/f", "G/H/i"]
SMALL = Arch(widths=(8, 16), blocks=(1, 1), stem_width=8, dim=16)
DIM = SMALL.dim + len(LEAVES)  # the served embedding: shape part and leaf probabilities


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResNet, Path]:
    torch.manual_seed(0)
    model = ResNet(len(LEAVES), SMALL)
    _give_batch_norm_statistics(model)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export(model, path, PARAMS)
    return model, path


def _give_batch_norm_statistics(model: ResNet) -> None:
    """A few training-mode passes, so eval mode uses running statistics that are not trivial."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, PARAMS.height, PARAMS.width) * 2 + 0.5)
    model.eval()


def _batch(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, PARAMS.height, PARAMS.width, generator=generator)


@pytest.mark.parametrize("batch", [1, 5])
def test_onnxruntime_matches_torch(exported: tuple[ResNet, Path], batch: int) -> None:
    model, path = exported
    assert max_difference(model, path, [_batch(batch, seed=batch)]) <= TOLERANCE


def test_graph_has_the_served_names_and_a_dynamic_batch_axis(
    exported: tuple[ResNet, Path],
) -> None:
    graph = onnx.load(str(exported[1])).graph
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["embedding", "probs"]
    for value in (*graph.input, *graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param  # symbolic, not a fixed size


def test_runtime_embeds_any_batch_size(exported: tuple[ResNet, Path], tmp_path: Path) -> None:
    version_dir = registry.register(tmp_path, exported[1], LEAVES, DIM, PARAMS, {})
    encoder = Encoder.load(version_dir, threads=1)
    for n in (1, 3, 17):
        embeddings, probs = encoder.embed(_batch(n, seed=n).numpy())
        assert embeddings.shape == (n, DIM) and probs.shape == (n, len(LEAVES))
        assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert encoder.device == "cpu" and encoder.version == version_dir.name


def test_top_leaves_are_most_probable_first(exported: tuple[ResNet, Path], tmp_path: Path) -> None:
    version_dir = registry.register(tmp_path, exported[1], LEAVES, DIM, PARAMS, {})
    encoder = Encoder.load(version_dir)
    probs = np.array([[0.1, 0.5, 0.05, 0.35], [0.7, 0.1, 0.15, 0.05]], dtype=np.float32)
    top = encoder.top_leaves(probs, 3)
    assert [[leaf for leaf, _ in row] for row in top] == [
        ["A/B/d", "G/H/i", "A/B/c"],
        ["A/B/c", "A/E/f", "A/B/d"],
    ]
    assert [prob for _, prob in top[0]] == pytest.approx([0.5, 0.35, 0.1])
    assert len(encoder.top_leaves(np.full((1, 4), 0.25, dtype=np.float32), 10)[0]) == len(LEAVES)
