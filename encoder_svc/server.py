"""Runs one encoder replica: `python -m encoder_svc.server [--replica N]` (config from
infra/cluster.toml and VS_*)."""

import argparse
import asyncio
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import grpc

from common import config as cluster_config
from common.auth import method_roles
from common.config import EncoderConfig
from common.errors import VisualSearchError
from common.serve import run, serve
from encoder_svc import registry
from encoder_svc.embedder import Embedder
from encoder_svc.runtime import Encoder
from encoder_svc.service import EncoderService
from protos.visualsearch.v1 import encoder_pb2, encoder_pb2_grpc

log = logging.getLogger(__name__)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--replica", type=int, default=0, help="which of config.encoder.ports to serve"
    )
    return parser.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> None:
    """Serves replica N (the Nth of config.encoder.ports) until SIGTERM."""
    number = _parse(argv).replica
    config = cluster_config.load()
    settings = config.encoder
    if not 0 <= number < len(settings.ports):
        raise SystemExit(f"--replica {number}: config.encoder.ports has {len(settings.ports)}")
    try:
        version_dir = registry.current(Path(settings.models_dir))
        encoder = await asyncio.to_thread(_load, version_dir, settings)
    except VisualSearchError as error:
        raise SystemExit(f"encoder cannot start: {error}") from None
    embedder = Embedder(encoder, settings)
    follower = asyncio.create_task(_follow_current(embedder, settings))

    def register(server: grpc.aio.Server) -> Iterable[str]:
        encoder_pb2_grpc.add_EncoderServicer_to_server(EncoderService(embedder), server)
        return [encoder_pb2.DESCRIPTOR.services_by_name["Encoder"].full_name]

    async def stop() -> None:
        follower.cancel()
        await asyncio.to_thread(embedder.close)

    service = encoder_pb2.DESCRIPTOR.services_by_name["Encoder"].full_name
    await serve(
        f"encoder-{number}",
        config.encoder_addresses[number],
        register,
        config,
        stop,
        roles=method_roles(service, {"reader": ["Embed", "GetModel"]}),
    )


def _load(version_dir: Path, settings: EncoderConfig) -> Encoder:
    replicas = len(settings.ports)
    threads = settings.threads or threads_per_runner(
        os.cpu_count() or 1, settings.batch_runners, replicas
    )
    encoder = Encoder.load(version_dir, threads, settings.variant, settings.spin_us)
    log.info(
        "encoder model %s %s (%d leaves, dim %d) on %s, %d runs at once of %d threads",
        encoder.version,
        settings.variant,
        len(encoder.leaves),
        encoder.dim,
        encoder.device,
        settings.batch_runners,
        threads,
    )
    return encoder


def threads_per_runner(cores: int, runners: int, replicas: int) -> int:
    """The onnxruntime threads of each batch runner when `threads` is 0: the machine's cores
    shared among every runner of every replica (at least one each), since the replicas of
    one cluster run side by side on it and more threads than cores only contend."""
    return max(1, cores // (runners * replicas))


async def _follow_current(embedder: Embedder, settings: EncoderConfig) -> None:
    """Loads the version CURRENT names whenever it changes; the switch comes between batches."""
    if settings.reload_s <= 0:
        return
    models_dir = Path(settings.models_dir)
    reported = ""  # the last failure logged, so that a retry every poll logs it once
    while True:
        await asyncio.sleep(settings.reload_s)
        try:
            version_dir = await asyncio.to_thread(registry.current, models_dir)
            if version_dir.name == embedder.encoder.version:
                continue
            encoder = await asyncio.to_thread(_load, version_dir, settings)
        except Exception as error:  # a bad new version must not stop the old one serving
            if str(error) != reported:
                log.error("encoder keeps model %s: %r", embedder.encoder.version, error)
                reported = str(error)
            continue
        reported = ""
        replaced = embedder.swap(encoder)
        log.info("encoder switched from model %s to %s", replaced.version, encoder.version)


if __name__ == "__main__":
    run(main())
