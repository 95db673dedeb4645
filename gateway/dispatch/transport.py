"""What every transport of the hub's HTTP client shares: the interface, its answer, its
error and its bounds (the rules themselves are stated in `gateway.dispatch.client`).

A module of its own so that the transports (`client.py`'s aiohttp, `reqwest_client.py`,
`wreq_client.py`) import it and not each other: `client.make_client_session` imports the
optional ones only when chosen.
"""

import functools
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from yarl import URL

READ_CHUNK = 16384
# How long a DNS answer is used before the name is resolved (and checked) again.
DNS_TTL_S = 300.0
KEEPALIVE_S = 30.0


@functools.lru_cache(maxsize=64)
def timeout_of(seconds: float) -> timedelta:
    """A request timeout as the Rust transports take it (a run has one or two)."""
    return timedelta(seconds=seconds)


class SendFailed(OSError):
    """The request was not answered: refused, reset, DNS, TLS, or a body cut short."""


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs three times as much
class Reply:
    """An answer: a 200's whole body, or the first `preview` bytes of another's."""

    status: int
    body: bytes


class HttpClient(Protocol):
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
        """Send one request and read its answer within the bounds of SPEC §9."""
        ...

    async def close(self) -> None: ...


def system_roots() -> tuple[bytes, ...]:
    """The PEM certificates of the system's CA file, as OpenSSL (and so aiohttp) finds it
    (`SSL_CERT_FILE`, or OpenSSL's default, where an organizer adds a lab CA): the Rust
    transports trust them beside their own bundled roots."""
    paths = ssl.get_default_verify_paths()
    cafile = os.environ.get(paths.openssl_cafile_env) or paths.cafile
    try:
        text = Path(cafile).read_bytes() if cafile else b""
    except OSError:
        return ()
    return tuple(
        re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    )
