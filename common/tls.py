"""TLS for every port: the server's credentials (mutual for internal services) and the channel's."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from common.config import TlsConfig
from common.errors import InvalidArgument


def server_credentials(tls: TlsConfig, public: bool) -> grpc.ServerCredentials:
    """The cluster's certificate served; unless `public`, a caller must present one signed
    by the cluster's CA (mutual TLS), so internal services serve the cluster's own identity only.

    Raises:
        InvalidArgument: a file missing from the config or unreadable.
    """
    cert, key, ca = _read(tls)
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=None if public else ca, require_client_auth=not public
    )


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """Trusts the cluster's CA and presents the cluster's certificate.

    Raises:
        InvalidArgument: a file missing from the config or unreadable.
    """
    cert, key, ca = _read(tls)
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def _read(tls: TlsConfig) -> tuple[bytes, bytes, bytes]:
    files = {"cert_file": tls.cert_file, "key_file": tls.key_file, "ca_file": tls.ca_file}
    missing = [f"tls.{name}" for name, path in files.items() if not path]
    if missing:
        raise InvalidArgument(f"TLS needs all of cert_file, key_file, ca_file; {missing} empty")
    try:
        return (
            Path(tls.cert_file).read_bytes(),
            Path(tls.key_file).read_bytes(),
            Path(tls.ca_file).read_bytes(),
        )
    except OSError as error:
        raise InvalidArgument(f"TLS file unreadable: {error}") from error


def blocking_channel(
    address: str, tls: TlsConfig | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.Channel:
    """A synchronous channel for commands and scripts: with the cluster's certificate where
    `tls` is on, plaintext otherwise."""
    if tls is None or not tls.on:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, channel_credentials(tls), options=options)
