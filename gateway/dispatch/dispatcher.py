"""Send one image to a service and get its outcome (SPEC §2).

`Dispatcher.recognize` never raises for what a recognizer does: timeouts, refused
connections, bad statuses and bad answers all come back as an `Answer` with an
`Outcome`, with every attempt recorded. Retries (tenacity, exponential back-off with
jitter) move to the service's next instance.
"""

import asyncio
import itertools
import random
import time
from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from gateway.config import Settings
from gateway.dialout.connections import Connections, is_dialout
from gateway.dispatch.answers import (
    Answer,
    Attempt,
    Exchange,
    PingResult,
    Request,
    Target,
    new_request_id,
)
from gateway.dispatch.client import HttpClient
from gateway.dispatch.connections import ConnectedInstances
from gateway.dispatch.endpoints import Endpoints
from gateway.dispatch.protocols.recoghub_v1 import RECOGHUB, Adapter
from gateway.errors import (
    Outcome,
    RecognizerBadFormat,
    RecognizerConnectError,
    RecognizerError,
    RecognizerTimeout,
)
from gateway.metrics import ANSWERED, ATTEMPTS_BY_OUTCOME
from gateway.protocol import signing
from gateway.protocol.result_string import Tag

RAW_KEPT_CHARS = 1024


class NotRetried(Exception):
    """A retry the caller gave up before it was sent; carries the last real failure.
    Not a RecognizerError, so tenacity does not retry it."""

    def __init__(self, error: RecognizerError) -> None:
        super().__init__(error.detail)
        self.error = error


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
        self._settings = settings
        self.connections = connections if connections is not None else Connections()
        self._endpoints = Endpoints(http)
        self._connected = ConnectedInstances(self.connections)
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
        counter = self._next_instance.get(target.service_guid)
        if counter is None:
            counter = self._next_instance[target.service_guid] = itertools.count()
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
        start = self._first_instance(target, len(instances)) if len(instances) > 1 else 0
        # The first attempt is sent straight (no closure, no tenacity): most requests need
        # no other, and each µs here is one the sending process spends per image.
        try:
            tags, raw, latency = await self._attempt(
                target,
                instances[start],
                image,
                content_type,
                digest,
                timeout,
                request_id,
                1,
                attempts,
            )
        except RecognizerError as first:
            max_attempts = max_attempts or self._settings.max_attempts
            if not first.retryable or max_attempts <= 1:
                return _failed(request_id, first, attempts)
            return await self._retried(
                target,
                instances,
                start,
                image,
                content_type,
                digest,
                timeout,
                request_id,
                max_attempts,
                attempts,
                first,
                given_up,
            )
        return Answer(request_id, Outcome.OK, tags, raw, latency, 200, None, attempts)

    async def _retried(
        self,
        target: Target,
        instances: tuple[str, ...],
        start: int,
        image: bytes,
        content_type: str,
        digest: str,
        timeout: float,
        request_id: str,
        max_attempts: int,
        attempts: list[Attempt],
        first: RecognizerError,
        given_up: Callable[[], bool] | None,
    ) -> Answer:
        """The attempts after a failed first one, with back-off (tenacity's loop costs
        some 60 µs a request: only a request that needs it pays for it)."""
        failures: list[RecognizerError] = [first]

        async def send(number: int) -> tuple[list[Tag], str, float]:
            if given_up is not None and given_up():
                raise NotRetried(failures[-1])
            # Live connections may change between attempts: a retry goes to the next
            # instance that is still there.
            pool = self.instances(target) or instances
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
            return _failed(
                request_id, failed.error if isinstance(failed, NotRetried) else failed, attempts
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
        request = Request(request_id, image, content_type, digest, timeout, signer)
        exchange = Exchange()
        try:
            if dialout:
                body = await self._connected.send(
                    instance=instance, request=request, exchange=exchange
                )
            else:
                body = await self._endpoints.send(target, adapter, instance, request, exchange)
            latency = (time.perf_counter() - exchange.started) * 1000.0
            raw = body[:RAW_KEPT_CHARS].decode("utf-8", "replace")
            try:
                tags = adapter.parse_answer(body)
            except RecognizerBadFormat as exc:
                raise exc.with_raw(raw) from None
        except (RecognizerError, OSError) as exc:  # OSError: TimeoutError, SendFailed, ...
            latency = (time.perf_counter() - exchange.started) * 1000.0
            failed = _as_failure(exc, instance, timeout)
            _record(
                attempts,
                Attempt(number, instance, failed.outcome, latency, exchange.status, failed.detail),
            )
            if failed is exc:
                raise
            raise failed from None
        attempts.append(Attempt(number, instance, Outcome.OK, latency, exchange.status))
        ANSWERED.add(latency / 1000.0)
        return tags, raw, latency

    async def ping(
        self, instance: str, *, timeout_s: float = 5.0, adapter: Adapter = RECOGHUB
    ) -> PingResult:
        """Walk the protocol's health steps (recoghub-v1: GET {instance}/ping); reachable
        means each answered 200 with a body of at most 64 KiB that the protocol reads as
        healthy, and `detail` names the first step that did not. A dial-out instance is
        sent the ping message of SPEC §10 instead (status 200 means up)."""
        if is_dialout(instance):
            return await self._connected.ping(instance, timeout_s=timeout_s)
        return await self._endpoints.ping(instance, timeout_s=timeout_s, adapter=adapter)


def _failed(request_id: str, error: RecognizerError, attempts: list[Attempt]) -> Answer:
    """The answer of a request whose last attempt failed with `error`."""
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


def _record(attempts: list[Attempt], attempt: Attempt) -> None:
    """Keep a failed attempt for the logs and count it in the Prometheus metrics (an
    answered one is counted in `Dispatcher._attempt` itself, in `ANSWERED`)."""
    attempts.append(attempt)
    ATTEMPTS_BY_OUTCOME[attempt.outcome].inc()


def _as_failure(exc: RecognizerError | OSError, instance: str, timeout: float) -> RecognizerError:
    """What went wrong in an attempt, as the recognizer's error it is counted as."""
    if isinstance(exc, RecognizerError):
        return exc
    if isinstance(exc, TimeoutError):
        return RecognizerTimeout(f"no complete answer from {instance} within {timeout:g}s")
    # SendFailed, AddressNotAllowed (gateway.dispatch.client)
    return RecognizerConnectError(f"cannot reach {instance}: {exc}")


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RecognizerError) and exc.retryable
