"""API shapes of providers and services, separate from the ORM tables.

Input is checked here so that a bad request fails with 422 naming the bad field (and,
for endpoints, the bad URL) before any database work.
"""

import ipaddress
import re
import uuid
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from gateway.registry.models import Provider, Service
from gateway.registry.protocols import (
    ProtocolName,
    ProtocolOptionsIn,
    normalized_protocol,
    protocol_problem,
)
from gateway.wire import NOT_BLANK, Name, UtcDateTime, not_blank, trimmed

# Lengths as sent, stored trimmed (see gateway.wire).
Contact = Annotated[str, Field(max_length=200), AfterValidator(trimmed)]
Domain = Annotated[
    str,
    Field(min_length=1, max_length=100, json_schema_extra={"pattern": NOT_BLANK}),
    AfterValidator(not_blank),
]
MaxConcurrency = Annotated[
    int,
    Field(
        ge=1,
        le=1024,
        description="Requests in flight to this service during a run. A provider may set at "
        "most RECOGHUB_SERVICE_CONCURRENCY_MAX (default 8), and its services together at most "
        "RECOGHUB_PROVIDER_CONCURRENCY_MAX (default 32; 422 `provider_concurrency_max` past "
        "it); it may always keep or lower a value. The organizer may set up to 1024.",
    ),
]

MAX_ENDPOINTS = 16
MAX_ENDPOINT_CHARS = 2048


def _invalid(kind: str, message: str) -> PydanticCustomError:
    # A custom error keeps pydantic's "Value error, " prefix out of the 422 detail.
    return PydanticCustomError(kind, message)


def canonical_guid(value: str) -> str | None:
    """The lower-case hyphenated form of a UUID, or None when `value` is not one."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        return None


def _check_guid(value: str) -> str:
    guid = canonical_guid(value)
    if guid is None:
        raise _invalid(
            "invalid_guid", f"{value!r} is not a valid GUID (UUID such as {uuid.uuid4()})"
        )
    return guid


def _bad_endpoint(url: str, problem: str) -> PydanticCustomError:
    return _invalid("invalid_endpoint", f"endpoint {url!r} {problem}")


# A DNS name as the hub accepts it: ASCII letters, digits, hyphens and underscores (some
# container networks name hosts `team_a`) in labels of at most 63, an optional final dot
# (IDNs in their xn-- form).
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
# A host whose last label is a number is an IPv4 address to URL parsers (WHATWG), and
# the short, integer, octal and hex forms (127.1, 2130706433, 0, 0x7f.1) are ambiguous
# ways to write one: only the four-decimal form is accepted.
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)")
# host[:port], the host a name or address, or [IPv6][:port]: nothing else in a netloc.
_NETLOC = re.compile(r"(?:\[(?P<ipv6>[^\]]*)\]|(?P<host>[^:\[\]]+))(?::(?P<port>[0-9]{1,5}))?")


def _host_problem(host: str, *, bracketed: bool) -> str | None:
    """What is wrong with the host of an endpoint (lower-case, brackets removed), or None."""
    if bracketed:
        if "%" in host:
            return "has an IPv6 zone (%...); zones are local to one machine"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "has a malformed IPv6 address"
        return None
    labels = host.removesuffix(".").split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            canonical = str(ipaddress.IPv4Address(host)) == host
        except ValueError:
            canonical = False
        if not canonical:
            return "has a non-canonical IPv4 address; write it as four decimal numbers (a.b.c.d)"
        return None
    if not host.isascii():
        return "has a non-ASCII host; write an internationalized name in its xn-- form"
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "has a malformed host name"
    return None


def check_endpoint(url: str) -> str:
    """A recognizer's base URL, normalized (no trailing '/').

    Only canonical URLs pass: http or https, a normal host (a DNS name, a four-part IPv4
    address or a bracketed IPv6 one), a port in range, no credentials, query, fragment,
    white space or control characters. Whether the hub may send to the address is the
    endpoint policy's question (`gateway.dispatch.policy`), asked by the registry.
    Raises PydanticCustomError saying what is wrong with it.
    """
    text = url.strip()
    if len(text) > MAX_ENDPOINT_CHARS:
        raise _bad_endpoint(url[:80] + "...", f"is longer than {MAX_ENDPOINT_CHARS} characters")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise _bad_endpoint(url, "contains white space or control characters")
    if "\\" in text:
        raise _bad_endpoint(url, "contains a backslash")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _bad_endpoint(url, f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not text.lower().startswith(
        f"{parts.scheme.lower()}://"
    ):
        raise _bad_endpoint(url, "must start with http:// or https://")
    if not parts.hostname:
        raise _bad_endpoint(url, "has no host")
    if "@" in parts.netloc:
        raise _bad_endpoint(url, "must not carry credentials (user:password@)")
    if parts.query or "?" in text:
        raise _bad_endpoint(url, "must not have a query (?...)")
    if parts.fragment or "#" in text:
        raise _bad_endpoint(url, "must not have a fragment (#...)")
    netloc = _NETLOC.fullmatch(parts.netloc)
    if netloc is None:
        raise _bad_endpoint(url, "has a malformed host or port")
    bracketed = netloc["ipv6"] is not None
    problem = _host_problem((netloc["ipv6"] or netloc["host"]).lower(), bracketed=bracketed)
    if problem is not None:
        raise _bad_endpoint(url, problem)
    if port == 0:
        raise _bad_endpoint(url, "has port 0")
    return text.rstrip("/")


def _check_endpoints(urls: list[str]) -> list[str]:
    checked: list[str] = []
    for url in urls:
        endpoint = check_endpoint(url)
        if endpoint in checked:
            raise _bad_endpoint(url, "is listed twice")
        checked.append(endpoint)
    return checked


# Documented as what it is, a UUID (any spelling Python's uuid.UUID reads is taken).
Guid = Annotated[str, AfterValidator(_check_guid), Field(json_schema_extra={"format": "uuid"})]
# None is fine: a service served only by recognizers connected out to the hub (SPEC §10).
# The schema states the shape `check_endpoint` holds a URL to: the pattern cannot say it
# all (a port up to 65535, host labels not starting or ending with a hyphen, an IPv4
# address as four decimal numbers, no non-ASCII white space), the description does.
ENDPOINT_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?"
    r"(/[^\x00-\x20\x7f?#\\]*)?$"
)
Endpoint = Annotated[
    str,
    Field(
        json_schema_extra={"pattern": ENDPOINT_PATTERN, "maxLength": MAX_ENDPOINT_CHARS},
        description="A recognizer's base URL: http or https, a DNS name (ASCII, xn-- for "
        "IDNs; labels of letters, digits, - and _, not starting or ending with -), a "
        "four-number IPv4 address or a bracketed IPv6 one, an optional port 1-65535 and "
        "path; no credentials, query, fragment, white space, control characters or "
        "backslash; each listed once. Loopback, private and link-local addresses are "
        "refused (422 `endpoint_not_allowed`) unless RECOGHUB_ENDPOINT_ALLOW lists them.",
    ),
]
Endpoints = Annotated[
    list[Endpoint], Field(max_length=MAX_ENDPOINTS), AfterValidator(_check_endpoints)
]


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    contact: Contact | None = None
    guid: Guid | None = Field(default=None, description="Optional; generated when absent.")


class ProviderRead(BaseModel):
    guid: str
    name: str
    contact: str | None
    created_at: UtcDateTime
    services: list[str] = Field(description="GUIDs of the provider's services.")
    notification_url: str | None = Field(
        default=None, description="Where the hub posts the team's events; null: none."
    )

    @classmethod
    def of(cls, provider: Provider, **extra: object) -> Self:
        return cls(
            guid=provider.guid,
            name=provider.name,
            contact=provider.contact,
            created_at=provider.created_at,
            services=[s.guid for s in provider.services],
            notification_url=provider.notification_url,
            **extra,
        )


class ProviderReadWithKey(ProviderRead):
    """The answer to creating a provider: the only time its API key is shown."""

    api_key: str


class ServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_guid: str
    name: Name
    endpoints: Endpoints = Field(
        default_factory=list,
        description="Base URLs; none for a service whose recognizers connect out (SPEC §10).",
    )
    domain: Domain | None = None
    guid: Guid | None = Field(default=None, description="Optional; generated when absent.")
    protocol: ProtocolName = Field(
        default="recoghub-v1", description='How the hub talks to it (SPEC §11); "v1" = recoghub-v1.'
    )
    protocol_options: ProtocolOptionsIn | None = None
    max_concurrency: MaxConcurrency | None = None

    @model_validator(mode="after")
    def _protocol_fits(self) -> Self:
        self.protocol = normalized_protocol(self.protocol)  # type: ignore[assignment]
        problem = protocol_problem(self.protocol, self.protocol_options)
        if problem:
            raise _invalid("invalid_protocol", problem)
        return self


class ServiceUpdate(BaseModel):
    """Fields left out are unchanged; `domain: null` clears the domain."""

    model_config = ConfigDict(extra="forbid")

    # null is refused for these (`_no_null_for_required`), so the schema offers none.
    name: Name | SkipJsonSchema[None] = None
    endpoints: Endpoints | SkipJsonSchema[None] = None
    enabled: StrictBool | SkipJsonSchema[None] = None
    domain: Domain | None = None
    max_concurrency: MaxConcurrency | SkipJsonSchema[None] = None
    protocol: ProtocolName | SkipJsonSchema[None] = Field(
        default=None,
        description="Changing it needs protocol_options that fit (except to recoghub-v1, "
        "which drops them).",
    )
    protocol_options: ProtocolOptionsIn | None = Field(
        default=None, description="Replace the options whole; null or {} clears them."
    )
    rotate_secret: StrictBool = False

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        for name in ("name", "endpoints", "enabled", "max_concurrency", "protocol"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise _invalid("null_field", f"{name} cannot be null; leave it out to keep it")
        return self


class ServiceRead(BaseModel):
    guid: str
    provider_guid: str
    provider_name: str
    name: str
    endpoints: list[str]
    domain: str | None
    protocol: str
    protocol_options: dict[str, Any] = Field(description="As given; {} for none (SPEC §11).")
    enabled: bool
    max_concurrency: int
    created_at: UtcDateTime
    connected: list[str] | None = Field(
        default=None,
        description="GET of one service only: the recognizers connected out to the hub "
        "process that answered (SPEC §10), by instance name; [] for none; null in lists.",
    )

    @classmethod
    def of(cls, service: Service, **extra: Any) -> Self:
        return cls(
            guid=service.guid,
            provider_guid=service.provider.guid,
            provider_name=service.provider.name,
            name=service.name,
            endpoints=service.endpoints,
            domain=service.domain,
            protocol=normalized_protocol(service.protocol),
            protocol_options=service.protocol_options or {},
            enabled=service.enabled,
            max_concurrency=service.max_concurrency,
            created_at=service.created_at,
            **extra,
        )


class ServiceReadWithSecret(ServiceRead):
    """Shown at creation and when the secret is rotated: the HMAC key requests are signed with."""

    signing_secret: str


class CallerRead(BaseModel):
    """Who a token is: the organizer, or a provider (with its own record)."""

    role: Literal["organizer", "provider"]
    provider: ProviderRead | None = Field(
        description="The provider's record; null for the organizer."
    )
