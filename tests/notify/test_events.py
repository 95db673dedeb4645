"""The outbox on SQLite and PostgreSQL: an event is written once whoever writes it again,
and a phase change (for gateway.challenges) reaches the providers with a URL and the
organizer."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, insert, select

from gateway.db import make_engine, utcnow
from gateway.migrate import upgrade
from gateway.notify.events import notify_phase
from gateway.notify.models import DELIVERIES, EVENTS
from gateway.runs.models import PROVIDERS


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def add_provider(engine: Engine, name: str, url: str | None) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(PROVIDERS)
                .values(
                    guid=f"00000000-0000-4000-8000-{len(name):04d}{abs(hash(name)) % 10**8:08d}",
                    name=name,
                    api_key_hash=name.ljust(64, "x"),
                    created_at=utcnow(),
                    notification_url=url,
                    notification_secret="s" if url else None,
                )
                .returning(PROVIDERS.c.id)
            ).scalar_one()
        )


def test_a_phase_change_is_written_once_for_the_providers_with_a_url(engine: Engine) -> None:
    told = add_provider(engine, "told", "https://team.example.org/hook")
    silent = add_provider(engine, "silent", None)
    at = utcnow()
    change = {
        "challenge": "dogs-2026",
        "phase": "final",
        "opened": True,
        "at": at,
        "provider_ids": [told, silent],
        "organizer_url": "https://organizer.example.org/hook",
    }
    with engine.begin() as conn:
        assert notify_phase(conn, **change) is True
        # Told again, in the same transaction and in another: a no-op that breaks nothing.
        assert notify_phase(conn, **change) is False
        conn.execute(select(1))
    with engine.begin() as conn:
        assert notify_phase(conn, **change) is False
        rows = conn.execute(
            select(DELIVERIES.c.provider_id, DELIVERIES.c.url, DELIVERIES.c.body).order_by(
                DELIVERIES.c.id
            )
        ).all()
        assert conn.scalar(select(func.count()).select_from(EVENTS)) == 1
    assert [(r.provider_id, r.url) for r in rows] == [
        (told, "https://team.example.org/hook"),
        (None, "https://organizer.example.org/hook"),
    ]
    body = rows[0].body
    assert (body["event"], body["challenge"], body["phase"]) == (
        "phase.opened",
        "dogs-2026",
        "final",
    )
    assert "services" not in body
