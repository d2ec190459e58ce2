"""Exports the trained network to ONNX and checks that onnxruntime agrees with torch."""

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from common.errors import NotFound
from encoder_svc.model import Arch, ResNet
from encoder_svc.preprocess import PreprocessParams
from encoder_svc.registry import ModelMeta
from encoder_svc.runtime import INPUT, OUTPUTS

log = logging.getLogger(__name__)

OPSET = 17
TOLERANCE = 1e-4
WEIGHTS_FILE = "model.pt"  # the torch state_dict beside the ONNX file


class ExportMismatch(RuntimeError):
    """onnxruntime's outputs differ from torch's beyond the tolerance."""


def export(
    model: ResNet,
    path: Path,
    params: PreprocessParams,
    check_batches: tuple[int, ...] = (1, 5),
    seed: int = 0,
) -> float:
    """Writes `model` in eval mode as ONNX with a dynamic batch axis, then verifies the file.

    Args:
        model: the network; it is left in eval mode.
        path: where model.onnx goes.
        params: the input size.
        check_batches: batch sizes at which onnxruntime is compared with torch.
        seed: seeds the random comparison inputs.

    Returns:
        The largest absolute difference seen between onnxruntime and torch.

    Raises:
        ExportMismatch: the difference exceeds TOLERANCE.
    """
    model.eval()
    sample = torch.randn(2, 3, params.height, params.width)
    # The TorchScript exporter (dynamo=False) is deprecated but gives one self-contained file
    # quickly and quietly; the dynamo exporter needs dynamic_shapes and external_data=False.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # sizes made constants on purpose
        torch.onnx.export(
            model,
            (sample,),
            str(path),
            input_names=[INPUT],
            output_names=list(OUTPUTS),
            dynamic_axes={name: {0: "batch"} for name in (INPUT, *OUTPUTS)},
            opset_version=OPSET,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    generator = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randn(n, 3, params.height, params.width, generator=generator) for n in check_batches
    ]
    diff = max_difference(model, path, inputs)
    if diff > TOLERANCE:
        raise ExportMismatch(f"onnxruntime differs from torch by {diff:.2e} > {TOLERANCE:.0e}")
    log.info("exported %s; onnxruntime matches torch within %.2e", path, diff)
    return diff


def max_difference(model: ResNet, path: Path, inputs: list[torch.Tensor]) -> float:
    """The largest absolute difference of any output between torch and onnxruntime.

    Args:
        model: the network in eval mode.
        path: its exported ONNX file.
        inputs: batches (N, 3, H, W) to run through both.

    Returns:
        The maximum over every batch, output and element.
    """
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in inputs:
        with torch.no_grad():
            expected = [tensor.numpy() for tensor in model(batch)]
        got = session.run(list(OUTPUTS), {INPUT: batch.numpy()})
        for want, have in zip(expected, got, strict=True):
            worst = max(worst, float(np.abs(want - have).max()))
    return worst


def build(meta: ModelMeta) -> ResNet:
    """A version's torch network, untrained: its recorded architecture, leaves and heads."""
    heads = meta.training["heads"]
    return ResNet(
        len(meta.leaves),
        Arch.from_dict(meta.training["recipe"]["arch"]),
        levels=tuple(len(classes) for classes in heads["levels"]),
        colours=len(heads["colours"]),
    )


def load_torch(version_dir: Path) -> ResNet:
    """Rebuilds a registered version's torch network from its meta.json and model.pt.

    Args:
        version_dir: a version directory written by `encoder_svc.train`.

    Returns:
        The network in eval mode, with the weights the ONNX file was exported from.

    Raises:
        NotFound: the version has no torch weights.
    """
    weights = version_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise NotFound(f"model version {version_dir} has no torch weights {WEIGHTS_FILE}")
    model = build(ModelMeta.load(version_dir))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()
