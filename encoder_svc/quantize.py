"""int8 static quantisation of a model version, calibrated on its catalog's images.

    python -m encoder_svc.quantize --version-dir DIR --catalog DIR [--calibration N]
        [--format qdq|qoperator] [--per-tensor] [--threads T]

Writes model.int8.onnx beside model.onnx (served with `VS_ENCODER_VARIANT=int8`) and
model.int8.json: how it was calibrated and how closely it agrees with fp32 on held-out items.
"""

import argparse
import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from catalog.items import Catalog, CatalogItem, open_catalog
from catalog.split import is_held_out
from encoder_svc import evaluate
from encoder_svc.preprocess import Limits, PreprocessParams, decode, normalise
from encoder_svc.registry import MODEL_FILE, ModelMeta
from encoder_svc.runtime import INPUT, VARIANTS, Encoder

INT8_FILE = VARIANTS["int8"]
FACTS_FILE = "model.int8.json"
# QDQ and QOperator ran equally fast here (uint8 activations, int8 weights: the pair the CPU's
# VNNI instructions take); QDQ is the format other execution providers read too.
FORMATS = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
# The convolutional trunk only: the embedding layer, its normalisation and the classifier's
# softmax stay fp32 (a uint8 softmax would round every probability to 1/256).
OP_TYPES = ["Conv", "Relu", "Add", "GlobalAveragePool"]
# A convolution reading the image (the stem) stays fp32 too: with 3 input channels
# onnxruntime's int8 convolution is slower than its fp32 one (1.52 against 0.77 ms per batch of
# 64 for the 24-channel stem, 2 cores), and the image it reads is pooled in fp32 by the colour
# branch anyway. It is 2.5% of the multiply-adds; int8 / fp32 of the whole model went from 1.84x
# to 1.97x by keeping it (random weights, the colour branch not pooling the stem).
CALIBRATION = 512  # training images whose activation ranges set the int8 scales
CALIBRATION_BATCH = 64
CHECKED = 2000  # held-out images on which int8 is compared with fp32
CHECK_K = 10


class _Images(CalibrationDataReader):
    """Feeds the calibration images to onnxruntime's calibrator, a batch at a time."""

    def __init__(self, inputs: np.ndarray) -> None:
        self._batches = iter(np.array_split(inputs, max(len(inputs) // CALIBRATION_BATCH, 1)))

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT: batch}


def quantize(
    version_dir: Path,
    catalog_dir: Path,
    calibration: int = CALIBRATION,
    quant_format: str = "qdq",
    per_channel: bool = True,
    threads: int = 2,
) -> dict[str, Any]:
    """Writes the version's int8 model and its facts file, replacing any earlier ones.

    Args:
        version_dir: a registered version (model.onnx and meta.json).
        catalog_dir: the catalog to calibrate on (training items) and check on (held-out ones).
        calibration: how many training images calibrate the activation ranges.
        quant_format: "qoperator" (QLinearConv and friends) or "qdq" (Quantize/Dequantize pairs).
        per_channel: one weight scale per output channel instead of one per tensor.
        threads: onnxruntime threads for the comparison with fp32.

    Returns:
        The facts written to model.int8.json.
    """
    meta = ModelMeta.load(version_dir)
    with open_catalog(catalog_dir) as catalog:
        trained = _spread([item for item in catalog.items if not is_held_out(item.id)], calibration)
        held_out = _spread([item for item in catalog.items if is_held_out(item.id)], CHECKED)
        inputs = _inputs(catalog, trained, meta.preprocess)
        checked = _inputs(catalog, held_out, meta.preprocess)
    with tempfile.TemporaryDirectory(dir=version_dir, prefix=".int8-") as scratch:
        prepared, quantized = Path(scratch) / "prepared.onnx", Path(scratch) / INT8_FILE
        # Shape inference and graph folding first, as onnxruntime's quantisation guide asks
        # (no measurable change in speed for this network, but the scales see the final graph).
        quant_pre_process(version_dir / MODEL_FILE, prepared)
        kept = _convs_reading_the_image(prepared)
        quantize_static(
            prepared,
            quantized,
            _Images(inputs),
            quant_format=FORMATS[quant_format],
            op_types_to_quantize=OP_TYPES,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=kept,
        )
        os.replace(quantized, version_dir / INT8_FILE)
    facts = {
        "source": MODEL_FILE,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "format": quant_format,
        "per_channel": per_channel,
        "activations": "uint8",
        "weights": "int8",
        "op_types": OP_TYPES,
        "kept_fp32": kept,
        "calibration": {
            "catalog": str(catalog_dir),
            "images": len(trained),
            "chosen": "training items (not held out), evenly spaced in catalog order",
            "method": "minmax",
        },
        "check": _compare(version_dir, checked, [item.leaf for item in held_out], threads),
    }
    _write_json(version_dir / FACTS_FILE, facts)
    return facts


def _convs_reading_the_image(model_file: Path) -> list[str]:
    """The names of the convolutions whose input is the model's input image."""
    graph = onnx.load(str(model_file)).graph
    return [node.name for node in graph.node if node.op_type == "Conv" and INPUT in node.input]


def _spread(items: list[CatalogItem], count: int) -> list[CatalogItem]:
    """Up to `count` items evenly spaced through the list, so every part of the catalog shows."""
    step = max(len(items) // max(count, 1), 1)
    return items[::step][:count]


def _inputs(catalog: Catalog, items: list[CatalogItem], params: PreprocessParams) -> np.ndarray:
    """The items' images through the serving preprocessing: decode, then normalise."""
    decoded = [decode(catalog.image_bytes(item.id), Limits(), params) for item in items]
    return normalise(np.stack(decoded), params)


def _compare(
    version_dir: Path, inputs: np.ndarray, leaves: list[str], threads: int
) -> dict[str, Any]:
    """How int8 agrees with fp32 on held-out images: vectors, top leaf and P@10 among them."""
    fp32 = Encoder.load(version_dir, threads, "fp32").embed(inputs)
    int8 = Encoder.load(version_dir, threads, "int8").embed(inputs)
    _, labels = np.unique(np.array(leaves), return_inverse=True)
    queries = np.arange(len(inputs))
    return {
        "held_out_images": len(inputs),
        **evaluate.agreement(int8, fp32),
        f"p_at_{CHECK_K}_leaf_fp32": _precision(fp32[0], labels, queries),
        f"p_at_{CHECK_K}_leaf_int8": _precision(int8[0], labels, queries),
        "searched": "the held-out images among themselves",
    }


def _precision(embeddings: np.ndarray, labels: np.ndarray, queries: np.ndarray) -> float:
    return round(evaluate.precision_at_k(embeddings, labels, queries, CHECK_K), 4)


def _write_json(path: Path, facts: dict[str, Any]) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as file:
        file.write(json.dumps(facts, indent=2) + "\n")
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version-dir", type=Path, required=True, help="a model version folder")
    parser.add_argument("--catalog", type=Path, required=True, help="the catalog folder")
    parser.add_argument("--calibration", type=int, default=CALIBRATION, help="images")
    parser.add_argument("--format", choices=sorted(FORMATS), default="qdq")
    parser.add_argument("--per-tensor", action="store_true", help="one scale per weight tensor")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    args = parser.parse_args()
    facts = quantize(
        args.version_dir,
        args.catalog,
        args.calibration,
        args.format,
        not args.per_tensor,
        args.threads,
    )
    print(f"wrote {args.version_dir / INT8_FILE}; {describe(facts)}")


def describe(facts: dict[str, Any]) -> str:
    """One line on how an int8 model was made and how closely it follows fp32."""
    check = facts["check"]
    return (
        f"int8 ({facts['format']}, {'per-channel' if facts['per_channel'] else 'per-tensor'}, "
        f"calibrated on {facts['calibration']['images']} images); on "
        f"{check['held_out_images']} held-out images: cosine to fp32 {check['mean_cosine']:.4f}, "
        f"top leaf agrees {check['top_leaf_agreement']:.3f}, P@{CHECK_K} leaf fp32 "
        f"{check[f'p_at_{CHECK_K}_leaf_fp32']:.4f} int8 {check[f'p_at_{CHECK_K}_leaf_int8']:.4f}"
    )


if __name__ == "__main__":
    main()
