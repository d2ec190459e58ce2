"""Cluster configuration: one TOML file, then environment overrides, into frozen dataclasses.

An override is named after its field: `VS_<SECTION>_<FIELD>` for a section's field
(`VS_GATEWAY_PORT=6000`, `VS_INDEX_PORTS=7001,7002`) and `VS_<FIELD>` for a top-level one
(`VS_PARTITION_LEVEL=1`). `VS_CONFIG` names the file. Relative paths are relative to the
working directory of the process (the project root when `infra` starts the cluster).
"""

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.errors import InvalidArgument

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "infra" / "cluster.toml"


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    ports: tuple[int, ...] = (50052,)  # one encoder process (replica) per port
    models_dir: str = "var/models"  # version directories plus the CURRENT pointer
    max_batch: int = 64  # images per Embed call
    max_image_bytes: int = 8_000_000  # encoded size of one image
    max_pixels: int = 25_000_000  # decoded width x height of one image
    top_leaves: int = 5
    # onnxruntime intra-op threads of each batch runner; 0: cores / (runners x replicas), so
    # that the replicas on one machine share its cores instead of each taking them all
    threads: int = 0
    variant: str = "fp32"  # the file served: fp32 (model.onnx) or int8 (model.int8.onnx)
    batch_images: int = 64  # images of concurrent Embed calls run through the model together
    # longest a batch still being written takes more images; a free runner takes a written
    # batch at once, so batches form from the images that queue while every runner is busy
    batch_wait_ms: float = 5.0
    decode_threads: int = 2  # threads decoding large calls' images while the model runs
    decode_inline_bytes: int = 131_072  # calls up to this size decode on the event loop
    batch_runners: int = 2  # batches run through the model at once, each on its own thread
    reload_s: float = 5.0  # how often CURRENT is checked for a new version; 0 never
    spin_us: int = 20  # how long idle onnxruntime threads busy-wait for work; 0 never


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    ports: tuple[int, ...] = (50061, 50062)  # one shard process per port
    data_dir: str = "var/shards"
    max_batch: int = 10_000
    spec: str = ""  # FAISS factory string of every partition; "": by size, as below
    exact_below: int = 50_000  # partitions (and filtered searches) smaller search exactly
    ann_spec: str = "HNSW32"  # partitions larger; {nlist} and {m} are filled by size and dim
    compact_above: float = 0.2  # share of tombstones past which a partition is rebuilt
    ef_search: int = 64  # HNSW candidates walked, unless a search asks otherwise
    nprobe: int = 32  # IVF lists visited, unless a search asks otherwise
    refine: float = 4.0  # lossy codes: candidates reranked exactly, x k
    max_ef_search: int = 2048  # a search may ask up to these
    max_nprobe: int = 8192
    max_refine: float = 64.0
    replicas: int = 1  # shards holding each partition (common.routing.replicas_of)
    model_version: str = ""  # the version the shards serve; "": the one recorded last
    drain_grace_s: float = 10.0  # a partition moved away (or split) is still served this long
    snapshot_every: int = 10_000  # feed entries applied between snapshots


@dataclasses.dataclass(frozen=True)
class TaxonomyConfig:
    port: int = 50053
    database: str = "var/taxonomy.sqlite"
    max_distance: int = 4  # tree edges beyond which a neighbour is dropped
    visual_weight: float = 0.7  # share of the visual score in the combined score
    widest_step: int = 3  # back-off: 0 leaf, 1 siblings, 2 further up, 3 related nodes
    suggest_below: float = 0.05  # a seller's leaf the classifier gives less is suggested
    feed_keep: int = 200_000  # feed entries kept; a follower further behind rebuilds from a scan
    split_above: int = 0  # a partition past this many items splits by child node; 0: never
    # SQLite only: FULL, a commit (an acknowledged write) survives power loss; NORMAL, it
    # survives a crash of the process but the last commits may be lost with the power
    synchronous: str = "FULL"


@dataclasses.dataclass(frozen=True)
class GatewayConfig:
    port: int = 50051
    deadline_s: float = 2.0  # one deadline for the whole fan-out of a search
    default_k: int = 10
    max_k: int = 100
    candidates: int = 50  # neighbours asked of each shard before the rerank
    route_mass: float = 0.9  # search partitions until their leaves hold this probability
    max_partitions: int = 3
    max_ingest: int = 1000  # items in one Ingest call
    max_batch: int = 32  # queries in one SearchMany call
    eject_after: int = 3  # a shard that fails this many searches in a row is left out...
    probe_s: float = 1.0  # ...and its health checked this often until it serves again


@dataclasses.dataclass(frozen=True)
class AuthConfig:
    # TOML of [[token]] tables (name, value, roles); empty: auth is off, every call allowed
    tokens_file: str = ""
    token: str = ""  # the bearer token this process presents on its own outgoing calls


@dataclasses.dataclass(frozen=True)
class TlsConfig:
    # PEM files (infra/certs.py writes them); all three empty: TLS is off, every port plaintext.
    # On: every port serves TLS; internal services take only callers with a certificate
    # signed by ca_file (mutual TLS), the gateway any caller; every channel presents cert_file.
    cert_file: str = ""  # the cluster's certificate, served and presented
    key_file: str = ""  # its private key
    ca_file: str = ""  # the CA that signs the cluster's certificates

    @property
    def on(self) -> bool:
        return bool(self.cert_file or self.key_file or self.ca_file)


@dataclasses.dataclass(frozen=True)
class LimitsConfig:
    # Applied by every service process to each call it serves.
    max_message_bytes: int = 64 * 1024 * 1024  # one message received or sent
    max_in_flight: int = 256  # calls served at once; more are refused (RESOURCE_EXHAUSTED)


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    host: str = "127.0.0.1"
    partition_level: int = 2  # depth of the taxonomy node each partition serves
    grace_s: float = 5.0  # how long SIGTERM waits for in-flight calls
    run_dir: str = "var/run"  # pid file and service logs of a cluster started by infra
    metrics_offset: int = 1000  # each process's /metrics is on its gRPC port + this; 0: off
    encoder: EncoderConfig = EncoderConfig()
    index: IndexConfig = IndexConfig()
    taxonomy: TaxonomyConfig = TaxonomyConfig()
    gateway: GatewayConfig = GatewayConfig()
    auth: AuthConfig = AuthConfig()
    tls: TlsConfig = TlsConfig()
    limits: LimitsConfig = LimitsConfig()

    def address(self, port: int) -> str:
        return f"{self.host}:{port}"

    @property
    def shard_addresses(self) -> tuple[str, ...]:
        return tuple(self.address(port) for port in self.index.ports)

    @property
    def encoder_addresses(self) -> tuple[str, ...]:
        return tuple(self.address(port) for port in self.encoder.ports)


def load(path: str | Path | None = None, environ: Mapping[str, str] = os.environ) -> ClusterConfig:
    """Reads the config file (`path`, else `VS_CONFIG`, else infra/cluster.toml) and overrides.

    Raises:
        InvalidArgument: a key the config does not have, or a value of the wrong type.
    """
    file = Path(path or environ.get("VS_CONFIG") or DEFAULT_FILE)
    raw = tomllib.loads(file.read_text()) if file.exists() else {}
    return _build(ClusterConfig, raw, "VS", environ)


def _build(cls: type, raw: dict[str, Any], prefix: str, environ: Mapping[str, str]) -> Any:
    hints: dict[str, Any] = typing.get_type_hints(cls)
    unknown = set(raw) - set(hints)
    if unknown:
        raise InvalidArgument(f"unknown config keys in {prefix}: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, kind in hints.items():
        env_name = f"{prefix}_{name}".upper()
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            values[name] = _build(kind, raw.get(name, {}), env_name, environ)
        elif env_name in environ:
            values[name] = _parse(environ[env_name], kind, env_name)
        elif name in raw:
            values[name] = _coerce(raw[name], kind, name)
    return cls(**values)


def _parse(text: str, kind: Any, name: str) -> Any:
    if typing.get_origin(kind) is tuple:
        return _coerce([item for item in text.split(",") if item], kind, name)
    return _coerce(text, kind, name)


def _coerce(value: Any, kind: Any, name: str) -> Any:
    try:
        if typing.get_origin(kind) is tuple:
            (item_kind, _) = typing.get_args(kind)
            return tuple(item_kind(item) for item in value)
        if kind is bool and isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return kind(value)
    except (TypeError, ValueError) as error:
        raise InvalidArgument(f"config {name}={value!r} is not a {kind}") from error
