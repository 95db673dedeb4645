"""Recognize images through the hub, several in flight, and sum the outcomes up.

One image's failure (the recognizer timed out, answered badly, the file is not an
image, ...) is that image's outcome and the run goes on. A failure that every other
image would meet too (hub unreachable, key refused, unknown or mixed-up GUID) stops the
run at once and is raised as a CliError.
"""

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import HubClient
from cmdline_tool.images import ImageFile, read_image
from cmdline_tool.refusals import Subject, error_body, json_body, refusal

# A hub past its rate limit (429) is waited for, as often as this per image, before the
# image counts as failed: the hub's token bucket lets one through within Retry-After.
MAX_RATE_LIMIT_WAITS = 50

# Refusals that do not depend on the image: no point sending the rest.
FATAL_CODES = frozenset(
    {
        "hub_unreachable",
        "not_a_hub",
        "unauthorized",
        "forbidden",
        "wrong_guid_kind",
        "not_found",
        "service_disabled",
        "no_instances",
    }
)


@dataclass
class Recognition:
    """What became of one image."""

    image: ImageFile
    outcome: str  # "ok", a recognizer outcome, or the code of the CliError
    sent: bool
    tags: list[tuple[str, float]] = field(default_factory=list)
    latency_ms: float | None = None  # the recognizer's, measured by the hub
    round_trip_ms: float | None = None  # this tool to the hub and back
    attempts: int | None = None
    request_id: str | None = None
    raw: str | None = None
    error: CliError | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def as_json(self) -> dict[str, object]:
        return {
            "type": "image",
            "file": self.image.name,
            "outcome": self.outcome,
            "ok": self.ok,
            "tags": [{"tag": tag, "score": score} for tag, score in self.tags],
            "latency_ms": self.latency_ms,
            "round_trip_ms": self.round_trip_ms,
            "attempts": self.attempts,
            "request_id": self.request_id,
            "raw": self.raw,
            "error": self.error.as_json() if self.error else None,
        }


@dataclass
class Summary:
    images: int
    sent: int
    outcomes: Counter[str]
    elapsed_s: float
    latencies_ms: list[float]

    @property
    def ok(self) -> int:
        return self.outcomes["ok"]

    @property
    def failed(self) -> int:
        return self.images - self.ok

    @property
    def images_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency(self, q: float) -> float | None:
        """Nearest-rank percentile of the recognizer latency of `ok` answers."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(1, math.ceil(q * len(ordered))) - 1]

    def as_json(self) -> dict[str, object]:
        return {
            "type": "summary",
            "images": self.images,
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "outcomes": dict(self.outcomes),
            "elapsed_s": round(self.elapsed_s, 3),
            "images_per_s": round(self.images_per_s, 2),
            "latency_ms": {"p50": self.latency(0.50), "p99": self.latency(0.99)},
        }


class RateLimitPause:
    """Shared by the images of one batch: when the hub answers 429 (rate_limited), every
    image waits until its Retry-After has passed; `on_wait` hears of each pause once."""

    def __init__(self, on_wait: Callable[[float], None]) -> None:
        self.on_wait = on_wait
        self.resume_at = 0.0

    async def wait_turn(self) -> None:
        while (delay := self.resume_at - time.monotonic()) > 0:
            await asyncio.sleep(delay)

    def hold(self, retry_after_s: float) -> None:
        now = time.monotonic()
        if now + retry_after_s <= self.resume_at:
            return
        if self.resume_at <= now:
            self.on_wait(retry_after_s)
        self.resume_at = now + retry_after_s


def retry_after_s(response: httpx.Response) -> float | None:
    """How long a 429 (code rate_limited) of the hub asks to wait; None for any other."""
    if response.status_code != 429 or (error_body(response) or {}).get("code") != "rate_limited":
        return None
    try:
        return max(1.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


async def recognize_one(
    hub: HubClient, service_guid: str, image: ImageFile, pause: RateLimitPause | None = None
) -> Recognition:
    """Send one image; raises CliError only for a failure that is not this image's.

    A 429 of the hub's rate limit is waited out (see RateLimitPause) and the image sent again.
    """
    pause = pause or RateLimitPause(lambda _: None)
    try:
        data, content_type = await asyncio.to_thread(read_image, image)
    except CliError as error:
        return Recognition(image, error.code, sent=False, error=error)
    for waits in range(MAX_RATE_LIMIT_WAITS + 1):
        await pause.wait_turn()
        started = time.perf_counter()
        try:
            response = await hub.request(
                "POST",
                f"/services/{service_guid}/recognize",
                content=data,
                headers={"Content-Type": content_type},
            )
        except CliError as error:
            if error.code in FATAL_CODES:
                raise
            return Recognition(image, error.code, sent=True, error=error)
        wait_s = retry_after_s(response)
        if wait_s is None or waits == MAX_RATE_LIMIT_WAITS:
            break
        pause.hold(wait_s)
    round_trip = round((time.perf_counter() - started) * 1000.0, 3)
    body = json_body(response) if response.status_code == 200 else None
    body = body if isinstance(body, dict) else None
    if body is None:
        refused = refusal(response, hub.url, Subject("service", service_guid, "--service"))
        if refused.code in FATAL_CODES:
            raise refused
        request_id = (error_body(response) or {}).get("request_id")
        return Recognition(
            image,
            refused.code,
            sent=True,
            round_trip_ms=round_trip,
            request_id=request_id if isinstance(request_id, str) else None,
            raw=refused.raw,
            error=refused,
        )
    return Recognition(
        image,
        "ok",
        sent=True,
        tags=_tags(body.get("tags")),
        latency_ms=json_number(body.get("latency_ms")),
        round_trip_ms=round_trip,
        attempts=_attempt_count(body.get("attempts")),
        request_id=str(body.get("request_id") or "") or None,
        raw=body.get("raw") if isinstance(body.get("raw"), str) else None,
    )


async def recognize_all(
    hub: HubClient,
    service_guid: str,
    images: list[ImageFile],
    *,
    concurrency: int,
    on_result: Callable[[Recognition], None],
    on_wait: Callable[[float], None] = lambda _: None,
) -> Summary:
    """Recognize `images` with at most `concurrency` in flight; `on_result` sees each one
    as it completes, `on_wait` each pause for the hub's rate limit (seconds).
    Raises CliError (and stops sending) on a failure of the whole run."""
    pending = iter(images)
    results: list[Recognition] = []
    pause = RateLimitPause(on_wait)

    async def worker() -> None:
        for image in pending:
            result = await recognize_one(hub, service_guid, image, pause)
            results.append(result)
            on_result(result)

    started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(concurrency, len(images)))):
                group.create_task(worker())
    except ExceptionGroup as failures:
        fatal = next((e for e in failures.exceptions if isinstance(e, CliError)), None)
        raise (fatal or failures.exceptions[0]) from None
    elapsed = time.perf_counter() - started
    return Summary(
        images=len(results),
        sent=sum(r.sent for r in results),
        outcomes=Counter(r.outcome for r in results),
        elapsed_s=elapsed,
        latencies_ms=[r.latency_ms for r in results if r.ok and r.latency_ms is not None],
    )


def _tags(value: object) -> list[tuple[str, float]]:
    if not isinstance(value, list):
        return []
    tags: list[tuple[str, float]] = []
    for item in value:
        if isinstance(item, dict) and "tag" in item:
            score = json_number(item.get("score"))
            tags.append((str(item["tag"]), score if score is not None else math.nan))
    return tags


def json_number(value: object) -> float | None:
    """A number the hub sent (JSON int or float), or None for anything else."""
    return float(value) if isinstance(value, int | float) else None


def _attempt_count(value: object) -> int | None:
    if isinstance(value, list):
        return len(value)
    return value if isinstance(value, int) else None
