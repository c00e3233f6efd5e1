"""The visitor's IP address, trusting `X-Forwarded-For` only as far as our own proxies.

The socket peer is the client unless it sits in a trusted network. Then the header is
read from the right (the entry the nearest proxy appended) past every trusted hop; the
first untrusted address is the client. Entries to its left were written by the client
and are ignored, so a spoofed header never chooses the rate-limit bucket.

Limits and budgets count a client by `client_network`: an IPv6 address by its network
(`IPV6_PREFIX_LENGTH` bits, one /64 per site by default), since a host picks any address
in its prefix at will.
"""

from collections.abc import Sequence
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

from starlette.requests import HTTPConnection

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

UNKNOWN = "unknown"
IPV4_LOOPBACK = "127.0.0.1"


def parse_trusted(networks: Sequence[str]) -> list[Network]:
    """`["10.0.0.0/8", "127.0.0.1"]` as networks; host bits are allowed."""
    return [ip_network(network.strip(), strict=False) for network in networks]


def parse_address(text: str) -> Address | None:
    """An address as a proxy may write it (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`), or None.

    IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes the IPv4 address, so one visitor has
    one spelling whichever socket family the server listens on.
    """
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address as text.

    `forwarded_for` is the `X-Forwarded-For` value (several headers joined by commas;
    empty entries are skipped).
    A peer that is not an IP address (a Unix socket, a test client) is returned as
    given; a missing peer is `"unknown"`. An entry that is not an address stops the
    walk, and the last trusted hop reached (the peer when it is the rightmost entry)
    is the client; so is the leftmost hop when every entry is trusted.
    """
    if peer is None:
        return UNKNOWN
    current = parse_address(peer)
    if current is None:
        return peer
    if not _is_trusted(current, trusted) or not forwarded_for:
        return str(current)
    hops = [hop for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            break
        current = address
        if not _is_trusted(current, trusted):
            break
    return str(current)


def client_network(ip: str, ipv6_prefix_length: int) -> str:
    """Whom limits count: an IPv4 address as is, an IPv6 address as its network.

    `2001:db8:1:2:aa::1` with 64 is `2001:db8:1:2::/64`. An IPv4-mapped address counts as
    its IPv4 address, and `::1` as `127.0.0.1`, so one host has one allowance whichever
    family it connects over. Text that is not an address (`unknown`, a test client's
    name) is returned as given.
    """
    address = parse_address(ip)
    if not isinstance(address, IPv6Address):
        return str(address) if address else ip
    if address.is_loopback:
        return IPV4_LOOPBACK
    return str(IPv6Network((address, ipv6_prefix_length), strict=False))


def ip_of(conn: HTTPConnection, trusted: Sequence[Network]) -> str:
    """The client address of an HTTP request or a WebSocket handshake."""
    peer = conn.client.host if conn.client else None
    forwarded_for = ",".join(conn.headers.getlist("x-forwarded-for"))
    return client_ip(peer, forwarded_for, trusted)
