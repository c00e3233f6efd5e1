import pytest
from starlette.requests import HTTPConnection
from starlette.types import Scope

from app.chat.turns import Client
from app.core.config import Settings
from app.limits.client_ip import client_ip, client_network, ip_of, parse_address, parse_trusted

TRUSTED = parse_trusted(["10.0.0.0/8", "fd00::/8", "127.0.0.1"])

CASES = [
    # (peer, X-Forwarded-For, expected client, why)
    ("203.0.113.7", None, "203.0.113.7", "no proxy"),
    ("203.0.113.7", "198.51.100.1", "203.0.113.7", "untrusted peer: header ignored"),
    ("203.0.113.7", "10.0.0.9, 198.51.100.1", "203.0.113.7", "untrusted peer spoofs a chain"),
    ("10.0.0.1", None, "10.0.0.1", "trusted peer without header"),
    ("10.0.0.1", "", "10.0.0.1", "trusted peer, empty header"),
    ("10.0.0.1", "198.51.100.1", "198.51.100.1", "one trusted proxy"),
    ("10.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1", "client-written entries ignored"),
    ("10.0.0.1", "198.51.100.1, 10.0.0.2", "198.51.100.1", "two trusted proxies"),
    ("127.0.0.1", "198.51.100.1,10.1.2.3 ,10.0.0.2", "198.51.100.1", "loopback proxy, spacing"),
    ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3", "every hop trusted: leftmost"),
    ("10.0.0.1", "198.51.100.1, garbage", "10.0.0.1", "garbage rightmost: the peer"),
    ("10.0.0.1", "198.51.100.1, junk, 10.0.0.2", "10.0.0.2", "garbage: last trusted hop"),
    ("10.0.0.1", "unknown", "10.0.0.1", "nginx 'unknown' is garbage"),
    ("10.0.0.1", "198.51.100.1, , ", "198.51.100.1", "empty entries skipped"),
    ("10.0.0.1", "198.51.100.1:4711", "198.51.100.1", "IPv4 with port"),
    ("10.0.0.1", "[2001:db8::1]:4711", "2001:db8::1", "bracketed IPv6 with port"),
    ("fd00::1", "2001:db8::1", "2001:db8::1", "IPv6 proxy and client"),
    ("fd00::1", "2001:DB8:0:0::1", "2001:db8::1", "IPv6 in canonical form"),
    ("2001:db8::5", "198.51.100.1", "2001:db8::5", "untrusted IPv6 peer"),
    ("::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1", "IPv4-mapped peer is trusted"),
    ("::ffff:203.0.113.7", None, "203.0.113.7", "IPv4-mapped peer as IPv4"),
    ("10.0.0.1", "::ffff:198.51.100.1", "198.51.100.1", "IPv4-mapped entry as IPv4"),
    ("10.0.0.1", "::ffff:10.0.0.2, 198.51.100.9", "198.51.100.9", "mapped trusted hop"),
    ("testclient", "198.51.100.1", "testclient", "non-IP peer kept, header ignored"),
    (None, "198.51.100.1", "unknown", "no peer"),
]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [case[:3] for case in CASES],
    ids=[case[3] for case in CASES],
)
def test_client_ip(peer: str | None, forwarded_for: str | None, expected: str) -> None:
    assert client_ip(peer, forwarded_for, TRUSTED) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_ip("10.0.0.1", "198.51.100.1", []) == "10.0.0.1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.2.3.4", "1.2.3.4"), (" [::1] ", "::1"), ("1.2.3.4:80", "1.2.3.4"), ("1.2.3", None)],
)
def test_parse_address(text: str, expected: str | None) -> None:
    address = parse_address(text)
    assert (str(address) if address else None) == expected


def test_parse_trusted_accepts_hosts_and_host_bits() -> None:
    assert [str(n) for n in parse_trusted(["10.1.2.3/8", "::1", " 192.168.0.1 "])] == [
        "10.0.0.0/8",
        "::1/128",
        "192.168.0.1/32",
    ]


def _connection(
    scope_type: str, peer: str | None, headers: list[tuple[str, str]]
) -> HTTPConnection:
    scope: Scope = {
        "type": scope_type,
        "path": "/ws",
        "headers": [(name.encode(), value.encode()) for name, value in headers],
        "client": (peer, 5000) if peer else None,
    }
    return HTTPConnection(scope)


@pytest.mark.parametrize("scope_type", ["http", "websocket"])
def test_ip_of_joins_repeated_headers_in_order(scope_type: str) -> None:
    conn = _connection(
        scope_type,
        "10.0.0.1",
        [("x-forwarded-for", "6.6.6.6, 198.51.100.1"), ("X-Forwarded-For", "10.0.0.2")],
    )
    assert ip_of(conn, TRUSTED) == "198.51.100.1"


def test_ip_of_ignores_header_from_untrusted_peer() -> None:
    conn = _connection("websocket", "203.0.113.7", [("x-forwarded-for", "198.51.100.1")])
    assert ip_of(conn, TRUSTED) == "203.0.113.7"


def test_ip_of_without_client() -> None:
    assert ip_of(_connection("http", None, []), TRUSTED) == "unknown"


NETWORKS = [
    # (address, prefix length, counted as, why)
    ("203.0.113.7", 64, "203.0.113.7", "IPv4 as is"),
    ("2001:db8:1:2:aa:bb:cc:dd", 64, "2001:db8:1:2::/64", "IPv6 by its /64"),
    ("2001:db8:1:2::ffff", 64, "2001:db8:1:2::/64", "same /64, other interface id"),
    ("2001:db8:1:3::1", 64, "2001:db8:1:3::/64", "the next /64 is another client"),
    ("2001:db8:1:2:aa::1", 56, "2001:db8:1::/56", "a shorter prefix"),
    ("2001:db8:1:2:aa::1", 128, "2001:db8:1:2:aa::1/128", "128: one address"),
    ("::ffff:203.0.113.7", 64, "203.0.113.7", "IPv4-mapped as IPv4"),
    ("::1", 64, "127.0.0.1", "IPv6 loopback as IPv4 loopback"),
    ("[2001:DB8:1:2::5]:443", 64, "2001:db8:1:2::/64", "as a proxy may write it"),
    ("testclient", 64, "testclient", "not an address: as given"),
    ("unknown", 64, "unknown", "no peer"),
]


@pytest.mark.parametrize(
    ("address", "prefix_length", "expected"),
    [case[:3] for case in NETWORKS],
    ids=[case[3] for case in NETWORKS],
)
def test_client_network(address: str, prefix_length: int, expected: str) -> None:
    assert client_network(address, prefix_length) == expected


def test_one_network_has_one_pseudonymous_key() -> None:
    one, other = (Client(ip, client_network(ip, 64)) for ip in ("2001:db8::1", "2001:db8::2"))
    assert one.key == other.key
    assert len(one.key) == 32
    assert "2001" not in one.key


@pytest.mark.parametrize("length", [0, 129])
def test_ipv6_prefix_length_is_bounded(length: int) -> None:
    with pytest.raises(ValueError, match="ipv6_prefix_length"):
        Settings(_env_file=None, ipv6_prefix_length=length)
