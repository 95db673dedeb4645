"""The typed result of a work item: what the worker (and a scored prediction file) records
in its row, with the run service and true tags the live scores count it against. Apart
from the statements (`gateway.runs.results`, `lifecycle.items`) so that those import it
without importing each other."""

import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypedDict

from gateway.db import from_epoch_us
from gateway.dispatch.answers import Answer
from gateway.errors import Outcome

# Answers keep this much of the recognizer's body.
RAW_CHARS = 1024
# `Outcome.X.value` goes through enum's descriptor machinery: slow enough to matter at
# thousands of results a second.
_OUTCOME_TEXT = {outcome: outcome.value for outcome in Outcome}


class LoggedAttempt(TypedDict):
    """One attempt of a request in `work_items.attempt_log` (`Attempt.as_dict()`)."""

    n: int
    instance: str
    outcome: str
    latency_ms: float | None
    status: int | None
    detail: str | None


@dataclass(slots=True)
class ResultRecord:
    """A work item's result: its columns (`lifecycle.items.RESULT_FIELDS`), with the run service it
    belongs to and its image's true tags, which the live scores count it against."""

    item_id: int
    run_service_id: int
    outcome: str
    attempts: int
    latency_ms: float | None
    queue_ms: float | None
    http_status: int | None
    request_id: str | None
    raw: str | None
    tags: list[tuple[str, float]] | None  # ranked best first
    detail: str | None
    attempt_log: list[LoggedAttempt] | None
    finished_at: datetime
    truth: Sequence[str] = ()
    # The part of a split run's images the item's image is in (gateway.scoring.split).
    part: str | None = None

    @classmethod
    def of(
        cls,
        answer: Answer,
        *,
        item_id: int,
        run_service_id: int,
        queue_ms: float,
        truth: Sequence[str],
        part: str | None = None,
    ) -> "ResultRecord":
        """The record of the dispatcher's answer, finished now."""
        row = result_row(
            answer,
            item_id=item_id,
            run_service_id=run_service_id,
            queue_ms=queue_ms,
            truth=truth,
            part=part,
            finished_us=time.time_ns() // 1000,
        )
        return cls(*stored_row(row))


# A record as the statements that record a batch read it: a plain tuple of its fields, in
# their order (`ResultRecord(*row)`), a tenth of the pickling of the record, read by these
# positions.
Row = tuple[Any, ...]
row_of = operator.attrgetter(*(field.name for field in fields(ResultRecord)))
FIELD_AT = {field.name: n for n, field in enumerate(fields(ResultRecord))}
ITEM_ID, RUN_SERVICE_ID, OUTCOME, LATENCY_MS = (
    FIELD_AT[name] for name in ("item_id", "run_service_id", "outcome", "latency_ms")
)
TAGS, ATTEMPT_LOG, FINISHED_AT, TRUTH, PART = (
    FIELD_AT[name] for name in ("tags", "attempt_log", "finished_at", "truth", "part")
)


def result_row(
    answer: Answer,
    *,
    item_id: int,
    run_service_id: int,
    queue_ms: float,
    truth: Sequence[str],
    part: str | None,
    finished_us: int,
) -> Row:
    """The row the sender queues for `answer`, built without a record (a record and its
    conversion would cost it a tenth more): `ResultRecord.of`'s row as `stored_row` gives
    it back, but with the finish time in microseconds since the epoch and each logged
    attempt a tuple of `LoggedAttempt`'s values, as an int and tuples pickle in a third
    of the time of a datetime and dicts (the recording process builds them instead)."""
    raw = answer.raw
    return (
        item_id,
        run_service_id,
        _OUTCOME_TEXT[answer.outcome],
        len(answer.attempts),
        answer.latency_ms,
        queue_ms,
        answer.status,
        answer.request_id,
        raw[:RAW_CHARS] if raw is not None else None,
        [(tag, score) for tag, score in answer.tags],
        answer.detail,
        [
            (a.number, a.instance, _OUTCOME_TEXT[a.outcome], a.latency_ms, a.status, a.detail)
            for a in answer.attempts
        ],
        finished_us,
        truth,
        part,
    )


def stored_row(sent: Row) -> Row:
    """The record's row (`row_of`) of a row the sender queued (`result_row`). Spelled out,
    not zipped with the keys: the recording process builds one per result."""
    attempts = [
        {
            "n": n,
            "instance": instance,
            "outcome": outcome,
            "latency_ms": ms,
            "status": status,
            "detail": detail,
        }
        for n, instance, outcome, ms, status, detail in sent[ATTEMPT_LOG]
    ]
    return sent[:ATTEMPT_LOG] + (attempts, from_epoch_us(sent[FINISHED_AT])) + sent[TRUTH:]
