"""Resolve and pin: SPEC §9's address policy for transports whose library resolves names
itself and offers no hook between resolving and connecting (pyreqwest, wreq).

Such a library takes only fixed name-to-address overrides, given when a client is built.
So the hub resolves each name itself, checks the answer against the policy, and sends to
that name through a client of its own whose override pins one checked address: the
library never asks DNS for it. A literal address is checked as it is and sent through
one shared client that resolves nothing. Names are resolved again after `DNS_TTL_S`, and
at once after a refused connection, which moves the pin to the name's next allowed
address (where aiohttp would try them all in one attempt).

The transport must give `PinnedClients` the host exactly as its library will read it
from the URL, or the library would resolve a name the hub never checked.
"""

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from yarl import URL

from gateway.dispatch.policy import AddressNotAllowed, EndpointPolicy
from gateway.dispatch.transport import DNS_TTL_S, SendFailed

ClientT = TypeVar("ClientT")
UrlT = TypeVar("UrlT")
# URLs whose destination is kept; past them the cache starts again.
DESTINATIONS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class _Pin(Generic[ClientT]):
    """A client whose only address for a name is `address`, allowed by the policy when
    the name was resolved; `refused` once a connection to it was refused."""

    client: ClientT
    address: str
    expires: float
    refused: bool = False


def name_to_resolve(host: str, policy: EndpointPolicy) -> str | None:
    """`host` when it is a name to resolve; None for a literal address the policy allows
    (sent without resolving); AddressNotAllowed for one it refuses."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if not policy.allows(str(literal)):
        raise AddressNotAllowed(str(literal))
    return None


class PinnedClients(Generic[ClientT]):
    """One client per name, pinned to an address of that name the policy allows.

    `build(name, address)` makes a client whose only address for `name` is `address`
    (called in a thread: a Rust client costs up to 0.1 s of CPU, without the GIL);
    `close` closes one. A client that moved is dropped, not closed: requests still using
    it finish first.
    """

    def __init__(
        self,
        *,
        policy: EndpointPolicy,
        build: Callable[[str, str], ClientT],
        close: Callable[[ClientT], Awaitable[None]],
    ) -> None:
        self._policy = policy
        self._build = build
        self._close = close
        self._pins: dict[str, _Pin[ClientT]] = {}
        self._resolving: dict[str, asyncio.Lock] = {}

    def ready(self, name: str) -> ClientT | None:
        """The client pinned for `name` if its pin holds now (no resolving needed)."""
        pin = self._pins.get(name)
        if pin is not None and pin.expires > time.monotonic():
            return pin.client
        return None

    async def client(self, name: str) -> ClientT:
        """The client pinned for `name`; AddressNotAllowed when none of its addresses is
        allowed, SendFailed when it does not resolve."""
        pin = self._pins.get(name)
        if pin is not None and pin.expires > time.monotonic():
            return pin.client
        async with self._resolving.setdefault(name, asyncio.Lock()):
            pin = self._pins.get(name)
            if pin is not None and pin.expires > time.monotonic():
                return pin.client  # resolved while this request waited
            allowed = await self._allowed_addresses(name)
            address = allowed[0]
            if pin is not None and pin.address in allowed:
                position = allowed.index(pin.address) + pin.refused
                address = allowed[position % len(allowed)]
            expires = time.monotonic() + DNS_TTL_S
            if pin is not None and pin.address == address:
                pin = _Pin(pin.client, address, expires)
            else:
                client = await asyncio.to_thread(self._build, name, address)
                pin = _Pin(client, address, expires)
            self._pins[name] = pin
            return pin.client

    def refused(self, name: str, client: ClientT) -> None:
        """A connection through `client` was refused: resolve `name` again on its next use
        and move to its next allowed address."""
        pin = self._pins.get(name)
        if pin is not None and pin.client is client:
            self._pins[name] = _Pin(client, pin.address, 0.0, refused=True)

    async def close(self) -> None:
        for pin in self._pins.values():
            await self._close(pin.client)
        self._pins.clear()

    async def _allowed_addresses(self, name: str) -> list[str]:
        """The addresses `name` resolves to that the policy allows, in the resolver's order."""
        try:
            answers = await asyncio.get_running_loop().getaddrinfo(
                name, None, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
            )
        except OSError as exc:
            raise SendFailed(f"cannot resolve {name}: {exc}") from None
        addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
        allowed = [address for address in addresses if self._policy.allows(address)]
        if not allowed:
            raise AddressNotAllowed(addresses[0] if addresses else name)
        return allowed


@dataclass(frozen=True, slots=True)
class Destination(Generic[UrlT]):
    """A URL in the form its library is given, with the name that library would resolve
    (None for a literal address, which it connects to without resolving)."""

    url: UrlT
    name: str | None


class Destinations(Generic[UrlT, ClientT]):
    """Where a transport sends each URL, worked out once per URL: `parse` gives the URL in
    its library's form and the host exactly as the library reads it (ValueError or
    SendFailed for a URL it cannot send to), and `check_name` refuses (SendFailed) a name
    the library would read otherwise. A literal address goes through `literal`, which
    resolves nothing; a name through the client `pins` pinned for it."""

    def __init__(
        self,
        *,
        policy: EndpointPolicy,
        parse: Callable[[URL | str], tuple[UrlT, str]],
        literal: ClientT,
        pins: PinnedClients[ClientT],
        check_name: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._policy = policy
        self._parse = parse
        self._check_name = check_name
        self._literal = literal
        self._pins = pins
        self._known: dict[URL | str, Destination[UrlT]] = {}

    def get(self, url: URL | str) -> Destination[UrlT]:
        destination = self._known.get(url)
        if destination is None:
            try:
                parsed, host = self._parse(url)
            except ValueError as exc:
                raise SendFailed(f"not a URL: {exc}") from None
            name = name_to_resolve(host, self._policy)
            if name is not None:
                self._check_name(name)
            destination = Destination(parsed, name)
            if len(self._known) > DESTINATIONS_KEPT:
                self._known.clear()
            self._known[url] = destination
        return destination

    async def client(self, destination: Destination[UrlT]) -> ClientT:
        """The client to send to `destination` through (AddressNotAllowed, SendFailed: as
        `PinnedClients.client`)."""
        if destination.name is None:
            return self._literal
        return await self._pins.client(destination.name)

    def ready(self, destination: Destination[UrlT]) -> ClientT | None:
        """The client to send to `destination` through when one is at hand without
        resolving (the common case, no coroutine); None: ask `client`."""
        if destination.name is None:
            return self._literal
        return self._pins.ready(destination.name)

    def refused(self, destination: Destination[UrlT], client: ClientT) -> None:
        """A connection to `destination` through `client` was refused."""
        if destination.name is not None:
            self._pins.refused(destination.name, client)
