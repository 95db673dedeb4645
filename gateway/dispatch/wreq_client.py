"""The wreq transport of `gateway.dispatch.client` (`RECOGHUB_HTTP_CLIENT=wreq`).

The default transport. wreq: Python bindings of the Rust wreq client (hyper and
BoringSSL on a Tokio runtime of its own threads).
Every rule of SPEC §9 that `gateway.dispatch.client` states holds here too; see
`WreqClient` for how.
"""

import ipaddress
import re
from collections.abc import Mapping
from datetime import timedelta

import wreq
import wreq.exceptions
from wreq.dns import DnsOptions
from wreq.redirect import Policy
from wreq.runtime import Runtime
from wreq.tls import CertStore
from yarl import URL

from gateway.config import Settings
from gateway.dispatch.pinning import Destinations, PinnedClients
from gateway.dispatch.policy import endpoint_policy
from gateway.dispatch.transport import KEEPALIVE_S, Reply, SendFailed, system_roots, timeout_of
from gateway.errors import RecognizerTooLarge

_METHODS = {"GET": wreq.Method.GET, "POST": wreq.Method.POST, "HEAD": wreq.Method.HEAD}
# A host name wreq reads exactly as written: yarl has already lowercased it and turned an
# international name into its ASCII form. Anything else (`ex%41mple.test`) wreq would
# decode into another name and resolve itself, unchecked.
_PLAIN_NAME = re.compile(r"[a-z0-9._-]+")
# How wreq's debug text names its own timeout as an error's cause.
_TIMED_OUT = "source: TimedOut"
# wreq's errors share no base class; all but a timeout are a failed send.
_FAILURES: tuple[type[Exception], ...] = (
    wreq.exceptions.ConnectionError,
    wreq.exceptions.ConnectionResetError,
    wreq.exceptions.ProxyConnectionError,
    wreq.exceptions.TlsError,
    wreq.exceptions.BodyError,
    wreq.exceptions.DecodingError,
    wreq.exceptions.BuilderError,
    wreq.exceptions.RequestError,
    wreq.exceptions.RedirectError,
    wreq.exceptions.StatusError,
)


class WreqClient:
    """wreq: the HTTP work runs in Rust on its own threads, off the event loop.

    wreq resolves names itself and offers no hook between resolving and connecting, only
    fixed overrides (`DnsOptions.add_resolve`) given when a client is built; so the
    endpoint policy is kept by resolving and pinning (`gateway.dispatch.pinning`). wreq
    reads a URL's host as written (`0x7f.1` and `127.1` are names it resolves; its
    overrides are case-sensitive): the URL it is given is rebuilt by yarl, whose host
    is the name the hub resolves, and a name yarl would leave in another form than
    wreq's is refused.

    Cancelling a request aborts it: wreq drops the request's future and hyper closes
    the connection at once (tested in tests/dispatch/test_client.py). No redirects, no
    proxy from the environment, no decompression, HTTP/1.1 only (as aiohttp: a
    recognizer sees a cancelled request as its connection closing). A body is streamed
    and dropped past its bound, so it costs the bound plus one chunk of hyper's read
    buffer. BoringSSL trusts the system's default paths and the system CA file as
    aiohttp finds it.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # One Tokio worker for all of this client's connections. It keeps up with the one
        # event loop that sends through it; a worker per core (wreq's default) only adds
        # wake-ups and GIL hand-overs: on the benchmark's 2 cores the sending process
        # spent a tenth more CPU per request with two.
        self._runtime = Runtime(workers=1)
        self._policy = endpoint_policy(settings.endpoint_allow)
        roots = [pem.decode("ascii") for pem in system_roots()]
        self._certs = CertStore(pem_certs=roots or None, default_paths=True)
        self._literal = self._build()
        self._pins = PinnedClients(policy=self._policy, build=self._build, close=_close)
        # The URL wreq is given is yarl's normal form, so the host wreq reads is the one
        # resolved and checked.
        self._destinations = Destinations(
            policy=self._policy,
            parse=_parse,
            literal=self._literal,
            pins=self._pins,
            check_name=_check_name,
        )

    def _build(self, name: str | None = None, address: str | None = None) -> wreq.Client:
        """A client; with `name`, one whose only address for it is `address`."""
        dns = DnsOptions(system_dns=True)
        if name is not None and address is not None:
            dns.add_resolve(name, [ipaddress.ip_address(address)])
        settings = self._settings
        return wreq.Client(
            redirect=Policy.none(),
            no_proxy=True,
            referer=False,
            gzip=False,
            brotli=False,
            deflate=False,
            zstd=False,
            http1_only=True,
            connect_timeout=timedelta(seconds=settings.connect_timeout_s),
            pool_idle_timeout=timedelta(seconds=KEEPALIVE_S),
            pool_max_size=settings.max_connections,
            tls_verify=self._certs,
            dns_options=dns,
            runtime=self._runtime,
        )

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
        # wreq's request timeout runs from connecting to the body's last byte.
        timeout = timeout_of(timeout_s)
        try:
            request = (
                client.request(
                    _METHODS[method], destination.url, timeout=timeout, headers=headers or {}
                )
                if body is None
                else client.request(
                    _METHODS[method],
                    destination.url,
                    timeout=timeout,
                    headers=headers or {},
                    body=body,
                )
            )
            # Awaited, not entered (`async with`): its exit, one more await per request,
            # only closes the response, done here where a body is left unread.
            response = await request
            try:
                # The common answer, a 200 of declared length within the bound, read
                # here without another coroutine (hyper delivers no more than declared).
                if response.status.as_int() == 200:
                    declared = response.content_length
                    if declared is not None and declared <= limit:
                        return Reply(200, bytes(await response.bytes()))
                return await _answer(response, limit, preview)
            except BaseException:
                # Cut short (too large, cancelled): the connection is dropped, never
                # drained for reuse.
                await response.close()
                raise
        except wreq.exceptions.TimeoutError:
            raise TimeoutError from None
        except wreq.exceptions.ConnectionError as exc:
            self._destinations.refused(destination, client)
            raise SendFailed(_describe(exc)) from None
        except _FAILURES as exc:
            if _TIMED_OUT in str(exc):
                # The timeout struck while the body was read: wreq says BodyError.
                raise TimeoutError from None
            raise SendFailed(_describe(exc)) from None

    async def close(self) -> None:
        await self._pins.close()
        self._literal.close()


def _parse(url: URL | str) -> tuple[str, str]:
    """yarl's normal form of the URL, and its host."""
    parsed = url if isinstance(url, URL) else URL(url)
    host = parsed.raw_host or ""
    if parsed.scheme not in ("http", "https") or not host:
        raise SendFailed(f"not an http(s) URL with a host: {url}")
    return str(parsed), host


def _check_name(name: str) -> None:
    if not _PLAIN_NAME.fullmatch(name):
        raise SendFailed(
            f"cannot send to host {name!r}: a name may hold only letters, digits, '.', '-' and '_'"
        )


async def _close(client: wreq.Client) -> None:
    client.close()


async def _answer(response: wreq.Response, limit: int, preview: int) -> Reply:
    status = response.status.as_int()
    if status != 200:
        return Reply(status, await _read(response, preview, drop=True))
    declared = response.content_length
    if declared is not None and declared > limit:
        raise RecognizerTooLarge(f"answer is {declared} bytes, over the {limit}-byte limit")
    if declared is not None:
        # hyper delivers no more than the declared length.
        return Reply(200, bytes(await response.bytes()))
    return Reply(200, await _read(response, limit, drop=False))


async def _read(response: wreq.Response, limit: int, *, drop: bool) -> bytes:
    """At most `limit` bytes of the body. Past them: with `drop`, the first `limit` bytes
    (a preview) and the connection closed; without, RecognizerTooLarge."""
    chunks: list[bytes] = []
    size = 0
    async with response.stream() as stream:
        async for chunk in stream:
            if not isinstance(chunk, memoryview):
                continue  # trailers
            size += len(chunk)
            if size > limit:
                if not drop:
                    raise RecognizerTooLarge(f"answer is over the {limit}-byte limit")
                chunks.append(bytes(chunk[: len(chunk) - (size - limit)]))
                break
            chunks.append(bytes(chunk))
    if size > limit:
        await response.close()
    return b"".join(chunks)


def _describe(exc: Exception) -> str:
    """The error's root cause from wreq's debug text, e.g. "ConnectionError: tcp connect
    error: Connection refused"."""
    text = str(exc)
    what = re.search(r'ConnectError\("([^"]*)"', text)
    why = re.findall(r'(?:message|error|reason): "([^"]*)"', text)
    parts = [part for part in (what and what.group(1), why[-1] if why else None) if part]
    return f"{type(exc).__name__}: {': '.join(parts) if parts else text[:200]}"
