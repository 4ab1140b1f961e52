"""--shutdown-delay: on SIGTERM the server goes on serving (new connections included) for the
delay, then drains; a load running throughout sees no failed request."""

from __future__ import annotations

import os
import signal

import pytest

from tests.helpers import RawClient
from tests.supervisor.helpers import Load, children, wait_for


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_with_a_shutdown_delay_fails_no_request(server_factory, workers: str) -> None:
    # A long delay, cut short by a second SIGTERM once the test has seen enough: no timing.
    server = server_factory(["hello:app", "--shutdown-delay", "60", "--workers", workers, "--no-access-log"])
    with RawClient(server) as kept_alive:
        kept_alive.get("/")
        assert kept_alive.response().status == 200
        with Load(server, threads=2, per_thread=2000) as load:
            assert wait_for(lambda: load.total("ok") >= 20)
            server.signal(signal.SIGTERM)
            assert wait_for(lambda: "--shutdown-delay" in server.stderr_text())
            served_before = load.total("ok")
            # Still serving: new connections, and the kept-alive one.
            assert wait_for(lambda: load.total("ok") >= served_before + 200, timeout=30)
            kept_alive.get("/")
            response = kept_alive.response()
            assert response.status == 200 and response.header(b"connection") != b"close"
            assert server.process.poll() is None
            # End the delay: drain and stop. (Under an arbiter, its workers: a SIGTERM to a
            # worker during the delay ends its wait as a second one ends a single process's.)
            for pid in [server.process.pid] if workers == "1" else children(server.process.pid):
                os.kill(pid, signal.SIGTERM)
            kept_alive.expect_eof()  # the drain closes the idle connection cleanly
            kept_alive.close()  # at EOF, as clients do: the server need not linger
            assert server.wait(30) == 0
        assert load.total("reset") == 0 and load.total("stalled") == 0, load.counts
        assert load.total("refused") >= 1  # each client ran until the listener was gone


def test_shutdown_delay_is_zero_or_more_seconds() -> None:
    from synack.config import Config, ConfigError

    assert Config().shutdown_delay == 0
    with pytest.raises(ConfigError, match="--shutdown-delay must be a number of seconds >= 0"):
        Config(shutdown_delay=-1)
