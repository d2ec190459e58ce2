"""Writes a CA and the cluster's certificate signed by it: `python -m infra.certs DIR`.

DIR gets ca.pem (the CA's certificate), ca.key (its key: keep it away from the services),
cluster.pem and cluster.key: the certificate every service serves and presents, valid for
localhost, 127.0.0.1 and the configured host. Point [tls] (or VS_TLS_CERT_FILE,
VS_TLS_KEY_FILE, VS_TLS_CA_FILE) at cluster.pem, cluster.key and ca.pem.
"""

import argparse
import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common import config as cluster_config

VALID_DAYS = 365


@dataclass(frozen=True)
class Files:
    """Where a run wrote its files."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path


def write(directory: Path, hosts: Sequence[str], name: str = "visualsearch") -> Files:
    """Writes a new CA and a certificate for `hosts` signed by it into `directory`.

    Args:
        directory: created if missing; files already there are replaced.
        hosts: the names and IP addresses the certificate is valid for.
        name: the common name of the CA ("<name> CA") and of the certificate.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        _builder(subject, ca_name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = Files(
        directory / "ca.pem",
        directory / "ca.key",
        directory / "cluster.pem",
        directory / "cluster.key",
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(files.ca_key, ca_key)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files.key, key)
    return files


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a little clock skew is fine
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # in order, once each
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(pem)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where the four PEM files are written")
    parser.add_argument(
        "--host", action="append", default=[], help="another name or IP the cluster serves on"
    )
    args = parser.parse_args(argv)
    host = cluster_config.load().host
    files = write(args.directory, ["localhost", "127.0.0.1", host, *args.host])
    print(
        f"TLS on for the cluster: VS_TLS_CERT_FILE={files.cert} VS_TLS_KEY_FILE={files.key} "
        f"VS_TLS_CA_FILE={files.ca_cert}"
    )


if __name__ == "__main__":
    main()
