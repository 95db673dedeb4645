"""Send one image to a service and get its outcome (SPEC §2).

`Dispatcher.recognize` never raises for what a recognizer does: timeouts, refused
connections, bad statuses and bad answers all come back as an `Answer` with an
`Outcome`, with every attempt recorded. Retries (tenacity, exponential back-off with
jitter) move to the service's next instance.
"""

import asyncio
import itertools
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from gateway.config import Settings
from gateway.dialout import frames
from gateway.dialout.connections import Connection, Connections, is_dialout
from gateway.dispatch.client import HttpClient
from gateway.dispatch.protocols import RECOGHUB, Adapter, no_answer
from gateway.errors import (
    Outcome,
    RecognizerBadFormat,
    RecognizerConnectError,
    RecognizerError,
    RecognizerHttpError,
    RecognizerTimeout,
    RecognizerTooLarge,
)
from gateway.metrics import ATTEMPT_LATENCY, ATTEMPTS_BY_OUTCOME
from gateway.protocol import signing
from gateway.protocol.result_string import MAX_RESULT_BYTES, Tag

RAW_KEPT_CHARS = 1024


class NotRetried(Exception):
    """A retry the caller gave up before it was sent; carries the last real failure.
    Not a RecognizerError, so tenacity does not retry it."""

    def __init__(self, error: RecognizerError) -> None:
        super().__init__(error.detail)
        self.error = error


# What an error answer may show of its body (its `raw` and detail): enough for a team's
# own error message, too little to make the hub a reader of whatever else answers at a
# registered address. A redirect shows none: the hub never fetches where it points.
ERROR_PREVIEW_BYTES = 200


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom to send: a service with its instances and signing secret."""

    service_guid: str
    provider_guid: str
    instances: tuple[str, ...]
    signing_secret: str
    # How to talk to the instances (SPEC §11): recoghub-v1 unless the service says otherwise.
    adapter: Adapter = RECOGHUB


@dataclass(slots=True)
class Attempt:
    number: int
    instance: str
    outcome: Outcome
    latency_ms: float | None
    status: int | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.number,
            "instance": self.instance,
            "outcome": self.outcome.value,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Answer:
    """The outcome of one request after retries; `latency_ms` is the last attempt's."""

    request_id: str
    outcome: Outcome
    tags: list[Tag]
    raw: str | None
    latency_ms: float | None
    status: int | None
    detail: str | None
    attempts: list[Attempt] = field(default_factory=list)
    error: RecognizerError | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True, slots=True)
class PingResult:
    instance: str
    reachable: bool
    latency_ms: float | None
    status: int | None
    detail: str | None
    outcome: Outcome = Outcome.OK


def new_request_id() -> str:
    """Random, never derived from a dataset key, file name or label."""
    return secrets.token_hex(16)


class Dispatcher:
    """Sends signed requests with the hub's one HTTP client, and through the
    process's dial-out connections (SPEC §10): a service's instances are its endpoints
    plus its live connections, and both are sent to, retried and timed alike."""

    def __init__(
        self,
        http: HttpClient,
        settings: Settings,
        connections: Connections | None = None,
    ) -> None:
        self._http = http
        self._settings = settings
        self.connections = connections if connections is not None else Connections()
        self._next_instance: dict[str, itertools.count[int]] = {}
        # Built once per secret: keying an HMAC on every request would cost the dispatch
        # loop more than the rest of the hub's own work (the adapters keep their URLs).
        self._signers: dict[str, signing.Signer] = {}
        # Exponential back-off with a jitter bounded by the first back-off (tenacity's
        # wait_exponential_jitter defaults to a whole second of jitter, which dwarfs a
        # 0.2 s back-off). Built once: the strategies are immutable.
        backoff, backoff_max = settings.retry_backoff_s, settings.retry_backoff_max_s
        # Tenacity counts from the second attempt (see `recognize`), so its n-th wait,
        # after attempt n + 1, is backoff * 2**n.
        self._wait = wait_exponential(multiplier=2 * backoff, max=backoff_max) + wait_random(
            0, backoff
        )
        self._retry = retry_if_exception(_retryable)

    def _first_backoff(self) -> float:
        backoff = self._settings.retry_backoff_s
        return min(backoff, self._settings.retry_backoff_max_s) + random.uniform(0, backoff)

    def instances(self, target: Target) -> tuple[str, ...]:
        """The service's HTTP endpoints, then its live connections to this process."""
        connected = self.connections.instances(target.service_guid)
        return target.instances + connected if connected else target.instances

    def _first_instance(self, target: Target, count: int) -> int:
        counter = self._next_instance.setdefault(target.service_guid, itertools.count())
        return next(counter) % count

    async def recognize(
        self,
        target: Target,
        image: bytes,
        *,
        content_type: str,
        digest: str | None = None,
        timeout_s: float | None = None,
        max_attempts: int | None = None,
        request_id: str | None = None,
        given_up: Callable[[], bool] | None = None,
    ) -> Answer:
        """Send `image` to `target` until an outcome is final; never raises RecognizerError.

        `given_up` is asked before each retry: once it is true (a run paused the service)
        the last failure is the outcome and nothing more is sent."""
        request_id = request_id or new_request_id()
        instances = self.instances(target)
        if not instances:
            none = RecognizerConnectError(
                "the service has no endpoint instances and no recognizer connected out"
            )
            return Answer(request_id, none.outcome, [], None, None, None, none.detail, error=none)
        digest = digest or signing.body_digest(image)
        timeout = timeout_s or self._settings.request_timeout_s
        attempts: list[Attempt] = []
        start = self._first_instance(target, len(instances))
        max_attempts = max_attempts or self._settings.max_attempts

        failures: list[RecognizerError] = []

        async def send(number: int) -> tuple[list[Tag], str, float]:
            if failures and given_up is not None and given_up():
                raise NotRetried(failures[-1])
            # Live connections may change between attempts: a retry goes to the next
            # instance that is still there.
            pool = (self.instances(target) or instances) if number > 1 else instances
            instance = pool[(start + number - 1) % len(pool)]
            try:
                return await self._attempt(
                    target,
                    instance,
                    image,
                    content_type,
                    digest,
                    timeout,
                    request_id,
                    number,
                    attempts,
                )
            except RecognizerError as error:
                failures.append(error)
                raise

        try:
            # The first attempt runs outside tenacity: most requests need no other, and
            # tenacity's async loop costs some 60 µs a request on this machine, which a
            # run at thousands of images/s and the relay's 1.5 ms (SPEC §8) cannot spare.
            try:
                tags, raw, latency = await send(1)
            except RecognizerError as first:
                if not first.retryable or max_attempts <= 1:
                    raise
                await asyncio.sleep(self._first_backoff())
                retrying = AsyncRetrying(
                    stop=stop_after_attempt(max_attempts - 1),
                    wait=self._wait,
                    retry=self._retry,
                    reraise=True,
                )
                async for attempt in retrying:
                    with attempt:
                        tags, raw, latency = await send(attempt.retry_state.attempt_number + 1)
        except (RecognizerError, NotRetried) as failed:
            error: RecognizerError = failed.error if isinstance(failed, NotRetried) else failed
            last = attempts[-1]
            return Answer(
                request_id,
                error.outcome,
                [],
                error.raw,
                last.latency_ms,
                last.status,
                error.detail,
                attempts,
                error,
            )
        return Answer(request_id, Outcome.OK, tags, raw, latency, 200, None, attempts)

    async def _attempt(
        self,
        target: Target,
        instance: str,
        image: bytes,
        content_type: str,
        digest: str,
        timeout: float,
        request_id: str,
        number: int,
        attempts: list[Attempt],
    ) -> tuple[list[Tag], str, float]:
        signer = self._signers.get(target.signing_secret)
        if signer is None:
            signer = self._signers[target.signing_secret] = signing.Signer(target.signing_secret)
        dialout = is_dialout(instance)
        # A connected recognizer answers result strings whatever the service's protocol:
        # the model-server protocols (SPEC §11) are ways of reaching HTTP endpoints.
        adapter = RECOGHUB if dialout else target.adapter
        url, body_sent, headers = (
            ("", image, {}) if dialout else adapter.build_request(instance, image, content_type)
        )
        if body_sent is not image:  # the signature covers the body actually sent
            digest = signing.body_digest(body_sent)
        timestamp = str(int(time.time()))
        signature = signer.sign(timestamp=timestamp, request_id=request_id, digest=digest)
        status: int | None = None
        started = time.perf_counter()
        try:
            if dialout:
                connection = self._connection(instance)
                frame = frames.request_frame(
                    request_id=request_id,
                    timestamp=timestamp,
                    signature=signature,
                    content_type=content_type,
                    image=image,
                )
                async with asyncio.timeout(timeout):
                    async with connection.slot():
                        # Waiting for a free slot of the connection is the hub's own
                        # queue, not the team's latency.
                        started = time.perf_counter()
                        reply = await connection.request(request_id, frame)
                status = reply.status
                if status != 200:
                    preview = reply.body[:ERROR_PREVIEW_BYTES]
                    refusal = RecognizerHttpError(_status_detail(status, preview), status=status)
                    raise refusal.with_raw(preview.decode("utf-8", "replace"))
                body = reply.body
            else:
                headers[signing.HEADER_REQUEST_ID] = request_id
                headers[signing.HEADER_SERVICE_GUID] = target.service_guid
                headers[signing.HEADER_PROVIDER_GUID] = target.provider_guid
                headers[signing.HEADER_TIMESTAMP] = timestamp
                headers[signing.HEADER_SIGNATURE] = signature
                # An error page is not an answer: only its start is read, for the
                # detail, and a big one is not too_large (that would stop a 5xx's retries).
                response = await self._http.fetch(
                    "POST",
                    url,
                    body=body_sent,
                    headers=headers,
                    timeout_s=timeout,
                    limit=adapter.max_answer_bytes,
                    preview=ERROR_PREVIEW_BYTES,
                )
                status, body = response.status, response.body
                if status != 200:
                    refusal = RecognizerHttpError(_status_detail(status, body), status=status)
                    if not 300 <= status < 400:
                        refusal.with_raw(body.decode("utf-8", "replace"))
                    raise refusal
            latency = (time.perf_counter() - started) * 1000.0
            raw = body[:RAW_KEPT_CHARS].decode("utf-8", "replace")
            try:
                tags = adapter.parse_answer(body)
            except RecognizerBadFormat as exc:
                raise exc.with_raw(raw) from None
        except RecognizerError as failed:
            latency = (time.perf_counter() - started) * 1000.0
            _record(
                attempts, Attempt(number, instance, failed.outcome, latency, status, failed.detail)
            )
            raise
        except TimeoutError:
            latency = (time.perf_counter() - started) * 1000.0
            timed_out = RecognizerTimeout(f"no complete answer from {instance} within {timeout:g}s")
            _record(
                attempts,
                Attempt(number, instance, timed_out.outcome, latency, status, timed_out.detail),
            )
            raise timed_out from None
        except OSError as exc:  # SendFailed, AddressNotAllowed (gateway.dispatch.client)
            latency = (time.perf_counter() - started) * 1000.0
            refused = RecognizerConnectError(f"cannot reach {instance}: {exc}")
            _record(
                attempts,
                Attempt(number, instance, refused.outcome, latency, status, refused.detail),
            )
            raise refused from None
        _record(attempts, Attempt(number, instance, Outcome.OK, latency, status))
        return tags, raw, latency

    async def _ping_connection(self, instance: str, timeout_s: float) -> PingResult:
        started = time.perf_counter()
        try:
            connection = self._connection(instance)
            async with asyncio.timeout(timeout_s):
                async with connection.slot():
                    started = time.perf_counter()
                    request_id = new_request_id()
                    reply = await connection.request(request_id, frames.ping(request_id))
        except TimeoutError:
            detail = f"no answer to the ping within {timeout_s:g}s"
            return PingResult(instance, False, None, None, detail, Outcome.TIMEOUT)
        except RecognizerError as exc:
            return PingResult(instance, False, None, None, exc.detail, exc.outcome)
        latency = (time.perf_counter() - started) * 1000.0
        if reply.status != 200:
            detail = _status_detail(reply.status, reply.body[:ERROR_PREVIEW_BYTES])
            return PingResult(instance, False, latency, reply.status, detail, Outcome.HTTP_ERROR)
        return PingResult(instance, True, latency, 200, None)

    def _connection(self, instance: str) -> Connection:
        connection = self.connections.get(instance)
        if connection is None:
            raise RecognizerConnectError(f"{instance} is no longer connected to this hub process")
        return connection

    async def ping(
        self, instance: str, *, timeout_s: float = 5.0, adapter: Adapter = RECOGHUB
    ) -> PingResult:
        """Walk the protocol's health steps (recoghub-v1: GET {instance}/ping); reachable
        means each answered 200 with a body of at most 64 KiB that the protocol reads as
        healthy, and `detail` names the first step that did not. A dial-out instance is
        sent the ping message of SPEC §10 instead (status 200 means up)."""
        if is_dialout(instance):
            return await self._ping_connection(instance, timeout_s)
        started = time.perf_counter()
        latency: float | None = None
        for step in adapter.ping_steps(instance):
            try:
                reply = await self._http.fetch(
                    "GET", step.url, timeout_s=timeout_s, limit=MAX_RESULT_BYTES, preview=0
                )
            except RecognizerTooLarge as exc:
                return PingResult(
                    instance, False, None, 200, f"{step.path} {exc.detail}", exc.outcome
                )
            except TimeoutError:
                return PingResult(
                    instance,
                    False,
                    None,
                    None,
                    no_answer(step, timeout_s),
                    Outcome.TIMEOUT,
                )
            except OSError as exc:
                return PingResult(
                    instance, False, None, None, f"cannot reach: {exc}", Outcome.CONNECT_ERROR
                )
            latency = (time.perf_counter() - started) * 1000.0
            status = reply.status
            problem = adapter.ping_problem(step, status, reply.body)
            if problem is not None:
                if 300 <= status < 400:
                    problem += ", a redirect (not followed)"
                return PingResult(instance, False, latency, status, problem, Outcome.HTTP_ERROR)
        return PingResult(instance, True, latency, 200, None)


def _record(attempts: list[Attempt], attempt: Attempt) -> None:
    """Keep the attempt for the logs and count it in the Prometheus metrics."""
    attempts.append(attempt)
    ATTEMPTS_BY_OUTCOME[attempt.outcome].inc()
    if attempt.outcome is Outcome.OK and attempt.latency_ms is not None:
        ATTEMPT_LATENCY.observe(attempt.latency_ms / 1000.0)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RecognizerError) and exc.retryable


def _status_detail(status: int, preview: bytes) -> str:
    """What an answer other than 200 says, its body shown short and on one line."""
    if 300 <= status < 400:
        return f"recognizer answered HTTP {status}, a redirect (not followed)"
    text = preview.decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return f"recognizer answered HTTP {status}: {text or '(empty body)'}"
