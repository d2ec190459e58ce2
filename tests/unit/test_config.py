"""Configuration: the file, then the environment, into typed fields."""

from pathlib import Path

import pytest

from common import config
from common.errors import InvalidArgument


def test_the_shipped_file_loads_with_its_defaults() -> None:
    loaded = config.load(environ={})
    assert loaded.partition_level == 2
    assert len(loaded.shard_addresses) == 2


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("partition_level = 1\n[gateway]\nport = 7000\n")
    loaded = config.load(
        file, environ={"VS_GATEWAY_PORT": "7100", "VS_INDEX_PORTS": "9001,9002,9003"}
    )
    assert loaded.partition_level == 1
    assert loaded.gateway.port == 7100
    assert loaded.shard_addresses == ("127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003")


def test_unknown_keys_and_bad_values_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[gateway]\nprot = 1\n")
    with pytest.raises(InvalidArgument, match="prot"):
        config.load(file, environ={})
    with pytest.raises(InvalidArgument, match="VS_GATEWAY_PORT"):
        config.load(tmp_path / "absent.toml", environ={"VS_GATEWAY_PORT": "many"})


def test_auth_is_off_by_default_and_set_from_the_environment(tmp_path: Path) -> None:
    assert config.load(tmp_path / "absent.toml", environ={}).auth == config.AuthConfig()
    loaded = config.load(
        tmp_path / "absent.toml",
        environ={"VS_AUTH_TOKENS_FILE": "var/tokens.toml", "VS_AUTH_TOKEN": "s3cret"},
    )
    assert loaded.auth == config.AuthConfig(tokens_file="var/tokens.toml", token="s3cret")
