"""Proxy headers (--forwarded-allow-ips, --proxy-headers): only a trusted peer names the client,
scheme and host; the chain is walked from the right; malformed values are ignored."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SYNACK_PATH, Server
from tests.helpers import RawClient
from tests.supervisor.helpers import wait_for


def _seen(server: Server, headers: bytes, path: bytes = b"/") -> dict:
    with RawClient(server) as client:
        client.send(b"GET " + path + b" HTTP/1.1\r\nHost: synack.test\r\n" + headers + b"\r\n")
        response = client.response()
    assert response.status == 200, response
    return json.loads(response.body)


XFF = b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n"


def test_a_trusted_peer_names_client_scheme_and_host(server_factory) -> None:
    server = server_factory(["deploy_app:app"])  # default: 127.0.0.1 and ::1 are trusted
    seen = _seen(server, XFF)
    assert seen["client"] == ["203.0.113.7", 0]
    assert seen["scheme"] == "https"
    assert seen["host"] == "example.com"
    # The access log shows the real client.
    # (The access line is written just after the response: wait for it.)
    assert wait_for(lambda: "203.0.113.7 - - [" in server.stderr_text())


def test_wsgi_sees_the_forwarded_client_scheme_and_host(server_factory) -> None:
    server = server_factory(["deploy_app:wsgi"])
    seen = _seen(server, XFF + b"X-Forwarded-Port: 8443\r\n")
    assert seen["REMOTE_ADDR"] == "203.0.113.7"
    assert seen["wsgi.url_scheme"] == "https"
    assert seen["HTTP_HOST"] == "example.com:8443"


def test_an_untrusted_peer_is_not_believed(server_factory) -> None:
    server = server_factory(["deploy_app:app", "--forwarded-allow-ips", "10.0.0.1"])
    seen = _seen(server, XFF + b"Forwarded: for=198.51.100.1;proto=https\r\n")
    assert seen["client"][0] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["host"] == "synack.test"


def test_the_environment_variable_sets_the_trusted_peers(server_factory) -> None:
    server = server_factory(["deploy_app:app"], env={"FORWARDED_ALLOW_IPS": "10.0.0.1"})
    assert _seen(server, XFF)["client"][0] == "127.0.0.1"
    server = server_factory(["deploy_app:app"], env={"FORWARDED_ALLOW_IPS": "*"})
    assert _seen(server, XFF)["client"][0] == "203.0.113.7"


def test_the_chain_is_walked_from_the_right_to_the_first_untrusted_hop(server_factory) -> None:
    server = server_factory(["deploy_app:app", "--forwarded-allow-ips", "127.0.0.1, 10.0.0.0/8"])
    # 198.51.100.1 is what the client claimed; 203.0.113.9 connected to the trusted 10.1.2.3.
    seen = _seen(server, b"X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\nX-Forwarded-For: 10.1.2.3\r\n"
                         b"X-Forwarded-Proto: http, https, http\r\n")
    assert seen["client"] == ["203.0.113.9", 0]
    assert seen["scheme"] == "https"  # the proto the client's hop saw
    # Everyone trusted: the leftmost address is the client.
    server = server_factory(["deploy_app:app", "--forwarded-allow-ips", "*"])
    assert _seen(server, b"X-Forwarded-For: 198.51.100.1, 10.1.2.3\r\n")["client"] == ["198.51.100.1", 0]


def test_rfc7239_forwarded(server_factory) -> None:
    server = server_factory(["deploy_app:app"])
    seen = _seen(server, b'Forwarded: for="[2001:db8:cafe::17]:4711";proto=https;host=example.org\r\n')
    assert seen["client"] == ["2001:db8:cafe::17", 4711]
    assert seen["scheme"] == "https" and seen["host"] == "example.org"
    # auto: Forwarded wins over X-Forwarded-* when both are present.
    seen = _seen(server, b"Forwarded: for=192.0.2.60;proto=http\r\n" + XFF)
    assert seen["client"] == ["192.0.2.60", 0] and seen["scheme"] == "http"
    # An obfuscated node is a client without an address.
    assert _seen(server, b"Forwarded: for=_hidden, for=127.0.0.1\r\n")["client"] is None


@pytest.mark.parametrize("headers", [
    b"X-Forwarded-For: not-an-address\r\nX-Forwarded-Proto: https\r\n",
    b"X-Forwarded-For: 203.0.113.7:99999\r\n",
    b'Forwarded: for="[::1\r\n',
    b"Forwarded: for=203.0.113.7;for=198.51.100.1\r\n",
    b"Forwarded: proto=https\r\n",
    b"Forwarded: nonsense\r\n",
], ids=["xff-word", "xff-port", "forwarded-open-quote", "forwarded-twice", "forwarded-no-for", "forwarded-no-equals"])
def test_malformed_values_are_ignored(server_factory, headers: bytes) -> None:
    server = server_factory(["deploy_app:app"])
    seen = _seen(server, headers)
    assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"


def test_a_bad_forwarded_host_is_ignored(server_factory) -> None:
    server = server_factory(["deploy_app:app"])
    seen = _seen(server, b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Host: bad host/\r\n")
    assert seen["client"][0] == "203.0.113.7" and seen["host"] == "synack.test"


@pytest.mark.parametrize(("mode", "believed"), [("off", ()), ("x-forwarded", ("x",)), ("forwarded", ("f",))])
def test_proxy_headers_modes(server_factory, mode: str, believed: tuple[str, ...]) -> None:
    server = server_factory(["deploy_app:app", "--proxy-headers", mode])
    assert (_seen(server, XFF)["client"][0] == "203.0.113.7") == ("x" in believed)
    assert (_seen(server, b"Forwarded: for=192.0.2.60\r\n")["client"][0] == "192.0.2.60") == ("f" in believed)


def test_a_bad_trusted_address_is_a_one_line_error() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SYNACK_PATH, str(ROOT)]))
    result = subprocess.run([sys.executable, "-m", "synack", "--forwarded-allow-ips", "127.0.0.1,nope"],
                            capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stderr.strip() == "synack: error: --forwarded-allow-ips: 'nope' is not an IP address or network"


def test_clients_behind_one_proxy_connection_each_get_their_own_address(server_factory) -> None:
    # What the proxy fields say is remembered per distinct set of fields: interleaved clients
    # on one kept-alive upstream connection must each still see their own address and scheme.
    server = server_factory(["deploy_app:app"])
    clients = [(f"203.0.113.{index}", "https" if index % 2 else "http") for index in range(1, 6)]
    with RawClient(server) as client:
        for _ in range(3):
            for address, scheme in clients:
                client.send(b"GET / HTTP/1.1\r\nHost: synack.test\r\nX-Forwarded-For: %s\r\n"
                            b"X-Forwarded-Proto: %s\r\n\r\n" % (address.encode(), scheme.encode()))
                seen = json.loads(client.response().body)
                assert (seen["client"], seen["scheme"]) == ([address, 0], scheme)
            client.send(b"GET / HTTP/1.1\r\nHost: synack.test\r\n\r\n")  # no proxy fields: the peer itself
            seen = json.loads(client.response().body)
            assert seen["client"][0] == "127.0.0.1" and seen["scheme"] == "http"


def test_what_proxy_fields_say_is_remembered_within_a_bound() -> None:
    import types

    from synack.h1 import Limits
    from synack.h1.reader import parse_head
    from synack.server import proxy

    forwarding = proxy.Forwarding(proxy.trust_from(None))
    for index in range(proxy.HOPS_CACHE_SIZE * 2 + 7):
        address = f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"
        head = parse_head(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: %s" % address.encode(), Limits())
        exchange = types.SimpleNamespace(head=head, client=("127.0.0.1", 1), scheme="http")
        forwarding.apply(exchange)  # type: ignore[arg-type]
        assert exchange.client == (address, 0)
        assert len(forwarding._hops) <= proxy.HOPS_CACHE_SIZE


def test_trusted_networks_are_remembered_within_a_bound() -> None:
    from synack.server import proxy

    trust = proxy.trust_from("10.0.0.0/8, ::ffff:192.0.2.0/120")
    for _ in range(2):  # the second pass answers from what was remembered
        assert "10.1.2.3" in trust and "11.1.2.3" not in trust and "not-an-address" not in trust
        assert "::ffff:10.0.0.1" in trust and "192.0.2.7" not in trust
    for index in range(proxy.HOPS_CACHE_SIZE + 10):
        assert (f"10.0.{index // 256 % 256}.{index % 256}" in trust) is True
        assert len(trust._verdicts) <= proxy.HOPS_CACHE_SIZE
    assert "11.0.0.1" not in trust
