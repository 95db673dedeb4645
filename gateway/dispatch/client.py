"""The one HTTP client of a hub process, and how it talks to recognizers safely.

Everything the hub sends to a team's endpoint (runs, relay, check, ping) goes through
`HttpClient.fetch`, so the rules of SPEC §9 live here once, whichever library moves the
bytes (`RECOGHUB_HTTP_CLIENT`: HTTP done in Rust on threads of its own outside the GIL,
`wreq` (the default) in `gateway.dispatch.wreq_client` or `pyreqwest` in
`gateway.dispatch.reqwest_client`, both keeping the address policy by resolving and
pinning, `gateway.dispatch.pinning`; or `aiohttp` on the event loop, here):

- a connection is only ever opened to an address the endpoint policy allows, whether it
  came from the URL or from DNS, so a DNS answer that moves a name inside the organizer's
  network is refused like a literal address (`AddressNotAllowed`);
- a redirect is never followed: a 3xx is an answer;
- a 200's body is read whole only up to `limit` bytes (`RecognizerTooLarge` past that),
  another status's only up to `preview` bytes; past either the connection is dropped,
  so an endless or huge answer costs no more than the bound;
- the whole exchange, body included, ends within `timeout_s` (`TimeoutError`).

Errors of `fetch`: `RecognizerTooLarge`; `TimeoutError`; `AddressNotAllowed`; and
`SendFailed` for the rest (refused, reset, DNS, TLS, a broken body), its text saying what
happened. The three last are `OSError`s, the dispatcher's `connect_error`.
"""

import socket
from collections.abc import Mapping

import aiohttp
from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from yarl import URL

from gateway.config import Settings
from gateway.dispatch.policy import AddressNotAllowed, EndpointPolicy, endpoint_policy
from gateway.dispatch.transport import (
    DNS_TTL_S,
    KEEPALIVE_S,
    READ_CHUNK,
    HttpClient,
    Reply,
    SendFailed,
)
from gateway.errors import RecognizerTooLarge

# The interface lives in `transport` so that the transports need not import this module.
__all__ = ["AiohttpClient", "HttpClient", "Reply", "SendFailed", "make_client_session"]


def make_client_session(settings: Settings) -> HttpClient:
    """The client for all dispatch (runs, relay, check); create once, close once."""
    # The Rust transports are imported only when chosen (pyreqwest is an optional extra).
    if settings.http_client == "wreq":
        from gateway.dispatch.wreq_client import WreqClient

        return WreqClient(settings)
    if settings.http_client == "pyreqwest":
        from gateway.dispatch.reqwest_client import PyreqwestClient

        return PyreqwestClient(settings)
    return AiohttpClient(settings)


class AiohttpClient:
    """aiohttp on the event loop. The policy is checked by the socket factory, just before
    each socket connects: aiohttp never passes a literal address to a resolver, so a
    check in a custom resolver would miss those."""

    def __init__(self, settings: Settings) -> None:
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            limit_per_host=0,
            ttl_dns_cache=int(DNS_TTL_S),
            keepalive_timeout=KEEPALIVE_S,
            socket_factory=_policy_socket_factory(endpoint_policy(settings.endpoint_allow)),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_s),
            auto_decompress=False,
            raise_for_status=False,
            trust_env=False,
        )
        self._connect_timeout_s = settings.connect_timeout_s
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def fetch(
        self,
        method: str,
        url: URL | str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float,
        limit: int,
        preview: int,
    ) -> Reply:
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            timeout = self._timeouts[timeout_s] = aiohttp.ClientTimeout(
                total=timeout_s, sock_connect=min(timeout_s, self._connect_timeout_s)
            )
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if response.status != 200:
                    return Reply(response.status, await _aiohttp_preview(response, preview))
                return Reply(200, await _aiohttp_bounded(response, limit))
        except TimeoutError:
            raise
        except (aiohttp.ClientError, OSError) as exc:
            if _refused_by_policy(exc):
                raise AddressNotAllowed(str(url)) from exc
            raise SendFailed(_describe(exc)) from exc

    async def close(self) -> None:
        await self._session.close()


def _policy_socket_factory(policy: EndpointPolicy) -> SocketFactoryType:
    """Opens a socket only for an address `policy` allows; AddressNotAllowed otherwise."""

    def open_socket(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, address = addr_info
        host = str(address[0])
        if not policy.allows(host):
            raise AddressNotAllowed(host)
        return socket.socket(family=family, type=type_, proto=proto)

    return open_socket


def _refused_by_policy(error: BaseException) -> bool:
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


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _aiohttp_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
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
        chunk = await response.content.read(min(READ_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            response.close()
            raise RecognizerTooLarge(f"answer is over the {limit}-byte limit")
        chunks.append(chunk)


async def _aiohttp_preview(response: aiohttp.ClientResponse, limit: int) -> bytes:
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
