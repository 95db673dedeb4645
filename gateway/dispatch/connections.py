"""Recognize and ping requests to recognizers connected out to this hub process
(SPEC §10): a request frame over the connection, answered with a result string whatever
the service's protocol (the model-server protocols of SPEC §11 are ways of reaching
HTTP endpoints)."""

import asyncio
import time

from gateway.dialout import frames
from gateway.dialout.connections import Connection, Connections
from gateway.dispatch.answers import (
    ERROR_PREVIEW_BYTES,
    Exchange,
    PingResult,
    Request,
    new_request_id,
    status_detail,
)
from gateway.errors import Outcome, RecognizerConnectError, RecognizerError, RecognizerHttpError


class ConnectedInstances:
    """Sends over the process's dial-out connections; raises what
    `Dispatcher.recognize` turns into outcomes (RecognizerError, TimeoutError)."""

    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    def _connection(self, instance: str) -> Connection:
        connection = self.connections.get(instance)
        if connection is None:
            raise RecognizerConnectError(f"{instance} is no longer connected to this hub process")
        return connection

    async def send(self, *, instance: str, request: Request, exchange: Exchange) -> bytes:
        """The body of the recognizer's 200 answer to the signed request frame."""
        timestamp, signature = request.signed(request.digest)
        exchange.start()
        connection = self._connection(instance)
        frame = frames.request_frame(
            request_id=request.request_id,
            timestamp=timestamp,
            signature=signature,
            content_type=request.content_type,
            image=request.image,
        )
        async with asyncio.timeout(request.timeout):
            async with connection.slot():
                # Waiting for a free slot of the connection is the hub's own
                # queue, not the team's latency.
                exchange.start()
                reply = await connection.request(request.request_id, frame)
        status = exchange.status = reply.status
        if status != 200:
            preview = reply.body[:ERROR_PREVIEW_BYTES]
            refusal = RecognizerHttpError(status_detail(status, preview), status=status)
            raise refusal.with_raw(preview.decode("utf-8", "replace"))
        return reply.body

    async def ping(self, instance: str, *, timeout_s: float) -> PingResult:
        """Send the ping message of SPEC §10; status 200 means up."""
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
            detail = status_detail(reply.status, reply.body[:ERROR_PREVIEW_BYTES])
            return PingResult(instance, False, latency, reply.status, detail, Outcome.HTTP_ERROR)
        return PingResult(instance, True, latency, 200, None)
