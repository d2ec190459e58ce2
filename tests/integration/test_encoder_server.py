"""The encoder server as its own process on loopback, with a tiny exported model."""

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from PIL import Image

from common.vectors import from_bytes
from encoder_svc import registry
from encoder_svc.export import export
from encoder_svc.model import Arch, ResNet
from encoder_svc.preprocess import PreprocessParams
from infra import process
from protos.visualsearch.v1 import encoder_pb2, encoder_pb2_grpc
from tests.images import encode, noise, png_header_only

ROOT = Path(__file__).resolve().parents[2]
LEAVES = ["Apparel/Topwear/Shirts", "Apparel/Topwear/Tshirts", "Footwear/Shoes/Boots"]
ARCH = Arch(widths=(8, 16), blocks=(1, 1), stem_width=8, dim=16)
DIM = ARCH.dim + len(LEAVES)  # the served embedding: shape part and leaf probabilities
MAX_BATCH = 6
TIMEOUT_S = 10.0


def _environment(models_dir: Path, port: int) -> dict[str, str]:
    return {
        "VS_HOST": "127.0.0.1",
        "VS_ENCODER_PORTS": str(port),
        "VS_ENCODER_MODELS_DIR": str(models_dir),
        "VS_ENCODER_MAX_BATCH": str(MAX_BATCH),
        "VS_ENCODER_THREADS": "1",
        "VS_GRACE_S": "1",
    }


def _child_env(models_dir: Path) -> dict[str, str]:
    """The whole environment of a server run directly, without `infra.process`."""
    (port,) = process.free_ports()
    return {**os.environ, "PYTHONPATH": str(ROOT), **_environment(models_dir, port)}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("encoder")
    torch.manual_seed(0)
    model = ResNet(len(LEAVES), ARCH)
    export(model, root / "model.onnx", PreprocessParams())
    registry.register(
        root / "models",
        root / "model.onnx",
        LEAVES,
        DIM,
        PreprocessParams(),
        {"note": "untrained, for the server test"},
    )
    return root / "models"


@contextlib.contextmanager
def _serving(
    models_dir: Path, log: Path, **settings: str
) -> Iterator[encoder_pb2_grpc.EncoderStub]:
    """An encoder server process on a free port (VS_* `settings` on top); always stopped."""
    (port,) = process.free_ports()
    address = f"127.0.0.1:{port}"
    env = {**_environment(models_dir, port), **settings}
    server = process.start("encoder_svc.server", [], address, log, env)
    channel = grpc.insecure_channel(address)
    try:
        yield encoder_pb2_grpc.EncoderStub(channel)
    finally:
        channel.close()
        process.stop(server, grace_s=15)


@pytest.fixture(scope="module")
def stub(
    models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[encoder_pb2_grpc.EncoderStub]:
    with _serving(models_dir, tmp_path_factory.mktemp("log") / "encoder.log") as stub:
        yield stub


def _image(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    return encode(Image.new(mode, size, "red" if mode == "RGB" else 128), fmt)


def test_get_model_says_what_is_loaded(
    stub: encoder_pb2_grpc.EncoderStub, models_dir: Path
) -> None:
    info = stub.GetModel(encoder_pb2.GetModelRequest(), timeout=TIMEOUT_S)
    assert info.model_version == registry.current(models_dir).name
    assert info.dim == DIM
    assert list(info.leaves) == LEAVES
    assert info.device == "cpu"


def test_embed_fails_bad_images_alone(stub: encoder_pb2_grpc.EncoderStub) -> None:
    images = [
        _image("JPEG", (60, 80)),
        b"plain text",
        _image("PNG", (300, 200), "L"),
        b"",
        png_header_only(6_000, 5_000),  # over the server's default limit of 25M pixels
        png_header_only(30_000, 30_000),  # a decompression bomb
    ]
    answer = stub.Embed(encoder_pb2.EmbedRequest(images=images), timeout=TIMEOUT_S)
    assert answer.dim == DIM and answer.model_version
    kinds = [result.WhichOneof("outcome") for result in answer.results]
    assert kinds == ["embedding", "error", "embedding", "error", "error", "error"]
    words = {1: "not an image", 3: "empty", 4: "6000x5000", 5: "bomb"}
    for index, word in words.items():
        error = answer.results[index].error
        assert error.code == "INVALID_ARGUMENT" and error.index == index
        assert word in error.message
    for index in (0, 2):
        embedding = answer.results[index].embedding
        vector = from_bytes(embedding.vector, DIM)
        assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
        probs = [leaf.prob for leaf in embedding.leaves]
        assert len(probs) == len(LEAVES) and probs == sorted(probs, reverse=True)


def test_embed_returns_the_requested_number_of_leaves(
    stub: encoder_pb2_grpc.EncoderStub,
) -> None:
    request = encoder_pb2.EmbedRequest(images=[_image("PNG", (60, 80))], top_leaves=2)
    answer = stub.Embed(request, timeout=TIMEOUT_S)
    assert len(answer.results[0].embedding.leaves) == 2


@pytest.mark.parametrize(
    ("count", "words"), [(MAX_BATCH + 1, [str(MAX_BATCH + 1), str(MAX_BATCH)]), (0, ["no images"])]
)
def test_embed_refuses_a_batch_of_the_wrong_size(
    stub: encoder_pb2_grpc.EncoderStub, count: int, words: list[str]
) -> None:
    request = encoder_pb2.EmbedRequest(images=[_image("PNG", (60, 80))] * count)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Embed(request, timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert all(word in caught.value.details() for word in words)


def _vectors(answer: encoder_pb2.EmbedResponse) -> list[np.ndarray]:
    return [from_bytes(result.embedding.vector, DIM) for result in answer.results]


def test_concurrent_calls_each_get_their_own_results(stub: encoder_pb2_grpc.EncoderStub) -> None:
    calls = [[noise(10 * n + i) for i in range(1 + n % MAX_BATCH)] for n in range(16)]

    def embed(images: list[bytes]) -> encoder_pb2.EmbedResponse:
        return stub.Embed(encoder_pb2.EmbedRequest(images=images), timeout=TIMEOUT_S)

    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(embed, calls))
    for images, answer in zip(calls, answers, strict=True):
        assert len(answer.results) == len(images)
        alone = [_vectors(embed([image]))[0] for image in images]
        assert np.allclose(_vectors(answer), alone, atol=1e-5)


def _copy_version(models_dir: Path, version: str, name: str) -> Path:
    """A new version with the same model: the directory copied, its meta renamed."""
    copy = models_dir / name
    shutil.copytree(models_dir / version, copy)
    meta = registry.ModelMeta.load(copy)
    dataclasses.replace(meta, version=name).save(copy)
    return copy


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within 60 s: {what}")
        time.sleep(0.1)


def test_a_new_current_version_is_served_without_a_restart(
    models_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    first = registry.current(models).name
    request = encoder_pb2.EmbedRequest(images=[noise(1)])
    log_file = tmp_path / "encoder.log"

    def log() -> str:
        return log_file.read_text(errors="replace")

    def serving() -> str:
        return stub.GetModel(encoder_pb2.GetModelRequest(), timeout=TIMEOUT_S).model_version

    with _serving(models, log_file, VS_ENCODER_RELOAD_S="0.2") as stub:
        before = stub.Embed(request, timeout=TIMEOUT_S)
        (_copy_version(models, first, "broken") / registry.MODEL_FILE).write_bytes(b"not onnx")
        registry.set_current(models, "broken")
        _wait_for(lambda: "keeps model" in log(), "the server tried the broken version")
        assert serving() == first
        assert stub.Embed(request, timeout=TIMEOUT_S).model_version == first

        _copy_version(models, first, "second")
        registry.set_current(models, "second")
        _wait_for(lambda: serving() == "second", "GetModel reports the new version")
        after = stub.Embed(request, timeout=TIMEOUT_S)
    assert before.model_version == first and after.model_version == "second"
    assert np.allclose(_vectors(after), _vectors(before), atol=1e-6)  # the same weights
    assert f"switched from model {first} to second" in log()


def _refusal(env: dict[str, str]) -> str:
    """Runs the server expecting it to refuse to start; returns what it said."""
    finished = subprocess.run(
        [sys.executable, "-m", "encoder_svc.server"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert finished.returncode != 0
    return finished.stderr


def test_server_serving_int8_without_its_file_refuses_to_start(models_dir: Path) -> None:
    env = {**_child_env(models_dir), "VS_ENCODER_VARIANT": "int8"}
    assert "encoder_svc.quantize" in _refusal(env)


def test_server_without_a_model_refuses_to_start(tmp_path: Path) -> None:
    assert "encoder_svc.train" in _refusal(_child_env(tmp_path / "empty"))


def test_serving_does_not_import_torch() -> None:
    check = "import sys, encoder_svc.server; sys.exit('torch' in sys.modules)"
    finished = subprocess.run(
        [sys.executable, "-c", check],
        cwd=ROOT,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert finished.returncode == 0
