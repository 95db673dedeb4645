"""The worker's heartbeat: every `heartbeat_s` it shows the worker alive and extends every
lease it holds (items and slots) by `lease_s`. If a heartbeat cannot get through, the
worker stops sending before its leases can expire: a request sent on a lapsed slot lease
could break its service's concurrency bound.
"""

import time

from gateway.runs.engine import store
from gateway.runs.engine.lanes import Lanes
from gateway.runs.engine.threads import Database

# Leases are trusted for this share of `lease_s` after the heartbeat that extended them.
TRUSTED_SHARE = 0.9


class Heartbeat:
    def __init__(self, *, db: Database, worker_id: str, lease_s: float, lanes: Lanes) -> None:
        self._db = db
        self._worker_id = worker_id
        self._lease_s = lease_s
        self._lanes = lanes
        self._trusted_until = 0.0  # monotonic

    def leases_taken(self) -> None:
        """The worker has just registered: its leases are fresh."""
        self._trusted_until = time.monotonic() + TRUSTED_SHARE * self._lease_s

    @property
    def leases_safe(self) -> bool:
        """The leases cannot have lapsed yet."""
        return time.monotonic() <= self._trusted_until

    async def beat(self) -> None:
        started = time.monotonic()
        now, expires = store.lease_window(self._lease_s)
        await self._db.hot(
            store.heartbeat,
            worker_id=self._worker_id,
            run_service_ids=self._lanes.ids(),
            now=now,
            expires=expires,
        )
        self._trusted_until = started + TRUSTED_SHARE * self._lease_s
