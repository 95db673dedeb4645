"""The one shared aiohttp session of a hub process, with explicit limits and timeouts."""

import aiohttp

from gateway.config import Settings


def make_client_session(settings: Settings) -> aiohttp.ClientSession:
    """A session for all dispatch (runs, relay, check); create once, close once.

    The per-request total timeout is set by the dispatcher; here only the connect
    bound and the connection pool are fixed.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        limit_per_host=0,
        ttl_dns_cache=300,
        keepalive_timeout=30,
    )
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout_s)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        raise_for_status=False,
        trust_env=False,
    )
