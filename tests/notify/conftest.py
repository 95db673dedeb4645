"""The notification tests' hub and receiver: a hub that notifies quickly, telling the
organizer at the receiver's /organizer, and how a team sets its webhook."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.builders import bearer
from tests.conftest import _serve_hub
from tests.notify.receiver import Receiver, running_receiver
from tests.servers import LiveServer

ORGANIZER_SECRET = "organizer-webhook-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def notifying_hub(database_url: str, tmp_path: Path, receiver: Receiver) -> Iterator[LiveServer]:
    """A hub whose breaker trips and probes quickly, telling the organizer at /organizer."""
    yield from _serve_hub(
        database_url,
        tmp_path / "data",
        breaker_failures=3,
        breaker_probe_s=0.05,
        breaker_probe_max_s=0.2,
        request_timeout_s=0.5,
        notify_poll_s=0.1,
        notify_retry_s=0.1,
        notify_timeout_s=1.0,
        organizer_webhook_url=f"{receiver.url}/organizer",
        organizer_webhook_secret=ORGANIZER_SECRET,
    )


def set_webhook(client: httpx.Client, provider: str, key: str, url: str) -> str:
    r = client.patch(
        f"/api/v1/providers/{provider}", json={"notification_url": url}, headers=bearer(key)
    )
    assert r.status_code == 200, r.text
    assert r.json()["notification_url"] == url
    secret: str = r.json()["notification_secret"]
    return secret
