"""What one webhook answer means for its delivery, and how long the hub waits before the
next attempt (unit tests of gateway.notify.delivery)."""

import pytest

from gateway.dispatch.policy import REFUSED_DETAIL
from gateway.notify.delivery import MAX_BACKOFF_S, Answer, backoff_s


@pytest.mark.parametrize(
    ("answer", "delivered", "retryable"),
    [
        (Answer(200), True, False),
        (Answer(204), True, False),
        (Answer(500), False, True),
        (Answer(503), False, True),
        (Answer(429), False, True),
        (Answer(None, "no answer within 5 s"), False, True),
        (Answer(None, "ConnectionRefusedError: refused"), False, True),
        # Answers that another attempt would not change.
        (Answer(301), False, False),
        (Answer(404), False, False),
        (Answer(None, f"{REFUSED_DETAIL} (RECOGHUB_ENDPOINT_ALLOW)"), False, False),
    ],
)
def test_what_an_answer_means(answer: Answer, delivered: bool, retryable: bool) -> None:
    assert (answer.delivered, answer.retryable) == (delivered, retryable)


def test_the_back_off_doubles_up_to_its_bound() -> None:
    assert [backoff_s(attempts=n, retry_s=2.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_s(attempts=40, retry_s=2.0) == MAX_BACKOFF_S
