"""The notifier: one task per hub process that fills the outbox from what happened
(`events.collect`, `phases.collect_phases`) and drains it, apart from the dispatch
engine (its own HTTP client, its own tasks: a receiver that hangs or fails holds up no
run).

Every `poll_s` it writes new events, then leases the due deliveries that fit in its
queue (`QUEUE_SIZE`, so memory stays bounded whatever piles up in the table) and
`SENDERS` tasks post them. A lease (`lease_owner`, `lease_expires_at`) makes one
process of several send each delivery; a process that dies mid-post leaves its leases
to expire and another sends them. A failed attempt is tried again after a doubling
back-off (`RECOGHUB_NOTIFY_RETRY_S`), up to `RECOGHUB_NOTIFY_ATTEMPTS` attempts; the
outcome of each is kept on the delivery (`attempts`, `last_status`, `last_error`).
"""

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, or_, select, update

from gateway.config import Settings
from gateway.db import utcnow
from gateway.dispatch.client import AiohttpClient, HttpClient
from gateway.metrics import NOTIFICATION_POSTS
from gateway.notify.delivery import Answer, backoff_s, encode, post_event, request_id
from gateway.notify.events import collect
from gateway.notify.models import DELIVERIES, EVENTS, DeliveryStatus
from gateway.notify.phases import collect_phases
from gateway.runs.models import PROVIDERS

log = logging.getLogger("recoghub.notify")

QUEUE_SIZE = 64
SENDERS = 4
LEASE_MARGIN_S = 30.0


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    url: str
    body: dict[str, Any]
    kind: str
    secret: str | None
    attempts: int


class Notifier:
    def __init__(
        self, *, engine: Engine, settings: Settings, http: HttpClient | None = None
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._own_http = http is None
        self._http: HttpClient = http or AiohttpClient(settings)
        self.owner = f"notifier-{uuid.uuid4().hex[:12]}"
        self._queue: asyncio.Queue[Claimed] = asyncio.Queue(QUEUE_SIZE)
        self._lease = timedelta(seconds=settings.notify_timeout_s * 2 + LEASE_MARGIN_S)

    async def run(self, stop: asyncio.Event) -> None:
        """Collect and send until `stop` is set; a failing tick is logged and retried."""
        senders = [asyncio.create_task(self._send_loop()) for _ in range(SENDERS)]
        try:
            while not stop.is_set():
                try:
                    await asyncio.to_thread(self._tick)
                except Exception:
                    log.exception("notifications: a tick failed; trying again")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.notify_poll_s)
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            if self._own_http:
                await self._http.close()
            # What was leased and not sent is left to its lease: sent again later.

    def _tick(self) -> None:
        with self._engine.begin() as conn:
            now, organizer_url = utcnow(), self._settings.organizer_webhook_url
            collect(conn, now=now, organizer_url=organizer_url)
            collect_phases(conn, now=now, organizer_url=organizer_url)
        room = QUEUE_SIZE - self._queue.qsize()
        if room <= 0:
            return
        with self._engine.begin() as conn:
            claimed = self._claim(conn, limit=room)
        for delivery in claimed:
            self._queue.put_nowait(delivery)  # fits: only this thread fills it

    def _claim(self, conn: Connection, *, limit: int) -> list[Claimed]:
        now = utcnow()
        free = or_(DELIVERIES.c.lease_owner.is_(None), DELIVERIES.c.lease_expires_at < now)
        due = (
            (DELIVERIES.c.status == DeliveryStatus.PENDING)
            & (DELIVERIES.c.next_attempt_at <= now)
            & free
        )
        ids = list(
            conn.scalars(
                select(DELIVERIES.c.id)
                .where(due)
                .order_by(DELIVERIES.c.next_attempt_at)
                .limit(limit)
            )
        )
        if not ids:
            return []
        taken = (
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_(ids), due)
                .values(lease_owner=self.owner, lease_expires_at=now + self._lease)
                .returning(DELIVERIES.c.id)
            )
            .scalars()
            .all()
        )
        rows = conn.execute(
            select(
                DELIVERIES.c.id,
                DELIVERIES.c.url,
                DELIVERIES.c.body,
                DELIVERIES.c.provider_id,
                DELIVERIES.c.attempts,
                EVENTS.c.kind,
                PROVIDERS.c.notification_url,
                PROVIDERS.c.notification_secret,
            )
            .join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
            .outerjoin(PROVIDERS, PROVIDERS.c.id == DELIVERIES.c.provider_id)
            .where(DELIVERIES.c.id.in_(taken))
            .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
        )
        claimed = []
        for row in rows:
            if row.provider_id is None:
                url, secret = row.url, self._settings.organizer_webhook_secret
            else:
                # The provider's URL and secret as they are now: a team that fixed its
                # URL gets the retries there.
                url, secret = row.notification_url, row.notification_secret
            if not url:
                self._finish(
                    conn, row.id, row.attempts, Answer(None, "notification URL removed"), final=True
                )
                continue
            claimed.append(Claimed(row.id, url, row.body, row.kind, secret, row.attempts))
        return claimed

    async def _send_loop(self) -> None:
        while True:
            delivery = await self._queue.get()
            answer = await post_event(
                self._http,
                url=delivery.url,
                body=encode(delivery.body),
                kind=delivery.kind,
                request_id=request_id(delivery.id),
                secret=delivery.secret,
                timeout_s=self._settings.notify_timeout_s,
            )
            try:
                await asyncio.to_thread(self._record, delivery, answer)
            except Exception:
                log.exception("notifications: could not record delivery %s", delivery.id)

    def _record(self, delivery: Claimed, answer: Answer) -> None:
        attempts = delivery.attempts + 1
        final = not answer.retryable or attempts >= self._settings.notify_attempts
        with self._engine.begin() as conn:
            self._finish(conn, delivery.id, delivery.attempts, answer, final=final)
        result = "delivered" if answer.delivered else "failed" if final else "retry"
        NOTIFICATION_POSTS.labels(result).inc()
        if not answer.delivered and final:
            log.warning(
                "notifications: gave up on delivery %s (%s) to %s after %d attempts: %s",
                delivery.id,
                delivery.kind,
                delivery.url,
                attempts,
                answer.describe(),
            )

    def _finish(
        self, conn: Connection, delivery_id: int, attempts: int, answer: Answer, *, final: bool
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {
            "attempts": attempts + 1,
            "last_status": answer.status,
            "last_error": None if answer.delivered else answer.describe(),
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if answer.delivered:
            values.update(status=DeliveryStatus.SENT, sent_at=now)
        elif final:
            values.update(status=DeliveryStatus.FAILED)
        else:
            delay = backoff_s(attempts=attempts + 1, retry_s=self._settings.notify_retry_s)
            values.update(next_attempt_at=now + timedelta(seconds=delay))
        conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.lease_owner == self.owner)
            .values(**values)
        )
