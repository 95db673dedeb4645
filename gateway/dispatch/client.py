"""The one shared aiohttp session of a hub process, and how it talks to recognizers safely.

Everything the hub sends to a team's endpoint (runs, relay, check, ping) goes through
this session, so the rules of SPEC §9 live here once:

- every socket it opens is checked against the endpoint policy just before it connects
  (`_policy_socket_factory`): the address may come from the URL or from DNS, and a DNS
  answer that moves a name inside the organizer's network is refused like a literal
  address. aiohttp never passes a literal address to a resolver, which is why the check
  sits at the socket and not in a custom resolver;
- requests are sent with `REQUEST_OPTIONS` (no redirects: a 3xx is an answer);
- answers are read with `read_bounded` or `read_preview`, never `response.read()`.
"""

import socket
from typing import Any, Final

import aiohttp
from aiohappyeyeballs import AddrInfoType, SocketFactoryType

from gateway.config import Settings
from gateway.dispatch.policy import AddressNotAllowed, EndpointPolicy, endpoint_policy
from gateway.errors import RecognizerTooLarge

# Keyword arguments of every request to a recognizer: a redirect is never followed, so a
# team cannot bounce the hub to an address its endpoint could not name.
REQUEST_OPTIONS: Final[dict[str, Any]] = {"allow_redirects": False}

_READ_CHUNK = 16384


def make_client_session(settings: Settings) -> aiohttp.ClientSession:
    """A session for all dispatch (runs, relay, check); create once, close once.

    The per-request total timeout is set by the dispatcher; here only the connect
    bound, the connection pool and the endpoint policy are fixed.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        limit_per_host=0,
        ttl_dns_cache=300,
        keepalive_timeout=30,
        socket_factory=_policy_socket_factory(endpoint_policy(settings.endpoint_allow)),
    )
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_s)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        raise_for_status=False,
        trust_env=False,
    )


def _policy_socket_factory(policy: EndpointPolicy) -> SocketFactoryType:
    """Opens a socket only for an address `policy` allows; AddressNotAllowed otherwise."""

    def open_socket(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, address = addr_info
        host = str(address[0])
        if not policy.allows(host):
            raise AddressNotAllowed(host)
        return socket.socket(family=family, type=type_, proto=proto)

    return open_socket


def refused_by_policy(error: BaseException) -> bool:
    """True when `error` (an aiohttp connection error) came from the endpoint policy."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, AddressNotAllowed):
            return True
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, AddressNotAllowed):
            return True
        seen = seen.__cause__
    return False


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or RecognizerTooLarge as soon as it passes `limit` bytes.

    Never holds more than `limit` + one chunk; past the limit the connection is dropped
    (`response.close()`), so an endless or huge answer costs no more than that.
    """
    declared = response.content_length
    if declared is not None and declared <= limit:
        # The parser delivers no more than the declared length: one read, the fast path.
        return await response.read()
    if declared is not None:
        response.close()
        raise RecognizerTooLarge(f"answer is {declared} bytes, over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await response.content.read(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            response.close()
            raise RecognizerTooLarge(f"answer is over the {limit}-byte limit")
        chunks.append(chunk)


async def read_preview(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body; when more follows, the connection is dropped."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    if not response.content.at_eof():
        response.close()
    return b"".join(chunks)
