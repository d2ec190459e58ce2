"""Embeds requests' images: decoded on a thread pool, run through the model in shared batches."""

import asyncio
import dataclasses
import math
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import simplejpeg

from common.config import EncoderConfig
from common.errors import InvalidArgument, ItemFailure
from encoder_svc.batcher import Batcher, Outputs
from encoder_svc.preprocess import Limits, decode, normalise
from encoder_svc.runtime import Encoder


@dataclasses.dataclass(frozen=True)
class Embedded:
    """One image's embedding and its most probable leaves, most probable first."""

    vector: np.ndarray
    leaves: list[tuple[str, float]]


@dataclasses.dataclass(frozen=True)
class Answer:
    """A request's results, one per image in order, all from one model version."""

    model_version: str
    dim: int
    results: list[Embedded | ItemFailure]


@dataclasses.dataclass(frozen=True)
class _Chunk:
    """Consecutive images of a request: those refused, and the outputs to come for the rest."""

    refused: list[ItemFailure]
    accepted: list[int]  # indexes in the request, in the order of the outputs' rows
    outputs: Future[Outputs] | None


class Embedder:
    """Validates, decodes and embeds requests' images with the current model version.

    A request's images are decoded and normalised straight into the rows they reserve in the
    shared batches of the model run (up to `batch_images` images or `batch_wait_ms`, run
    `batch_runners` at a time), so decoding the next requests overlaps the current batches'
    inference. Small requests of JPEGs decode on the event loop, where handing them to a thread
    would cost more than decoding them; others are cut into up to `decode_threads` chunks
    decoded on a thread pool.
    """

    def __init__(self, encoder: Encoder, settings: EncoderConfig) -> None:
        self._encoder = encoder
        self._settings = settings
        self._limits = Limits(settings.max_image_bytes, settings.max_pixels)
        self._chunks = max(settings.decode_threads, 1)
        self._batcher = Batcher(
            settings.batch_images, settings.batch_wait_ms / 1000, settings.batch_runners
        )
        self._decoder = ThreadPoolExecutor(self._chunks, thread_name_prefix="decode")

    @property
    def encoder(self) -> Encoder:
        """The model version that embeds the requests arriving now."""
        return self._encoder

    def swap(self, encoder: Encoder) -> Encoder:
        """Embeds the requests arriving from now on with `encoder`; those under way keep theirs.

        Returns:
            The encoder it replaces.
        """
        replaced, self._encoder = self._encoder, encoder
        return replaced

    async def embed(self, images: Sequence[bytes], top_leaves: int = 0) -> Answer:
        """Embeds a batch of encoded images; a bad image is refused alone.

        Args:
            images: encoded images (JPEG, PNG, ...).
            top_leaves: leaf probabilities per image; 0 means the configured default.

        Returns:
            One result per image, in order, all from the version current when the call came.

        Raises:
            InvalidArgument: no images, more than max_batch, or a negative top_leaves.
        """
        self._check(len(images), top_leaves)
        encoder = self._encoder  # one version for the whole answer
        if self._decode_inline(images):
            chunks = [
                self._prepare(encoder, images, start, stop)
                for start, stop in self._spans(len(images), 1)
            ]
        else:
            loop = asyncio.get_running_loop()
            chunks = await asyncio.gather(
                *(
                    loop.run_in_executor(self._decoder, self._prepare, encoder, images, start, stop)
                    for start, stop in self._spans(len(images), self._chunks)
                )
            )
        outputs = await asyncio.gather(
            *(asyncio.wrap_future(chunk.outputs) for chunk in chunks if chunk.outputs is not None)
        )
        results = _assemble(encoder, chunks, outputs, top_leaves or self._settings.top_leaves)
        return Answer(encoder.version, encoder.dim, results)

    def close(self) -> None:
        """Finishes the requests under way, then stops the decoding and batching threads."""
        self._decoder.shutdown(wait=True)
        self._batcher.close()

    def _decode_inline(self, images: Sequence[bytes]) -> bool:
        """Whether decoding the images costs less than handing them to a thread and back: JPEGs
        (whose decoding time follows their size) of at most `decode_inline_bytes` in all."""
        return sum(map(len, images)) <= self._settings.decode_inline_bytes and all(
            map(simplejpeg.is_jpeg, images)
        )

    def _spans(self, count: int, pieces: int) -> list[tuple[int, int]]:
        """[start, stop) of each chunk: `pieces` of them, or more where one would not fit a
        batch."""
        size = min(math.ceil(count / pieces), self._batcher.max_images)
        return [(start, min(start + size, count)) for start in range(0, count, size)]

    def _prepare(self, encoder: Encoder, images: Sequence[bytes], start: int, stop: int) -> _Chunk:
        """Decodes images[start:stop] and queues the good ones."""
        refused: list[ItemFailure] = []
        accepted: list[int] = []
        decoded: list[np.ndarray] = []
        for index in range(start, stop):
            try:
                decoded.append(decode(images[index], self._limits, encoder.params))
                accepted.append(index)
            except InvalidArgument as error:
                refused.append(ItemFailure.of(index, "", error))
        if not decoded:
            return _Chunk(refused, accepted, None)
        params = encoder.params
        slot = self._batcher.reserve(encoder, len(decoded), (3, params.height, params.width))
        try:
            normalise(np.stack(decoded), params, out=slot.rows)  # straight into the batch
        finally:
            slot.written()
        return _Chunk(refused, accepted, slot.future)

    def _check(self, count: int, top_leaves: int) -> None:
        if count == 0:
            raise InvalidArgument("no images to embed")
        if count > self._settings.max_batch:
            raise InvalidArgument(
                f"{count} images in one call, more than the limit of {self._settings.max_batch}"
            )
        if top_leaves < 0:
            raise InvalidArgument(f"top_leaves is {top_leaves}, must be 0 or more")


def _assemble(
    encoder: Encoder, chunks: list[_Chunk], outputs: list[Outputs], top_leaves: int
) -> list[Embedded | ItemFailure]:
    """The request's results in order, from its chunks' refusals and model outputs."""
    results: dict[int, Embedded | ItemFailure] = {}
    ran = iter(outputs)
    for chunk in chunks:
        results.update((refusal.index, refusal) for refusal in chunk.refused)
        if chunk.outputs is None:
            continue
        embeddings, probs = next(ran)
        leaves = encoder.top_leaves(probs, top_leaves)
        for row, index in enumerate(chunk.accepted):
            results[index] = Embedded(embeddings[row], leaves[row])
    return [results[index] for index in range(len(results))]
