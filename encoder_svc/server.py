"""Runs the encoder: `python -m encoder_svc.server` (config from infra/cluster.toml and VS_*)."""

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

import grpc

from common import config as cluster_config
from common.errors import FailedPrecondition
from common.serve import run, serve
from encoder_svc import registry
from encoder_svc.embedder import Embedder
from encoder_svc.preprocess import Limits
from encoder_svc.runtime import Encoder
from encoder_svc.service import EncoderService
from protos.visualsearch.v1 import encoder_pb2, encoder_pb2_grpc

log = logging.getLogger(__name__)


async def main() -> None:
    config = cluster_config.load()
    settings = config.encoder
    try:
        version_dir = registry.current(Path(settings.models_dir))
    except FailedPrecondition as error:
        raise SystemExit(f"encoder cannot start: {error}") from None
    encoder = await asyncio.to_thread(Encoder.load, version_dir, settings.threads)
    log.info(
        "encoder model %s (%d leaves, dim %d) on %s",
        encoder.version,
        len(encoder.leaves),
        encoder.dim,
        encoder.device,
    )
    limits = Limits(settings.max_image_bytes, settings.max_pixels)
    embedder = Embedder(encoder, limits, settings.max_batch, settings.top_leaves)

    def register(server: grpc.aio.Server) -> Iterable[str]:
        encoder_pb2_grpc.add_EncoderServicer_to_server(EncoderService(embedder), server)
        return [encoder_pb2.DESCRIPTOR.services_by_name["Encoder"].full_name]

    await serve("encoder", config.address(settings.port), register, config.grace_s)


if __name__ == "__main__":
    run(main())
