"""TLS switched on by configuration: internal services serve the cluster's own certificate
holders only (mutual TLS), the gateway any TLS caller; real processes on loopback."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from common import clients
from common.clients import balanced_target
from common.config import TlsConfig
from common.tls import blocking_channel, channel_credentials
from infra import process
from infra.certs import Files, write
from protos.visualsearch.v1 import gateway_pb2, gateway_pb2_grpc, taxonomy_pb2_grpc
from tests import shard_server
from tests.loopback import SERVICE, refused
from tests.served import served
from tests.taxonomy_server import Server, running, version

HOSTS = ["localhost", "127.0.0.1"]
CALL_S = 10.0
TOPWEAR = ("Apparel/Topwear/Tshirts", "Apparel/Topwear/Shirts")  # leaves of one partition


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return write(tmp_path_factory.mktemp("certs"), HOSTS)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """A CA and certificate of someone else: valid, but not the cluster's."""
    return write(tmp_path_factory.mktemp("foreign"), HOSTS, name="intruder")


def _tls(files: Files) -> TlsConfig:
    return TlsConfig(str(files.cert), str(files.key), str(files.ca_cert))


def _env(files: Files) -> dict[str, str]:
    return {
        "VS_TLS_CERT_FILE": str(files.cert),
        "VS_TLS_KEY_FILE": str(files.key),
        "VS_TLS_CA_FILE": str(files.ca_cert),
    }


@pytest.fixture(scope="module")
def taxonomy(tmp_path_factory: pytest.TempPathFactory, certs: Files) -> Iterator[Server]:
    """A taxonomy process, an internal service, with TLS on."""
    with running(tmp_path_factory.mktemp("taxonomy"), _env(certs)) as server:
        yield server


def test_an_internal_service_serves_the_clusters_certificate(
    taxonomy: Server, certs: Files
) -> None:
    with blocking_channel(taxonomy.address, _tls(certs)) as channel:
        assert version(taxonomy_pb2_grpc.TaxonomyStub(channel)) >= 0


def _no_certificate(certs: Files, foreign: Files) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=certs.ca_cert.read_bytes())


def _foreign_certificate(certs: Files, foreign: Files) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=certs.ca_cert.read_bytes(),
        private_key=foreign.key.read_bytes(),
        certificate_chain=foreign.cert.read_bytes(),
    )


@pytest.mark.parametrize("credentials", [_no_certificate, _foreign_certificate, None])
def test_an_internal_service_refuses_any_other_caller(
    taxonomy: Server, certs: Files, foreign: Files, credentials: object
) -> None:
    if credentials is None:  # plaintext
        channel = grpc.insecure_channel(taxonomy.address)
    else:
        assert callable(credentials)
        channel = grpc.secure_channel(taxonomy.address, credentials(certs, foreign))
    with channel, pytest.raises(grpc.RpcError) as raised:
        version(taxonomy_pb2_grpc.TaxonomyStub(channel))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_a_client_refuses_a_server_of_another_ca(
    tmp_path: Path, taxonomy: Server, foreign: Files
) -> None:
    """The cluster's CA is the only one a cluster's channel trusts."""
    channel = blocking_channel(taxonomy.address, _tls(foreign))
    with channel, pytest.raises(grpc.RpcError) as raised:
        version(taxonomy_pb2_grpc.TaxonomyStub(channel))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


def test_a_public_service_serves_tls_callers_without_a_certificate(certs: Files) -> None:
    async def run() -> None:
        credentials = grpc.ssl_channel_credentials(root_certificates=certs.ca_cert.read_bytes())
        handlers = {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
        tls = _tls(certs)
        async with served(handlers, tls=tls, public=True, credentials=credentials) as address:
            async with grpc.aio.secure_channel(address, credentials) as channel:
                echo = channel.unary_unary(f"/{SERVICE}/Echo")
                assert await echo(b"hi", timeout=CALL_S) == b"hi"
            async with grpc.aio.insecure_channel(address) as plaintext:
                error = await refused(plaintext.unary_unary(f"/{SERVICE}/Echo")(b"hi", timeout=2))
                assert error.code() == grpc.StatusCode.UNAVAILABLE

    asyncio.run(run())


def test_the_cluster_answers_through_the_gateway_with_tls_on(tmp_path: Path, certs: Files) -> None:
    """Taxonomy, a shard and the gateway, each with TLS on and calling the others over it; a
    caller with no certificate of its own searches through the gateway."""
    tls = _tls(certs)
    with shard_server.running(tmp_path / "cluster", **_env(certs)) as cluster:
        ids = [f"item-{n}" for n in range(6)]
        with blocking_channel(cluster.taxonomy.address, tls) as channel:
            record = taxonomy_pb2_grpc.TaxonomyStub(channel)
            items = [shard_server.item(i, TOPWEAR[n % 2], n) for n, i in enumerate(ids)]
            seq = shard_server.put(record, items)
        (port,) = process.free_ports()
        address = f"127.0.0.1:{port}"
        env = {**cluster.shard.env, "VS_GATEWAY_PORT": str(port)}
        env["VS_ENCODER_PORTS"] = str(process.free_ports()[0])  # SimilarProducts needs none
        gateway = process.start("gateway.server", [], address, tmp_path / "gateway.log", env)
        try:
            credentials = grpc.ssl_channel_credentials(certs.ca_cert.read_bytes())
            with grpc.secure_channel(address, credentials) as channel:
                request = gateway_pb2.SimilarProductsRequest(product_id=ids[0], k=3, min_seq=seq)
                reply = gateway_pb2_grpc.VisualSearchStub(channel).SimilarProducts(
                    request, timeout=30.0
                )
        finally:
            process.stop(gateway)
    assert not reply.partial
    assert len(reply.results) == 3
    assert {result.item_id for result in reply.results} <= set(ids) - {ids[0]}


def test_a_balanced_channel_speaks_mutual_tls_to_every_address(certs: Files) -> None:
    """The gateway's channel to the encoder replicas names several addresses in one target
    (here one address twice: serve() takes the process's SIGTERM, so one serves at a time)."""
    tls = _tls(certs)
    credentials = channel_credentials(tls)

    async def run() -> None:
        handlers = {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
        async with (
            served(handlers, tls=tls, credentials=credentials) as address,
            clients.channel(balanced_target([address] * 2), balanced=True, tls=tls) as channel,
        ):
            echo = channel.unary_unary(f"/{SERVICE}/Echo")
            answers = [await echo(b"%d" % n, timeout=CALL_S) for n in range(4)]
        assert answers == [b"0", b"1", b"2", b"3"]

    asyncio.run(run())
