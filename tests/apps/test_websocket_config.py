"""The --ws* settings: parsed from the command line, checked, and handed to the ASGI handler."""

from __future__ import annotations

import pytest

from synack.apps.loader import load_handler
from synack.apps.websocket import WebSocketSettings
from synack.cli import parse_config
from synack.config import Config, ConfigError
from tests.conftest import FIXTURE_APPS


def test_defaults() -> None:
    config = Config()
    assert (config.ws, config.ws_max_size, config.ws_ping_interval, config.ws_ping_timeout,
            config.ws_close_timeout, config.ws_per_message_deflate) == ("auto", 16 * 1024 * 1024, 20.0, 20.0,
                                                                       10.0, True)


def test_flags_reach_the_asgi_handler() -> None:
    config = parse_config(["ws_apps:echo", "--app-dir", str(FIXTURE_APPS), "--ws", "websockets", "--ws-max-size", "4096", "--ws-ping-interval", "0",
                           "--ws-ping-timeout", "3", "--ws-close-timeout", "2", "--no-ws-per-message-deflate"])
    handler = load_handler(config)
    assert handler.websocket == WebSocketSettings(  # type: ignore[attr-defined]
        mode="websockets", max_size=4096, ping_interval=0.0, ping_timeout=3.0, close_timeout=2.0,
        per_message_deflate=False)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("ws_max_size", 0, "--ws-max-size must be a whole number >= 1"),
    ("ws_ping_interval", -1.0, "--ws-ping-interval must be a number of seconds >= 0"),
    ("ws_ping_timeout", 0.0, "--ws-ping-timeout must be a number of seconds > 0"),
    ("ws_close_timeout", float("inf"), "--ws-close-timeout must be a number of seconds > 0"),
    ("ws", "wsproto", "--ws must be one of auto, websockets, none"),
])
def test_bad_values_are_refused(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_mapping({key: value})


def test_bad_flag_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_config(["--ws-ping-interval", "-5"])
    assert caught.value.code == 2
    assert "--ws-ping-interval must be a number of seconds >= 0" in capsys.readouterr().err
