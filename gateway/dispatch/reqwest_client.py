"""The pyreqwest transport of `gateway.dispatch.client` (`RECOGHUB_HTTP_CLIENT=pyreqwest`).

Imported only when chosen: pyreqwest is the optional extra `recoghub[pyreqwest]`. Every
rule of SPEC §9 that `gateway.dispatch.client` states holds here too; see
`PyreqwestClient` for how the endpoint policy reaches the address actually connected to.
"""

from collections.abc import Mapping
from datetime import timedelta

import pyreqwest.client
import pyreqwest.exceptions
import pyreqwest.http
import pyreqwest.response
from yarl import URL

from gateway.config import Settings
from gateway.dispatch.pinning import Destinations, PinnedClients
from gateway.dispatch.policy import endpoint_policy
from gateway.dispatch.transport import (
    KEEPALIVE_S,
    READ_CHUNK,
    Reply,
    SendFailed,
    system_roots,
    timeout_of,
)
from gateway.errors import RecognizerTooLarge


class PyreqwestClient:
    """pyreqwest: the HTTP work runs in Rust on its own thread, off the event loop.

    reqwest offers no hook between resolving a name and connecting, so the endpoint
    policy is kept by resolving and pinning (`gateway.dispatch.pinning`). The name is the
    host as reqwest itself parses the URL, so the two cannot differ (its URL parser turns
    `0x7f.1` into 127.0.0.1, a literal it would not resolve).

    Not the default: cancelling a request (a run's deadline, shutdown) does not abort it
    in pyreqwest 0.15.1; it runs on until its own timeout with nobody reading the answer,
    where aiohttp and wreq drop the connection at once.

    rustls trusts its own bundled roots; the system's CA file (`SSL_CERT_FILE`, or
    OpenSSL's default, where an organizer adds a lab CA) is added to them as for aiohttp.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._policy = endpoint_policy(settings.endpoint_allow)
        self._roots = system_roots()
        self._literal = self._build()
        self._pins = PinnedClients(policy=self._policy, build=self._build, close=_close)
        self._destinations = Destinations(
            policy=self._policy, parse=_parse, literal=self._literal, pins=self._pins
        )

    def _build(
        self, name: str | None = None, address: str | None = None
    ) -> pyreqwest.client.Client:
        """A client (some 0.1 s of CPU, without the GIL: built off the event loop)."""
        settings = self._settings
        builder = (
            pyreqwest.client.ClientBuilder()
            .follow_redirects(False)
            .no_proxy()
            .referer(False)
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .connect_timeout(timedelta(seconds=settings.connect_timeout_s))
            .max_connections(settings.max_connections)
            .pool_idle_timeout(timedelta(seconds=KEEPALIVE_S))
        )
        for root in self._roots:
            builder = builder.add_root_certificate_pem(root)
        if name is not None and address is not None:
            # Port 0: the URL's port (or its scheme's) is used.
            builder = builder.resolve(name, address, 0)
        return builder.build()

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
        destination = self._destinations.get(url)
        client = self._destinations.ready(destination)
        if client is None:
            client = await self._destinations.client(destination)
        builder = client.request(method, destination.url).timeout(timeout_of(timeout_s))
        if headers:
            builder = builder.headers(headers)
        if body is not None:
            builder = builder.body_bytes(body)
        try:
            async with builder.build_streamed() as response:
                status = response.status
                if status != 200:
                    return Reply(status, await _pyreqwest_read(response, preview, drop=True))
                declared = response.get_header("content-length")
                if declared is not None and int(declared) > limit:
                    raise RecognizerTooLarge(
                        f"answer is {declared} bytes, over the {limit}-byte limit"
                    )
                if declared is not None:
                    # reqwest delivers no more than the declared length.
                    return Reply(200, (await response.bytes()).to_bytes())
                return Reply(200, await _pyreqwest_read(response, limit, drop=False))
        except pyreqwest.exceptions.RequestTimeoutError:
            raise TimeoutError from None
        except pyreqwest.exceptions.ConnectError as exc:
            self._destinations.refused(destination, client)
            raise SendFailed(_pyreqwest_describe(exc)) from None
        except pyreqwest.exceptions.PyreqwestError as exc:
            raise SendFailed(_pyreqwest_describe(exc)) from None

    async def close(self) -> None:
        await self._pins.close()
        await self._literal.close()


def _parse(url: URL | str) -> tuple[pyreqwest.http.Url, str]:
    """The URL as reqwest parses it, and its host as reqwest reads it."""
    parsed = pyreqwest.http.Url(str(url))
    return parsed, parsed.host_str or ""


async def _close(client: pyreqwest.client.Client) -> None:
    await client.close()


async def _pyreqwest_read(
    response: pyreqwest.response.Response, limit: int, *, drop: bool
) -> bytes:
    """At most `limit` bytes of the body. Past them: with `drop`, the first `limit` bytes
    (a preview); without, RecognizerTooLarge. Leaving the response unread drops its
    connection."""
    chunks: list[bytes] = []
    size = 0
    reader = response.body_reader
    while True:
        chunk = await reader.read(min(READ_CHUNK, limit + 1 - size))
        if chunk is None:
            return b"".join(chunks)
        data = chunk.to_bytes()
        size += len(data)
        if size > limit:
            if drop:
                chunks.append(data[: len(data) - (size - limit)])
                return b"".join(chunks)
            raise RecognizerTooLarge(f"answer is over the {limit}-byte limit")
        chunks.append(data)


def _pyreqwest_describe(exc: pyreqwest.exceptions.PyreqwestError) -> str:
    """The error's root cause, e.g. "ConnectError: Connection refused (os error 111)"."""
    details = getattr(exc, "details", None) or {}
    causes = details.get("causes") or []
    text = causes[-1]["message"] if causes else exc.message
    return f"{type(exc).__name__}: {text}"
