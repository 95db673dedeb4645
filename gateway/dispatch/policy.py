"""Which addresses the hub may send to (SPEC §9, endpoint address policy).

Teams choose the URLs the hub sends to, so without a policy a team could make the hub
read the organizer's own network: loopback, private and link-local addresses (cloud
metadata at 169.254.169.254), the database port. The hub refuses every address that is
not globally routable, and its own, unless the organizer lists a network holding it in
`RECOGHUB_ENDPOINT_ALLOW`.

The policy is applied twice: to literal addresses when an endpoint is registered (so a
team learns at once), and to every address the dispatch client connects to (in
`gateway.dispatch.client`), so a DNS name cannot move an endpoint inside later.
"""

import functools
import ipaddress
from dataclasses import dataclass

import psutil

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "RECOGHUB_ENDPOINT_ALLOW"
REFUSED_DETAIL = "address not allowed by the hub's endpoint policy"

# NAT64 gateways reach the IPv4 address embedded in the last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressNotAllowed(OSError):
    """Raised instead of connecting to an address the policy refuses."""

    def __init__(self, address: str) -> None:
        super().__init__(REFUSED_DETAIL)
        self.address = address


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """The comma-separated CIDRs of `RECOGHUB_ENDPOINT_ALLOW` (a bare address is one host).

    Raises ValueError naming the entry that is not a network.
    """
    networks: list[IPNetwork] = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{SETTING}: {entry!r} is not a network (write CIDRs like 10.0.0.0/8 or ::1/128)"
            ) from None
    return tuple(networks)


def _effective(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped or NAT64 IPv6 address really reaches."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _own_addresses() -> frozenset[IPAddress]:
    """Every address of this host's network interfaces (the hub must not call itself)."""
    own: set[IPAddress] = set()
    for addresses in psutil.net_if_addrs().values():
        for entry in addresses:
            try:
                # An IPv6 link-local address carries its zone: "fe80::1%eth0".
                own.add(_effective(ipaddress.ip_address(entry.address.split("%")[0])))
            except ValueError:
                continue  # a MAC address (AF_PACKET / AF_LINK)
    return frozenset(own)


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    allowed: tuple[IPNetwork, ...]
    own: frozenset[IPAddress]

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why the hub must not send to `address` (e.g. "a loopback address"), or None.

        Raises ValueError when `address` is not an IP address.
        """
        ip = _effective(ipaddress.ip_address(address))
        if any(ip in network for network in self.allowed):
            return None
        if ip.is_unspecified:
            return "an unspecified address"
        if ip.is_loopback:
            return "a loopback address"
        if ip.is_link_local:
            return "a link-local address"
        if ip.is_multicast:
            return "a multicast address"
        if ip in self.own:
            return "one of the hub's own addresses"
        if ip.is_private:
            return "a private address"
        if not ip.is_global:
            return "a reserved address"
        return None

    def allows(self, address: str) -> bool:
        """False for an address the policy refuses, and for anything that is not one."""
        try:
            return self.refusal(address) is None
        except ValueError:
            return False


@functools.cache
def endpoint_policy(allow: str) -> EndpointPolicy:
    """The policy for the `RECOGHUB_ENDPOINT_ALLOW` text `allow`; built once per process."""
    return EndpointPolicy(allowed=parse_networks(allow), own=_own_addresses())
