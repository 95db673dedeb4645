"""The row the sender queues for a result (`records.result_row`) is, once the recording
process makes it the stored row (`records.stored_row`), `ResultRecord`'s fields in their
order: `ResultRecord(*stored_row(row))`."""

from datetime import datetime

from gateway.db import from_epoch_us
from gateway.dispatch.answers import Answer, Attempt
from gateway.errors import Outcome
from gateway.protocol.result_string import Tag
from gateway.runs import records
from gateway.runs.records import ResultRecord, result_row, stored_row


def test_a_row_is_the_record_of_the_answer_field_by_field() -> None:
    finished = datetime(2026, 12, 5, 6, 40, 1, 123456)
    finished_us = 1_796_452_801_123_456  # the same instant
    assert from_epoch_us(finished_us) == finished
    attempts = [
        Attempt(1, "http://a.test", Outcome.TIMEOUT, 250.0, None, "no answer"),
        Attempt(2, "http://b.test", Outcome.OK, 12.5, 200),
    ]
    answer = Answer(
        "feed" * 8,
        Outcome.OK,
        [Tag("cat", 0.9), Tag("dog", 0.1)],
        "cat:0.9;dog:0.1",
        12.5,
        200,
        None,
        attempts,
    )
    row = result_row(
        answer,
        item_id=7,
        run_service_id=3,
        queue_ms=4.5,
        truth=["cat"],
        part="public",
        finished_us=finished_us,
    )
    record = ResultRecord(*stored_row(row))
    assert record == ResultRecord(
        item_id=7,
        run_service_id=3,
        outcome="ok",
        attempts=2,
        latency_ms=12.5,
        queue_ms=4.5,
        http_status=200,
        request_id="feed" * 8,
        raw="cat:0.9;dog:0.1",
        tags=[("cat", 0.9), ("dog", 0.1)],
        detail=None,
        attempt_log=[
            {
                "n": 1,
                "instance": "http://a.test",
                "outcome": "timeout",
                "latency_ms": 250.0,
                "status": None,
                "detail": "no answer",
            },
            {
                "n": 2,
                "instance": "http://b.test",
                "outcome": "ok",
                "latency_ms": 12.5,
                "status": 200,
                "detail": None,
            },
        ],
        finished_at=finished,
        truth=["cat"],
        part="public",
    )
    assert all(type(tag) is tuple for tag in row[records.TAGS])  # pickled as plain tuples
    # The sender's row holds no datetime and no dict: each pickles slower than the values.
    assert row[records.FINISHED_AT] == finished_us
    assert all(type(attempt) is tuple for attempt in row[records.ATTEMPT_LOG])
