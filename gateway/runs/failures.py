"""A run's failures grouped by kind (SPEC §3 `GET /runs/{id}/failures`).

A failed service's reason lists a few request ids; with thousands of failures the
organizer needs to see what kinds there are. Failures of a service are grouped by
outcome, HTTP status and *normalized* detail: ids, numbers and ports differ from one
request to the next (`connect to 127.0.0.1:40123 refused`, `request 3f2a...`), so they
are replaced by placeholders and what is left groups the similar errors.

Read-only, streamed a page at a time; the groups per service are bounded (a recognizer
answering a new text every time cannot grow them without end).
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select
from sqlalchemy.orm import Session

from gateway.errors import Outcome
from gateway.runs.finish import keyset_pages
from gateway.runs.models import WORK_ITEMS, ItemState
from gateway.runs.progress import run_members

# Groups kept per service; later new kinds all go into one group, OTHER.
MAX_GROUPS = 50
OTHER = "(other details)"
REQUEST_IDS = 5
# Details are cut before they are normalized; what matters is at the start.
DETAIL_CHARS = 300

_UUID = re.compile(r"\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b")
# A hex run of 8 or more with at least one digit: request ids, hashes, addresses.
_HEX = re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b|\b0x[0-9a-fA-F]+\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_SPACE = re.compile(r"\s+")


def normalize_detail(detail: str | None) -> str:
    """`detail` with ids as `<id>` and numbers (ports, counts, addresses, times) as `<n>`,
    white space collapsed; so `timed out after 5.01 s on :4012` and `timed out after
    5.2 s on :4013` are one kind."""
    text = (detail or "").strip()[:DETAIL_CHARS]
    text = _UUID.sub("<id>", text)
    text = _HEX.sub("<id>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text)


@dataclass
class FailureGroup:
    """One kind of failure of one service: how often, when first and last, a few ids."""

    service_guid: str
    service_name: str
    provider_guid: str
    provider_name: str
    outcome: str
    http_status: int | None
    detail: str
    example: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    request_ids: list[str] = field(default_factory=list)

    def add(self, row: Row[Any]) -> None:
        self.count += 1
        when = row.finished_at
        if when is not None:
            self.first_seen = when if self.first_seen is None else min(self.first_seen, when)
            self.last_seen = when if self.last_seen is None else max(self.last_seen, when)
        if row.request_id and len(self.request_ids) < REQUEST_IDS:
            self.request_ids.append(row.request_id)


def failure_groups(
    session: Session, *, run_id: int, provider_id: int | None = None
) -> list[FailureGroup]:
    """The failures of the run's services (only `provider_id`'s if given), grouped: in
    run order of the services, then most frequent first. The caller checks the run."""
    groups: list[FailureGroup] = []
    for m in run_members(session, run_id, provider_id):
        found: dict[tuple[str, int | None, str], FailureGroup] = {}
        for row in _failed_items(session.connection(), m.id):
            pattern = normalize_detail(row.detail)
            key = (row.outcome, row.http_status, pattern)
            group = found.get(key)
            if group is None:
                if len(found) >= MAX_GROUPS:
                    key, pattern = (row.outcome, None, OTHER), OTHER
                    group = found.get(key)
            if group is None:
                group = FailureGroup(
                    service_guid=m.service_guid,
                    service_name=m.service_name,
                    provider_guid=m.provider_guid,
                    provider_name=m.provider_name,
                    outcome=row.outcome,
                    http_status=key[1],
                    detail=pattern,
                    example=(row.detail or "").strip()[:DETAIL_CHARS],
                )
                found[key] = group
            group.add(row)
        groups.extend(sorted(found.values(), key=lambda g: (-g.count, g.outcome, g.detail)))
    return groups


def _failed_items(conn: Connection, run_service_id: int) -> Iterator[Row[Any]]:
    """The recorded items of a run service that did not end `ok`, in `seq` order, a page
    at a time (keyset pages on the claim index)."""
    columns = [
        WORK_ITEMS.c.outcome,
        WORK_ITEMS.c.http_status,
        WORK_ITEMS.c.detail,
        WORK_ITEMS.c.request_id,
        WORK_ITEMS.c.finished_at,
    ]
    return keyset_pages(
        conn,
        select(WORK_ITEMS.c.seq, *columns).where(
            WORK_ITEMS.c.run_service_id == run_service_id,
            WORK_ITEMS.c.state == ItemState.DONE,
            WORK_ITEMS.c.outcome != Outcome.OK.value,
        ),
    )
