"""Embeds one request's images: each decoded on its own thread, the good ones in one model call."""

import asyncio
import dataclasses
from collections.abc import Sequence

import numpy as np

from common.errors import InvalidArgument
from encoder_svc.preprocess import Limits, PreprocessParams, decode, normalise
from encoder_svc.runtime import Encoder


@dataclasses.dataclass(frozen=True)
class Embedded:
    """One image's embedding and its most probable leaves, most probable first."""

    vector: np.ndarray
    leaves: list[tuple[str, float]]


@dataclasses.dataclass(frozen=True)
class Refused:
    """Why one image of a batch was not embedded; the others are unaffected."""

    index: int
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class Answer:
    """A request's results, one per image in order, all from one model version."""

    model_version: str
    dim: int
    results: list[Embedded | Refused]


class Embedder:
    """Validates, decodes and embeds the images of a request with the loaded encoder."""

    def __init__(self, encoder: Encoder, limits: Limits, max_batch: int, top_leaves: int) -> None:
        self.encoder = encoder
        self._limits = limits
        self._max_batch = max_batch
        self._top_leaves = top_leaves

    async def embed(self, images: Sequence[bytes], top_leaves: int = 0) -> Answer:
        """Embeds a batch of encoded images; a bad image is refused alone.

        Args:
            images: encoded images (JPEG, PNG, ...).
            top_leaves: leaf probabilities per image; 0 means the configured default.

        Returns:
            One result per image, in order.

        Raises:
            InvalidArgument: no images, more than max_batch, or a negative top_leaves.
        """
        self._check(len(images), top_leaves)
        encoder = self.encoder  # one version for the whole answer
        decoded = await asyncio.gather(
            *(asyncio.to_thread(_decode, data, self._limits, encoder.params) for data in images)
        )
        results: dict[int, Embedded | Refused] = {
            i: Refused(i, image.code, str(image))
            for i, image in enumerate(decoded)
            if isinstance(image, InvalidArgument)
        }
        accepted = [(i, image) for i, image in enumerate(decoded) if isinstance(image, np.ndarray)]
        if accepted:
            stacked = np.stack([image for _, image in accepted])
            embeddings, probs = await self._run(encoder, stacked)
            wanted = top_leaves or self._top_leaves
            for row, (i, _) in enumerate(accepted):
                results[i] = Embedded(embeddings[row], encoder.top_leaves(probs[row], wanted))
        return Answer(encoder.version, encoder.dim, [results[i] for i in range(len(images))])

    async def _run(self, encoder: Encoder, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One model call off the event loop (where cross-request batching can slot in)."""
        return await asyncio.to_thread(_embed, encoder, images)

    def _check(self, count: int, top_leaves: int) -> None:
        if count == 0:
            raise InvalidArgument("no images to embed")
        if count > self._max_batch:
            raise InvalidArgument(
                f"{count} images in one call, more than the limit of {self._max_batch}"
            )
        if top_leaves < 0:
            raise InvalidArgument(f"top_leaves is {top_leaves}, must be 0 or more")


def _decode(data: bytes, limits: Limits, params: PreprocessParams) -> np.ndarray | InvalidArgument:
    """decode(), with a refusal returned rather than raised, so one bad image fails alone."""
    try:
        return decode(data, limits, params)
    except InvalidArgument as error:
        return error


def _embed(encoder: Encoder, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return encoder.embed(normalise(images, encoder.params))
