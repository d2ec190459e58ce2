"""The encoder server as its own process on loopback, with a tiny exported model."""

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from common.vectors import from_bytes
from encoder_svc import registry
from encoder_svc.export import export
from encoder_svc.model import Arch, ResNet
from encoder_svc.preprocess import PreprocessParams
from protos.visualsearch.v1 import encoder_pb2, encoder_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
LEAVES = ["Apparel/Topwear/Shirts", "Apparel/Topwear/Tshirts", "Footwear/Shoes/Boots"]
ARCH = Arch(widths=(8, 16), blocks=(1, 1), stem_width=8, dim=16)
MAX_BATCH = 4
TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(models_dir: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VS_HOST": "127.0.0.1",
        "VS_ENCODER_PORT": str(port),
        "VS_ENCODER_MODELS_DIR": str(models_dir),
        "VS_ENCODER_MAX_BATCH": str(MAX_BATCH),
        "VS_ENCODER_THREADS": "1",
        "VS_GRACE_S": "1",
    }


def _wait_until_serving(channel: grpc.Channel, server: subprocess.Popen[bytes]) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"encoder server exited with {server.returncode}")
        try:
            answer = health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            time.sleep(0.2)
    raise RuntimeError("encoder server did not become ready within 60 s")


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
        ARCH.dim,
        PreprocessParams(),
        {"note": "untrained, for the server test"},
    )
    return root / "models"


@pytest.fixture(scope="module")
def stub(models_dir: Path) -> Iterator[encoder_pb2_grpc.EncoderStub]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "encoder_svc.server"], cwd=ROOT, env=_environment(models_dir, port)
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        _wait_until_serving(channel, server)
        yield encoder_pb2_grpc.EncoderStub(channel)
    finally:
        channel.close()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _image(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "red" if mode == "RGB" else 128).save(buffer, fmt)
    return buffer.getvalue()


def test_get_model_says_what_is_loaded(
    stub: encoder_pb2_grpc.EncoderStub, models_dir: Path
) -> None:
    info = stub.GetModel(encoder_pb2.GetModelRequest(), timeout=TIMEOUT_S)
    assert info.model_version == registry.current(models_dir).name
    assert info.dim == ARCH.dim
    assert list(info.leaves) == LEAVES
    assert info.device == "cpu"


def test_embed_fails_bad_images_alone(stub: encoder_pb2_grpc.EncoderStub) -> None:
    images = [_image("JPEG", (60, 80)), b"plain text", _image("PNG", (300, 200), "L"), b""]
    answer = stub.Embed(encoder_pb2.EmbedRequest(images=images), timeout=TIMEOUT_S)
    assert answer.dim == ARCH.dim and answer.model_version
    kinds = [result.WhichOneof("outcome") for result in answer.results]
    assert kinds == ["embedding", "error", "embedding", "error"]
    for index in (1, 3):
        error = answer.results[index].error
        assert error.code == "INVALID_ARGUMENT" and error.index == index and error.message
    for index in (0, 2):
        embedding = answer.results[index].embedding
        vector = from_bytes(embedding.vector, ARCH.dim)
        assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
        probs = [leaf.prob for leaf in embedding.leaves]
        assert len(probs) == len(LEAVES) and probs == sorted(probs, reverse=True)


def test_embed_returns_the_requested_number_of_leaves(
    stub: encoder_pb2_grpc.EncoderStub,
) -> None:
    request = encoder_pb2.EmbedRequest(images=[_image("PNG", (60, 80))], top_leaves=2)
    answer = stub.Embed(request, timeout=TIMEOUT_S)
    assert len(answer.results[0].embedding.leaves) == 2


@pytest.mark.parametrize(("count", "words"), [(MAX_BATCH + 1, ["5", "4"]), (0, ["no images"])])
def test_embed_refuses_a_batch_of_the_wrong_size(
    stub: encoder_pb2_grpc.EncoderStub, count: int, words: list[str]
) -> None:
    request = encoder_pb2.EmbedRequest(images=[_image("PNG", (60, 80))] * count)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Embed(request, timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert all(word in caught.value.details() for word in words)


def test_server_without_a_model_refuses_to_start(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "encoder_svc.server"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_environment(tmp_path / "empty", _free_port()),
        timeout=60,
        check=False,
    )
    assert finished.returncode != 0
    assert "encoder_svc.train" in finished.stderr


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
