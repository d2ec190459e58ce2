"""Serving speed on this machine: torch eager, onnxruntime fp32 and int8, and the Embed RPC.

    python -m infra.bench [--catalog DIR] [--version-dir DIR] [--runs 5] [--threads 2]
        [--clients 16] [--call-images 1 8 64]

Prints images per second at batch 1, 8 and 64 for each engine (onnxruntime fp32 and int8 both
by one caller on --threads threads and as the encoder server runs them), then the end-to-end Embed
throughput of concurrent clients against a real encoder server (a subprocess on a free
loopback port, always stopped) at 1, 8 and 64 images per call, each beside in-process
onnxruntime at that batch size: one caller on --threads threads, and as the server runs the
model (its batch runners as concurrent callers, the threads shared among them).
Every figure is the median of --runs runs; each run measures the engines back to back, and a
ratio is the median of the runs' ratios. A benchmark, not a test: it asserts nothing.
"""

import argparse
import asyncio
import os
import statistics
from functools import partial
from pathlib import Path

# Before torch loads OpenMP: idle threads sleep at once. Torch's fastest policy here (measured
# at batch 8: PASSIVE 1024 images/s, ACTIVE 11), as onnxruntime's short spin is its own.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from catalog.generate import generate
from common import clients
from common import config as cluster_config
from common.errors import NotFound
from encoder_svc import export, quantize
from encoder_svc.model import ResNet
from encoder_svc.preprocess import Limits, decode, normalise
from encoder_svc.registry import ModelMeta
from encoder_svc.runtime import SPIN_US, VARIANTS, Encoder
from infra import workspace
from infra.encoder_harness import (
    Run,
    catalog_images,
    current_version,
    embed_rate,
    embed_requests,
    encoder_servers,
    get_model_rate,
    images_per_s,
)
from infra.stats import median_ratio
from protos.visualsearch.v1 import encoder_pb2_grpc

BATCHES = (1, 8, 64)
ENGINES = (
    "torch eager",
    "onnxruntime fp32",
    "onnxruntime int8",
    "fp32 as served",  # onnxruntime as the encoder server runs it: see _served
    "int8 as served",
)
RPC_S = 2.0  # per run of the clients
Engine = tuple[Run, int]  # a model call and how many threads call it at once


def main() -> None:
    args = _arguments()
    catalog_dir = args.catalog.resolve() if args.catalog else generate(workspace.GENERATED)
    version_dir = args.version_dir.resolve() if args.version_dir else current_version(catalog_dir)
    meta = ModelMeta.load(version_dir)
    if not (version_dir / VARIANTS["int8"]).is_file():
        print(
            f"{version_dir.name} has no int8 model yet: quantising it as "
            f"`python -m encoder_svc.quantize --version-dir {version_dir} --catalog {catalog_dir}`"
        )
        quantize.quantize(version_dir, catalog_dir, threads=args.threads)
    encoded, inputs = catalog_images(catalog_dir, meta, max(*BATCHES, *args.call_images))
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model, origin = _torch_model(version_dir, meta)
    fp32 = Encoder.load(version_dir, args.threads, "fp32")
    runners, threads = _served(args)
    served = {v: Encoder.load(version_dir, threads, v) for v in ("fp32", "int8")}
    engines: dict[str, Engine] = {
        ENGINES[0]: (_torch_runner(model), 1),
        ENGINES[1]: (fp32.embed, 1),
        ENGINES[2]: (Encoder.load(version_dir, args.threads, "int8").embed, 1),
        ENGINES[3]: (served["fp32"].embed, runners),
        ENGINES[4]: (served["int8"].embed, runners),
    }
    print(f"model {meta.version} from {version_dir}; images from {catalog_dir}")
    print(f"torch: {origin}")
    print(
        f"threads: {args.threads} intra-op and 1 inter-op for torch and for onnxruntime alike; "
        f"idle threads: torch OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, onnxruntime "
        f"spins {SPIN_US} us then sleeps; 'as served': {runners} callers at once on {threads} "
        "onnxruntime threads each, as the encoder server runs its batches"
    )
    figures = _engine_runs(engines, inputs, args.runs)
    _print_engines(figures)
    _print_rpc(_rpc_runs(version_dir, fp32, served["fp32"], encoded, inputs, args), args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, help="catalog folder (default: the generated one)")
    parser.add_argument(
        "--version-dir", type=Path, help="model version (default: the catalog's current one)"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs of which medians are shown")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of each engine")
    parser.add_argument("--clients", type=int, default=16, help="concurrent Embed callers")
    parser.add_argument(
        "--call-images",
        type=int,
        nargs="+",
        default=list(BATCHES),
        help="images per Embed call: the clients run once per size given",
    )
    return parser.parse_args()


def _torch_model(version_dir: Path, meta: ModelMeta) -> tuple[ResNet, str]:
    """The version's network in torch, as trained (model.pt), in eval mode, and what it is."""
    try:
        return export.load_torch(version_dir), f"{version_dir / export.WEIGHTS_FILE}"
    except NotFound as error:
        return export.build(meta).eval(), f"random weights ({error}): speed does not depend on them"


def _torch_runner(model: ResNet) -> Run:
    def run(batch: np.ndarray) -> object:
        with torch.inference_mode():
            return model(torch.from_numpy(batch))

    return run


def _engine_runs(
    engines: dict[str, Engine], inputs: np.ndarray, runs: int
) -> dict[tuple[str, int], list[float]]:
    """Images/s of each engine at each batch size, once per run."""
    figures: dict[tuple[str, int], list[float]] = {}
    for _ in range(runs):
        for size in BATCHES:
            for name, (run, callers) in engines.items():
                rate = images_per_s(run, inputs[:size], callers=callers)
                figures.setdefault((name, size), []).append(rate)
    return figures


def _print_engines(figures: dict[tuple[str, int], list[float]]) -> None:
    print("\nimages/s (median)  " + "".join(f"{f'batch {size}':>12s}" for size in BATCHES))
    for name in ENGINES:
        row = "".join(f"{statistics.median(figures[name, size]):12.0f}" for size in BATCHES)
        print(f"{name:18s}  {row}")
    fp32_torch = median_ratio(figures[ENGINES[1], 8], figures[ENGINES[0], 8])
    int8_fp32 = median_ratio(figures[ENGINES[2], 64], figures[ENGINES[1], 64])
    # fp32 at its best either way, so that int8 as served is not measured against a slow fp32
    fp32_best = list(map(max, figures[ENGINES[1], 64], figures[ENGINES[3], 64]))
    served = median_ratio(figures[ENGINES[4], 64], fp32_best)
    print(f"\nonnxruntime fp32 / torch eager at batch 8:  {fp32_torch:5.2f}x  (target >= 1.5)")
    print(f"onnxruntime int8 / fp32 at batch 64:        {int8_fp32:5.2f}x  (target >= 2)")
    print(f"  int8 as served / the faster fp32:         {served:5.2f}x")


def _rpc_runs(
    version_dir: Path,
    fp32: Encoder,
    alike: Encoder,
    encoded: list[bytes],
    inputs: np.ndarray,
    args: argparse.Namespace,
) -> dict[tuple[str, int], list[float]]:
    """Per run and call size: Embed images/s of the clients, then in-process fp32 at that batch
    size, on decoded inputs (the model alone, by one caller and as served by `alike`) and on
    the encoded images (decode, normalise, model)."""
    with encoder_servers(version_dir, _served(args)[1], max(args.call_images)) as (address,):
        return asyncio.run(_measure_rpc(address, fp32, alike, encoded, inputs, args))


async def _measure_rpc(
    address: str,
    fp32: Encoder,
    alike: Encoder,
    encoded: list[bytes],
    inputs: np.ndarray,
    args: argparse.Namespace,
) -> dict[tuple[str, int], list[float]]:
    figures: dict[tuple[str, int], list[float]] = {}
    runners = _served(args)[0]
    async with clients.channel(address) as channel:
        stub = encoder_pb2_grpc.EncoderStub(channel)
        for size in args.call_images:  # warm
            await embed_rate(stub, embed_requests(encoded, args.clients, size), 0.5)
        for _ in range(args.runs):
            figures.setdefault(("GetModel", 0), []).append(
                await get_model_rate(stub, args.clients, RPC_S / 2)
            )
            for size in args.call_images:
                calls = embed_requests(encoded, args.clients, size)
                measured = {
                    "model": images_per_s(fp32.embed, inputs[:size]),
                    "decode+model": images_per_s(partial(_embed_encoded, fp32), encoded[:size]),
                    "model alike": images_per_s(alike.embed, inputs[:size], callers=runners),
                    "rpc": await embed_rate(stub, calls, RPC_S),
                }
                for key, value in measured.items():
                    figures.setdefault((key, size), []).append(value)
    return figures


def _embed_encoded(encoder: Encoder, encoded: list[bytes]) -> object:
    """What a caller does in-process instead of calling Embed: decode, normalise, run."""
    decoded = np.stack([decode(data, Limits(), encoder.params) for data in encoded])
    return encoder.embed(normalise(decoded, encoder.params))


def _served(args: argparse.Namespace) -> tuple[int, int]:
    """How the encoder server runs the model: its batch runners, and the onnxruntime threads
    of each, so that it uses --threads in all."""
    runners = cluster_config.load().encoder.batch_runners
    return runners, max(1, args.threads // runners)


def _print_rpc(figures: dict[tuple[str, int], list[float]], args: argparse.Namespace) -> None:
    settings = cluster_config.load().encoder
    print(
        f"\nEmbed RPC: {args.clients} concurrent clients, each calling again when answered; "
        f"the server batches up to {settings.batch_images} images or {settings.batch_wait_ms} "
        f"ms and runs {settings.batch_runners} batches at once on {_served(args)[1]} "
        "onnxruntime threads each. In-process figures are at the call's batch size, measured "
        f"between the clients' runs: fp32 and decode + fp32 by one caller on {args.threads} "
        f"threads; 'as served' by {settings.batch_runners} callers on {_served(args)[1]} "
        "threads each, as the server runs the model."
    )
    print(
        f"{'images per call':>15s} {'RPC images/s':>13s} {'in-process fp32':>16s} "
        f"{'RPC / it':>9s} {'decode + fp32':>14s} {'RPC / it':>9s} {'as served':>10s} "
        f"{'RPC / it':>9s}"
    )
    for size in args.call_images:
        rpc = figures["rpc", size]
        row = f"{size:15d} {statistics.median(rpc):13.0f}"
        for key, width in (("model", 16), ("decode+model", 14), ("model alike", 10)):
            row += (
                f" {statistics.median(figures[key, size]):{width}.0f}"
                f" {median_ratio(rpc, figures[key, size]):8.2f}x"
            )
        print(row)
    print("target: RPC >= 0.7x in-process onnxruntime fp32 at the same batch size")
    print(
        f"gRPC alone: GetModel (no model run) answers "
        f"{statistics.median(figures['GetModel', 0]):.0f} calls/s to the same clients"
    )


if __name__ == "__main__":
    main()
