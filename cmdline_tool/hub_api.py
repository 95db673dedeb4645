"""How the team tool talks to the hub: one `httpx.AsyncClient`, every failure a CliError.

`HubClient.request` turns transport failures into "hub" CliErrors (unreachable, timed
out, connection broken); an error answer of the hub is explained by `refusals.refusal`.
"""

from types import TracebackType
from typing import Any

import httpx

from cmdline_tool.errors import CliError
from cmdline_tool.refusals import Subject, json_body, refusal

API = "/api/v1"


def normalize_hub_url(url: str | None) -> str:
    """`host:port`, `http://host:port/` and `.../api/v1` all name the same hub."""
    if not url or not url.strip():
        raise CliError("local", "usage", "no hub URL given", "pass --hub URL or set RECOGHUB_HUB")
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    url = url.rstrip("/")
    if url.endswith(API):
        url = url[: -len(API)]
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise CliError(
            "local",
            "usage",
            f"{url} is not a usable hub URL ({exc})",
            "pass --hub http://host:port",
        ) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CliError(
            "local", "usage", f"{url} is not a usable hub URL", "pass --hub http://host:port"
        )
    return url


def require_key(key: str | None) -> str:
    if not key or not key.strip():
        raise CliError(
            "local",
            "usage",
            "no API key given",
            "pass --key or set RECOGHUB_API_KEY (the key shown when your provider was created)",
        )
    return key.strip()


def require_guid(guid: str | None, option: str, envvar: str) -> str:
    if not guid or not guid.strip():
        raise CliError(
            "local", "usage", f"no {option} GUID given", f"pass {option} or set {envvar}"
        )
    return guid.strip()


class HubClient:
    """One long-lived client for one hub, closed once (use `async with`)."""

    def __init__(self, url: str, *, key: str | None, timeout_s: float, connections: int = 8):
        self.url = url
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.AsyncClient(
            base_url=url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def __aenter__(self) -> "HubClient":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send `method API+path`; transport failures become "hub" CliErrors."""
        try:
            return await self._client.request(method, API + path, **kwargs)
        except httpx.ConnectError:
            raise self.unreachable() from None
        except httpx.ConnectTimeout:
            raise self.unreachable() from None
        except httpx.TimeoutException:
            raise CliError(
                "hub",
                "hub_timeout",
                f"the hub at {self.url} did not answer within {self.timeout_s:g} s",
                "raise --timeout, or ask the organizer whether the hub is overloaded",
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(
                "hub",
                "hub_error",
                f"the connection to the hub at {self.url} broke ({_describe(exc)})",
                "try again; if it keeps happening, check --hub or tell the organizer",
            ) from None

    def stream(self, method: str, path: str, **kwargs: Any) -> Any:
        """`method API+path` as a streamed answer (`async with`); a failure to connect is
        the "hub" CliError as for `request`."""
        return _Streamed(self, self._client.stream(method, API + path, **kwargs))

    def unreachable(self) -> CliError:
        return CliError(
            "hub",
            "hub_unreachable",
            f"cannot reach the hub at {self.url}",
            "is it running? check --hub / RECOGHUB_HUB",
        )

    async def ping(self) -> dict[str, Any]:
        response = await self.request("GET", "/ping")
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict) or "status" not in body:
            raise refusal(response, self.url)
        return body

    async def provider(self, guid: str) -> dict[str, Any]:
        """The caller's provider, checked once so that GUID mix-ups are named early."""
        response = await self.request("GET", f"/providers/{guid}")
        if response.status_code != 200:
            raise refusal(response, self.url, Subject("provider", guid, "--provider"))
        body = json_body(response)
        return body if isinstance(body, dict) else {}

    async def whoami(self) -> dict[str, Any]:
        """Who the key is (GET /whoami): the organizer, or a provider with its record."""
        response = await self.request("GET", "/whoami")
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise refusal(response, self.url)
        return body

    async def check(self, service_guid: str) -> dict[str, Any]:
        response = await self.request("POST", f"/services/{service_guid}/check")
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise refusal(response, self.url, Subject("service", service_guid, "--service"))
        return body

    async def call(
        self,
        method: str,
        path: str,
        subject: Subject | None = None,
        *,
        expect: int = 200,
        **kwargs: Any,
    ) -> Any:
        """`method API+path` answered with status `expect`: its JSON body (None for 204);
        any other answer becomes the CliError that explains it."""
        response = await self.request(method, path, **kwargs)
        if response.status_code != expect:
            raise refusal(response, self.url, subject)
        if expect == 204:
            return None
        body = json_body(response)
        if body is None:
            raise refusal(response, self.url, subject)
        return body


def team_client(hub: str | None, key: str | None, timeout: float) -> HubClient:
    """A client for a team's (or the organizer's) requests: hub URL and key checked first."""
    return HubClient(normalize_hub_url(hub), key=require_key(key), timeout_s=timeout)


def run_subject(run_id: int) -> Subject:
    """What a refusal about run `run_id` names: "run 12" with the RUN argument."""
    return Subject("run", str(run_id), "RUN")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Streamed:
    """An httpx stream whose connection failures are the client's CliErrors."""

    def __init__(self, client: HubClient, context: Any) -> None:
        self._client = client
        self._context = context

    async def __aenter__(self) -> httpx.Response:
        try:
            response: httpx.Response = await self._context.__aenter__()
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise self._client.unreachable() from None
        return response

    async def __aexit__(self, *exc: object) -> None:
        await self._context.__aexit__(*exc)
