"""Config: one declaration per setting, from_mapping, validation and the per-layer slices."""

from __future__ import annotations

import dataclasses

import pytest

from synack.config import SETTINGS, Config, ConfigError
from synack.h1 import Limits
from synack.server.timeouts import Timeouts


def test_every_limit_and_timeout_is_a_setting_with_its_default() -> None:
    by_place = {(s.section, s.attribute): s for s in SETTINGS}
    for section, kind in (("limits", Limits), ("timeouts", Timeouts)):
        for item in dataclasses.fields(kind):
            setting = by_place[section, item.name]
            assert setting.default == item.default
            assert setting.help == item.metadata["help"]
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)


def test_settings_keep_their_command_line_names() -> None:
    names = {s.name for s in SETTINGS}
    assert {
        "max_request_line", "max_head_bytes", "max_header_count", "max_field_bytes",
        "max_chunk_ext_bytes", "max_trailer_bytes", "max_body_bytes", "allow_bare_lf",
        "allow_obs_fold", "head_timeout", "body_timeout", "keep_alive_timeout", "write_timeout",
        "linger_timeout", "graceful_timeout", "lifespan_timeout", "port", "workers",
    } <= names
    assert "limits" not in names and "timeouts" not in names


def test_defaults_are_the_layers_defaults() -> None:
    config = Config()
    assert config.limits == Limits()
    assert config.timeouts == Timeouts()


def test_from_mapping_builds_the_slices() -> None:
    config = Config.from_mapping({
        "port": 8000, "max_head_bytes": 4096, "max_request_line": 1024, "allow_bare_lf": True,
        "head_timeout": 3, "body_timeout": 4.5, "keep_alive_timeout": 1, "graceful_timeout": 7,
    })
    assert config.port == 8000
    assert config.limits == Limits(max_head_bytes=4096, max_request_line=1024, allow_bare_lf=True)
    assert config.timeouts == Timeouts(head=3, body_idle=4.5, keep_alive=1, graceful=7)


def test_zero_body_limit_means_no_limit() -> None:
    assert Config.from_mapping({"max_body_bytes": 0}).limits.max_body_bytes is None
    assert Config.from_mapping({"max_body_bytes": 10}).limits.max_body_bytes == 10


def test_whole_slices_are_accepted() -> None:
    limits, timeouts = Limits(max_header_count=7), Timeouts(write=2.0)
    config = Config.from_mapping({"limits": limits, "timeouts": timeouts})
    assert config.limits is limits and config.timeouts is timeouts


@pytest.mark.parametrize("key", ["max_body_size", "headtimeout", "limits_max_head_bytes", "Port"])
def test_unknown_key_is_an_error_naming_it(key: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown setting '{key}'"):
        Config.from_mapping({key: 1})


def test_unknown_key_suggests_the_close_one() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'max_body_bytes'\?"):
        Config.from_mapping({"max_body_byte": 1})


@pytest.mark.parametrize("mapping, message", [
    ({"port": "80"}, "--port must be a whole number >= 0, got '80'"),
    ({"port": True}, "--port must be a whole number >= 0, got True"),
    ({"workers": 2.0}, "--workers must be a whole number >= 1, got 2.0"),
    ({"factory": "yes"}, "--factory must be true or false, got 'yes'"),
    ({"host": 127}, "--host must be a string, got 127"),
    ({"max_head_bytes": "16k"}, "--max-head-bytes must be a whole number >= 1, got '16k'"),
    ({"allow_obs_fold": 1}, "--allow-obs-fold must be true or false, got 1"),
    ({"head_timeout": "5"}, "--head-timeout must be a number of seconds > 0, got '5'"),
    ({"body_timeout": float("nan")}, "--body-timeout must be a number of seconds > 0, got nan"),
    ({"write_timeout": float("inf")}, "--write-timeout must be a number of seconds > 0, got inf"),
    ({"linger_timeout": 0}, "--linger-timeout must be a number of seconds > 0, got 0"),
    ({"loop": "trio"}, "--loop must be one of auto, asyncio, uvloop, got 'trio'"),
    ({"fd": -1}, "--fd must be a whole number >= 0, got -1"),
])
def test_wrong_types_and_values_are_errors(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_mapping(mapping)
    assert str(raised.value) == message


@pytest.mark.parametrize("name", [
    "max_request_line", "max_head_bytes", "max_header_count", "max_field_bytes",
    "max_chunk_ext_bytes", "max_trailer_bytes", "max_connections", "backlog", "workers", "threads",
])
def test_counts_must_be_positive(name: str) -> None:
    with pytest.raises(ConfigError, match="--" + name.replace("_", "-")):
        Config.from_mapping({name: 0})


def test_a_slice_given_directly_is_validated_too() -> None:
    with pytest.raises(ConfigError, match="--max-header-count"):
        Config(limits=Limits(max_header_count=-1))
    with pytest.raises(ConfigError, match="--keep-alive-timeout"):
        Config(timeouts=Timeouts(keep_alive=0))
    with pytest.raises(ConfigError, match="'limits' must be a Limits, got dict"):
        Config.from_mapping({"limits": {"max_header_count": 5}})


@pytest.mark.parametrize("mapping, message", [
    ({"uds": "/tmp/s", "fd": 3}, "--uds and --fd cannot be used together"),
    ({"max_request_line": 20000}, "--max-request-line cannot exceed --max-head-bytes"),
    ({"port": 65536}, "--port must be between 0 and 65535, got 65536"),
    ({"limits": Limits(), "max_head_bytes": 1}, "'limits' conflicts with --max-head-bytes"),
    ({"timeouts": Timeouts(), "head_timeout": 1, "body_timeout": 1},
     "'timeouts' conflicts with --body-timeout, --head-timeout"),
    ({"index": "a/b"}, "--index must be a plain file name"),
    ({"server_header": "x\r\ny"}, "--server-header must be printable ASCII"),
    ({"cache_control": "caf\u00e9"}, "--cache-control must be printable ASCII"),
])
def test_conflicting_options_are_errors(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.from_mapping(mapping)
    assert str(raised.value).startswith(message)


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
