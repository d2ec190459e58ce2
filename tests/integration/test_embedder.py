"""The embedder with real exported models: shared batches, answers kept apart, model switches."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from common.config import EncoderConfig
from common.errors import InvalidArgument, ItemFailure
from encoder_svc import registry
from encoder_svc.embedder import Answer, Embedded, Embedder
from encoder_svc.export import export
from encoder_svc.model import Arch, ResNet
from encoder_svc.preprocess import Limits, PreprocessParams, decode, normalise
from encoder_svc.runtime import Encoder
from tests.images import noise

PARAMS = PreprocessParams()
LEAVES = ["A/B/c", "A/B/d", "A/E/f", "G/H/i"]
SMALL = Arch(widths=(8, 16), blocks=(1, 1), stem_width=8, dim=16)
DIM = SMALL.dim + len(LEAVES)  # the served embedding: shape part and leaf probabilities
MAX_BATCH = 10
JPEG_END = b"\xff\xd9"


def _version(root: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    export(ResNet(len(LEAVES), SMALL), root / f"model-{seed}.onnx", PARAMS)
    return registry.register(
        root / f"models-{seed}", root / f"model-{seed}.onnx", LEAVES, DIM, PARAMS, {}
    )


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Encoder, Encoder]:
    root = tmp_path_factory.mktemp("embedder")
    return Encoder.load(_version(root, 0), threads=1), Encoder.load(_version(root, 1), threads=1)


@pytest.fixture(
    params=[(10**9, 2), (0, 1)],
    ids=["decoded on the event loop, 2 runners", "decoded on threads, 1 runner"],
)
def embedder(
    encoders: tuple[Encoder, Encoder], request: pytest.FixtureRequest
) -> Iterator[Embedder]:
    inline_bytes, runners = request.param
    settings = EncoderConfig(
        max_batch=MAX_BATCH,
        top_leaves=2,
        batch_images=4,
        batch_wait_ms=2.0,
        decode_inline_bytes=inline_bytes,
        batch_runners=runners,
    )
    embedder = Embedder(encoders[0], settings)
    yield embedder
    embedder.close()


def _alone(encoder: Encoder, image: bytes) -> np.ndarray:
    """The image's embedding from a model run of its own."""
    decoded = decode(image, Limits(), encoder.params)[None]
    return encoder.embed(normalise(decoded, encoder.params))[0][0]


def _check(answer: Answer, images: list[bytes], encoders: tuple[Encoder, Encoder]) -> None:
    """Every embedding is the one its image gets alone from the version the answer names."""
    (encoder,) = [e for e in encoders if e.version == answer.model_version]
    for image, result in zip(images, answer.results, strict=True):
        if not image.endswith(JPEG_END):  # b"broken" or a truncated JPEG
            assert isinstance(result, ItemFailure) and result.code == "INVALID_ARGUMENT"
        else:
            assert isinstance(result, Embedded) and len(result.leaves) == 2
            assert np.allclose(result.vector, _alone(encoder, image), atol=1e-5)


def test_concurrent_calls_each_get_their_own_results_in_order(
    embedder: Embedder, encoders: tuple[Encoder, Encoder]
) -> None:
    calls = [[noise(10 * n + i, "JPEG") for i in range(1 + n % MAX_BATCH)] for n in range(16)]
    calls[5][2] = b"broken"  # not an image: the call is decoded on threads
    calls[7][1] = calls[7][1][:200]  # a truncated JPEG: maybe decoded on the event loop

    async def run() -> list[Answer]:
        return await asyncio.gather(*(embedder.embed(images) for images in calls))

    for images, answer in zip(calls, asyncio.run(run()), strict=True):
        assert answer.model_version == encoders[0].version
        _check(answer, images, encoders)


def test_a_swap_takes_effect_between_calls_and_never_inside_one(
    embedder: Embedder, encoders: tuple[Encoder, Encoder]
) -> None:
    calls = [[noise(100 + 10 * n + i, "JPEG") for i in range(MAX_BATCH)] for n in range(12)]

    async def run() -> list[Answer]:
        before = [asyncio.ensure_future(embedder.embed(images)) for images in calls[:6]]
        await asyncio.sleep(0)  # the first calls have taken their version
        assert embedder.swap(encoders[1]) is encoders[0]
        after = [embedder.embed(images) for images in calls[6:]]
        return await asyncio.gather(*before, *after)

    answers = asyncio.run(run())
    versions = [answer.model_version for answer in answers]
    assert versions == [encoders[0].version] * 6 + [encoders[1].version] * 6
    for images, answer in zip(calls, answers, strict=True):
        _check(answer, images, encoders)


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_a_call_of_the_wrong_size_is_refused_whole(embedder: Embedder, count: int) -> None:
    with pytest.raises(InvalidArgument, match=f"{count}|no images"):
        asyncio.run(embedder.embed([noise(0, "JPEG")] * count))
