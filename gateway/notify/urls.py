"""A webhook URL is held to the rules of a service endpoint (SPEC §9): the same canonical
form (`registry.schemas.check_endpoint`: http or https, no credentials, query or
fragment) and the same address policy, for the literal address here and for every
resolved address when it is posted to (`gateway.dispatch.client`)."""

from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

from gateway.dispatch.policy import SETTING, endpoint_policy
from gateway.registry.schemas import check_endpoint


def checked_webhook_url(url: str, *, allow: str, field: str) -> str:
    """`url` normalized, for a setting: ValueError naming `field` when it is malformed
    or its literal address is one the policy (`allow`) refuses."""
    try:
        checked = check_endpoint(url)
    except PydanticCustomError as exc:
        raise ValueError(f"{field}: {exc.message().replace('endpoint', 'URL', 1)}") from None
    host = urlsplit(checked).hostname or ""
    try:
        reason = endpoint_policy(allow).refusal(host)
    except ValueError:
        return checked  # a name: checked at each connection
    if reason is not None:
        raise ValueError(
            f"{field}: {checked!r} names {reason} ({host}); allow its network in {SETTING}"
        )
    return checked
