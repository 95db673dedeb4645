"""Recognize and ping requests to a service's HTTP endpoints, through the hub's one HTTP
client and in the service's protocol (SPEC §2, §11)."""

import time

from gateway.dispatch.answers import (
    ERROR_PREVIEW_BYTES,
    Exchange,
    PingResult,
    Request,
    Target,
    status_detail,
)
from gateway.dispatch.client import HttpClient
from gateway.dispatch.protocols.recoghub_v1 import Adapter, no_answer
from gateway.errors import Outcome, RecognizerHttpError, RecognizerTooLarge
from gateway.protocol import signing
from gateway.protocol.result_string import MAX_RESULT_BYTES


class Endpoints:
    """Sends to HTTP endpoints; raises what `Dispatcher.recognize` turns into outcomes
    (RecognizerError, TimeoutError, OSError)."""

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    async def send(
        self, target: Target, adapter: Adapter, instance: str, request: Request, exchange: Exchange
    ) -> bytes:
        """The body of the instance's 200 answer to the signed recognize request."""
        image = request.image
        url, body_sent, headers = adapter.build_request(instance, image, request.content_type)
        # The signature covers the body actually sent.
        digest = request.digest if body_sent is image else signing.body_digest(body_sent)
        timestamp, signature = request.signed(digest)
        exchange.start()
        headers[signing.HEADER_REQUEST_ID] = request.request_id
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
            timeout_s=request.timeout,
            limit=adapter.max_answer_bytes,
            preview=ERROR_PREVIEW_BYTES,
        )
        status, body = response.status, response.body
        exchange.status = status
        if status != 200:
            refusal = RecognizerHttpError(status_detail(status, body), status=status)
            if not 300 <= status < 400:
                refusal.with_raw(body.decode("utf-8", "replace"))
            raise refusal
        return body

    async def ping(self, instance: str, *, timeout_s: float, adapter: Adapter) -> PingResult:
        """Walk the protocol's health steps (recoghub-v1: GET {instance}/ping); reachable
        means each answered 200 with a body of at most 64 KiB that the protocol reads as
        healthy, and `detail` names the first step that did not."""
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
