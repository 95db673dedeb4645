"""Phase events (issue 20): `phase.opened` and `phase.closed`, derived from the
challenge tables as run events are from the run tables (gateway.notify.events).

A phase opens by the clock alone (nothing is written at `opens_at`) and closes when
someone sets `closed_at` (gateway.challenges.closing, whoever comes first), so the
notifier reads both here on each tick rather than being called from either place: a
phase that opened or closed while no notifier ran is told when one runs again (within
`HORIZON`), and the outbox's unique key tells each change once, whatever the number of
hub processes. The providers told are those enrolled in the challenge (every provider,
or the challenge's list) that set a URL, and the organizer.
"""

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, and_, or_, select

from gateway.challenges.models import Challenge, ChallengePhase, ChallengeProvider
from gateway.notify.events import HORIZON, notify_phase, phase_key
from gateway.notify.models import EVENTS
from gateway.runs.models import PROVIDERS

PHASES = ChallengePhase.__table__
CHALLENGES = Challenge.__table__
ENROLLED = ChallengeProvider.__table__


class Change(NamedTuple):
    at: datetime
    key: str
    opened: bool
    challenge_id: int
    challenge: str
    phase: str
    opens_at: datetime
    closes_at: datetime


def _changes(conn: Connection, *, now: datetime) -> list[Change]:
    since = now - HORIZON
    rows = conn.execute(
        select(
            PHASES.c.name,
            PHASES.c.opens_at,
            PHASES.c.closes_at,
            PHASES.c.closed_at,
            CHALLENGES.c.id.label("challenge_id"),
            CHALLENGES.c.slug,
        )
        .join(CHALLENGES, CHALLENGES.c.id == PHASES.c.challenge_id)
        .where(
            or_(
                and_(PHASES.c.opens_at >= since, PHASES.c.opens_at <= now),
                PHASES.c.closed_at >= since,
            )
        )
    )
    found = []
    for row in rows:
        window = (row.opens_at, row.closes_at)
        for opened, at in ((True, row.opens_at), (False, row.closed_at)):
            if at is None or not since <= at <= now:
                continue
            key = phase_key(challenge=row.slug, phase=row.name, opened=opened, at=at)
            found.append(Change(at, key, opened, row.challenge_id, row.slug, row.name, *window))
    return found


def _enrolled(conn: Connection, *, challenge_ids: set[int]) -> dict[int, list[int]]:
    """Challenge id -> the ids of its enrolled providers that set a notification URL."""
    with_url = PROVIDERS.c.notification_url.is_not(None)
    everyone: list[int] | None = None
    found: dict[int, list[int]] = {}
    for challenge in conn.execute(
        select(CHALLENGES.c.id, CHALLENGES.c.all_providers).where(
            CHALLENGES.c.id.in_(sorted(challenge_ids))
        )
    ):
        if challenge.all_providers:
            if everyone is None:
                everyone = list(conn.scalars(select(PROVIDERS.c.id).where(with_url)))
            found[challenge.id] = everyone
        else:
            found[challenge.id] = list(
                conn.scalars(
                    select(ENROLLED.c.provider_id)
                    .join(PROVIDERS, PROVIDERS.c.id == ENROLLED.c.provider_id)
                    .where(ENROLLED.c.challenge_id == challenge.id, with_url)
                )
            )
    return found


def collect_phases(conn: Connection, *, now: datetime, organizer_url: str | None) -> int:
    """Write to the outbox every phase opening and closing of the last `HORIZON` not
    written yet; returns how many were written (by this call)."""
    changes = _changes(conn, now=now)
    if not changes:
        return 0
    # Known keys are skipped before writing: a duplicate insert is harmless but costs a
    # savepoint and a logged error on PostgreSQL on every tick.
    known = set(
        conn.scalars(select(EVENTS.c.key).where(EVENTS.c.key.in_(sorted(c.key for c in changes))))
    )
    new = sorted(c for c in changes if c.key not in known)
    if not new:
        return 0
    enrolled = _enrolled(conn, challenge_ids={c.challenge_id for c in new})
    written = 0
    for change in new:
        written += notify_phase(
            conn,
            challenge=change.challenge,
            phase=change.phase,
            opened=change.opened,
            at=change.at,
            provider_ids=enrolled[change.challenge_id],
            organizer_url=organizer_url,
            window=(change.opens_at, change.closes_at),
        )
    return written
