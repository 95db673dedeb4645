"""API shapes of a provider's notifications, apart from the tables."""

from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from gateway.registry.models import Provider
from gateway.registry.schemas import ProviderRead, check_endpoint


def _webhook(url: str) -> str:
    check_endpoint(url)  # 422 naming what is wrong; the address policy is the service's
    return url.strip()


WebhookUrl = Annotated[str, AfterValidator(_webhook)]


class ProviderUpdate(BaseModel):
    """Fields left out are unchanged; `notification_url: null` stops the notifications."""

    model_config = ConfigDict(extra="forbid")

    notification_url: WebhookUrl | None = Field(
        default=None,
        description="Where the hub posts this team's events (http or https, checked like "
        "a service endpoint, SPEC §9); null to stop.",
    )

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "nothing_to_change", "nothing to change: give notification_url (null to stop)"
            )
        return self


class ProviderNotifyRead(ProviderRead):
    """A provider after its notification URL changed; the secret appears only when this
    request made one (the first URL set), as rotating it shows it."""

    notification_secret: str | None = Field(
        default=None,
        description="The HMAC key events are signed with (X-Recog-Signature); shown once.",
    )


class NotificationSecretRead(BaseModel):
    provider_guid: str
    notification_secret: str = Field(description="Shown only now; the old one stops at once.")

    @classmethod
    def of(cls, provider: Provider) -> Self:
        assert provider.notification_secret is not None
        return cls(provider_guid=provider.guid, notification_secret=provider.notification_secret)


class NotificationTestRead(BaseModel):
    """How the team's receiver answered one `test` event, posted at once."""

    url: str
    delivered: bool = Field(description="The receiver answered 2xx.")
    status: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    detail: str | None = Field(description="What went wrong, when it did.")
