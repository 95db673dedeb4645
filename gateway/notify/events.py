"""Which events the hub tells, and to whom: each becomes one outbox event (unique key)
and one delivery per URL (gateway.notify.models).

    service.down / service.up   a run service paused by the breaker / back (SPEC §9)
    run.started / run.ended     a run that includes the provider's services
    phase.opened / phase.closed a challenge's phase opened or closed (gateway.notify.phases)
    test                        sent at once by `POST /providers/{guid}/notification-test`

A provider is told of its own services only; the organizer's URL
(`RECOGHUB_ORGANIZER_WEBHOOK_URL`) gets every event, with every service.

Run and breaker events are *derived*: `collect` reads what happened from the run tables
and the down intervals, so the dispatch engine does nothing for them but record a down
interval (phase events likewise, from the challenge tables: gateway.notify.phases), and
an event that happened while no notifier ran is told when one runs again
(up to `HORIZON` later; older happenings are news to no one).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select
from sqlalchemy.exc import IntegrityError

from gateway.notify.models import DELIVERIES, DOWNTIMES, EVENTS
from gateway.runs.exports import iso
from gateway.runs.models import (
    PROVIDERS,
    RUN_SERVICES,
    RUNS,
    SERVICES,
    STOPPED_RUN_STATES,
    RunState,
)

HORIZON = timedelta(hours=24)
ENDED_STATES = frozenset({RunState.COMPLETED, *STOPPED_RUN_STATES})


@dataclass(frozen=True, slots=True)
class Member:
    """A service as an event names it, with its provider's URL (None: not told)."""

    provider_id: int
    provider_guid: str
    provider_name: str
    notification_url: str | None
    service_guid: str
    service_name: str
    status: str | None = None

    def wire(self) -> dict[str, Any]:
        shown = {
            "service_guid": self.service_guid,
            "service_name": self.service_name,
            "provider_guid": self.provider_guid,
            "provider_name": self.provider_name,
        }
        return shown if self.status is None else {**shown, "status": self.status}


def emit(
    conn: Connection,
    *,
    key: str,
    kind: str,
    at: datetime,
    members: Sequence[Member],
    organizer_url: str | None,
    fields: dict[str, Any] | None = None,
    name_services: bool = True,
) -> bool:
    """Write one event to the outbox: a delivery for each provider of `members` that set
    a URL (naming only its own services) and one for the organizer's URL (naming all).
    Returns False when the event was already written (by this process or another)."""
    try:
        with conn.begin_nested():  # a duplicate key fails alone, not the caller's transaction
            event_id = conn.execute(
                insert(EVENTS).values(key=key, kind=kind, created_at=at).returning(EVENTS.c.id)
            ).scalar_one()
    except IntegrityError:
        return False
    extra = fields or {}
    base = {"event": kind, "id": key, "at": iso(at), **extra}
    rows: list[dict[str, Any]] = []
    by_provider: dict[int, list[Member]] = {}
    for member in members:
        by_provider.setdefault(member.provider_id, []).append(member)
    for provider_id, own in by_provider.items():
        url = own[0].notification_url
        if url:
            body = {**base, "services": [m.wire() for m in own]} if name_services else base
            rows.append({"provider_id": provider_id, "url": url, "body": body})
    if organizer_url:
        body = {**base, "services": [m.wire() for m in members]} if name_services else base
        rows.append({"provider_id": None, "url": organizer_url, "body": body})
    if rows:
        conn.execute(
            insert(DELIVERIES),
            [
                {
                    **row,
                    "event_id": event_id,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                }
                for row in rows
            ],
        )
    return True


def phase_key(*, challenge: str, phase: str, opened: bool, at: datetime) -> str:
    """The outbox key of a phase change: one event per phase, direction and time."""
    return f"phase:{challenge}:{phase}:{'opened' if opened else 'closed'}:{iso(at)}"


def notify_phase(
    conn: Connection,
    *,
    challenge: str,
    phase: str,
    opened: bool,
    at: datetime,
    provider_ids: Iterable[int],
    organizer_url: str | None,
    window: tuple[datetime, datetime] | None = None,
) -> bool:
    """Tell that a challenge's phase opened (`opened`) or closed, to the providers taking
    part (`provider_ids`) and the organizer, with the phase's `window` (opens_at,
    closes_at) when given. The notifier calls it for each change it derives
    (gateway.notify.phases) and sends it like any event. A repeat of the same change
    (same challenge, phase, direction and `at`) is a no-op. Returns False when it had
    already been told."""
    kind = "phase.opened" if opened else "phase.closed"
    members = [
        Member(row.id, row.guid, row.name, row.notification_url, "", "")
        for row in conn.execute(
            select(
                PROVIDERS.c.id, PROVIDERS.c.guid, PROVIDERS.c.name, PROVIDERS.c.notification_url
            ).where(PROVIDERS.c.id.in_(sorted(set(provider_ids))))
        )
    ]
    fields: dict[str, Any] = {"challenge": challenge, "phase": phase}
    if window is not None:
        fields.update(opens_at=iso(window[0]), closes_at=iso(window[1]))
    return emit(
        conn,
        key=phase_key(challenge=challenge, phase=phase, opened=opened, at=at),
        kind=kind,
        at=at,
        members=members,
        organizer_url=organizer_url,
        fields=fields,
        name_services=False,  # a phase concerns the team, not one of its services
    )


# Derived events


def _members(conn: Connection, run_ids: Iterable[int]) -> dict[int, list[tuple[int, Member]]]:
    """Run id -> (run service id, member) of each of its services."""
    found: dict[int, list[tuple[int, Member]]] = {}
    rows = conn.execute(
        select(
            RUN_SERVICES.c.id.label("rs"),
            RUN_SERVICES.c.run_id,
            RUN_SERVICES.c.status,
            SERVICES.c.guid.label("service_guid"),
            SERVICES.c.name.label("service_name"),
            PROVIDERS.c.id.label("provider_id"),
            PROVIDERS.c.guid.label("provider_guid"),
            PROVIDERS.c.name.label("provider_name"),
            PROVIDERS.c.notification_url,
        )
        .join(SERVICES, SERVICES.c.id == RUN_SERVICES.c.service_id)
        .join(PROVIDERS, PROVIDERS.c.id == SERVICES.c.provider_id)
        .where(RUN_SERVICES.c.run_id.in_(sorted(set(run_ids))))
        .order_by(RUN_SERVICES.c.run_id, RUN_SERVICES.c.position)
    )
    for row in rows:
        member = Member(
            row.provider_id,
            row.provider_guid,
            row.provider_name,
            row.notification_url,
            row.service_guid,
            row.service_name,
            row.status,
        )
        found.setdefault(row.run_id, []).append((row.rs, member))
    return found


@dataclass(frozen=True, slots=True)
class Happening:
    key: str
    kind: str
    at: datetime
    run_id: int
    run_service_id: int | None = None  # a breaker event's service
    reason: str | None = None


def _happenings(conn: Connection, *, since: datetime) -> list[Happening]:
    found: list[Happening] = []
    for run in conn.execute(
        select(RUNS.c.id, RUNS.c.state, RUNS.c.started_at, RUNS.c.finished_at).where(
            or_(RUNS.c.started_at >= since, RUNS.c.finished_at >= since)
        )
    ):
        if run.started_at is not None and run.started_at >= since:
            found.append(Happening(f"run:{run.id}:started", "run.started", run.started_at, run.id))
        if run.state in ENDED_STATES and run.finished_at is not None:
            # A resumed run ends again: each end is its own event.
            key = f"run:{run.id}:ended:{iso(run.finished_at)}"
            found.append(Happening(key, "run.ended", run.finished_at, run.id))
    for down in conn.execute(
        select(DOWNTIMES, RUN_SERVICES.c.run_id)
        .join(RUN_SERVICES, RUN_SERVICES.c.id == DOWNTIMES.c.run_service_id)
        .where((DOWNTIMES.c.down_at >= since) | (DOWNTIMES.c.up_at >= since))
    ):
        rs = down.run_service_id
        found.append(
            Happening(
                f"downtime:{down.id}:down",
                "service.down",
                down.down_at,
                down.run_id,
                rs,
                down.reason,
            )
        )
        if down.up_at is not None:
            found.append(
                Happening(f"downtime:{down.id}:up", "service.up", down.up_at, down.run_id, rs)
            )
    return found


def collect(conn: Connection, *, now: datetime, organizer_url: str | None) -> int:
    """Write to the outbox every run and breaker event of the last `HORIZON` not written
    yet; returns how many were written (by this call)."""
    happenings = _happenings(conn, since=now - HORIZON)
    if not happenings:
        return 0
    known: set[str] = set()
    keys = sorted({h.key for h in happenings})
    for start in range(0, len(keys), 500):
        known.update(
            conn.scalars(select(EVENTS.c.key).where(EVENTS.c.key.in_(keys[start : start + 500])))
        )
    new = sorted((h for h in happenings if h.key not in known), key=lambda h: (h.at, h.key))
    if not new:
        return 0
    runs = {
        row.id: row
        for row in conn.execute(
            select(RUNS.c.id, RUNS.c.phase, RUNS.c.state, RUNS.c.dataset_id).where(
                RUNS.c.id.in_(sorted({h.run_id for h in new}))
            )
        )
    }
    members = _members(conn, runs)
    written = 0
    for h in new:
        run = runs[h.run_id]
        fields: dict[str, Any] = {"run": {"id": run.id, "phase": run.phase, "state": run.state}}
        told = [m for rs, m in members.get(h.run_id, []) if h.run_service_id in (None, rs)]
        if h.reason is not None:
            fields["reason"] = h.reason
        written += emit(
            conn,
            key=h.key,
            kind=h.kind,
            at=h.at,
            members=told,
            organizer_url=organizer_url,
            fields=fields,
        )
    return written
