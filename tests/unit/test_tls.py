"""The [tls] section: on by configuration, and a half-done configuration refused by name."""

from pathlib import Path

import pytest

from common import config
from common.config import TlsConfig
from common.errors import InvalidArgument
from common.tls import channel_credentials, server_credentials


def test_tls_is_off_by_default_and_on_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "cluster.toml").write_text("")
    environ = {"VS_CONFIG": str(tmp_path / "cluster.toml")}
    assert not config.load(environ=environ).tls.on
    files = {"VS_TLS_CERT_FILE": "c.pem", "VS_TLS_KEY_FILE": "c.key", "VS_TLS_CA_FILE": "ca.pem"}
    assert config.load(environ={**environ, **files}).tls == TlsConfig("c.pem", "c.key", "ca.pem")


def test_a_tls_config_missing_a_file_is_refused_naming_it() -> None:
    with pytest.raises(InvalidArgument, match=r"tls\.key_file.*tls\.ca_file"):
        server_credentials(TlsConfig(cert_file="cluster.pem"), public=False)


def test_an_unreadable_tls_file_is_refused_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(InvalidArgument, match=r"nowhere\.pem"):
        channel_credentials(TlsConfig(str(missing), str(missing), str(missing)))
