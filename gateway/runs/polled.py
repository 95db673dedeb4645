"""The two reads polled while a run sends, served past FastAPI's routing.

The console, the CLI's `run watch` and any script watching a run ask `GET
/api/v1/runs/{id}` and `GET /api/v1/runs/{id}/leaderboard` again and again; on the
embedded default each costs the CPU the sending process runs on. FastAPI's routing, its
dependencies and their exits were most of such a request (a 404 cost 1.1 ms of CPU, its
look-up a twentieth of that), so `PolledReads` answers these two with the routes' own
functions (`routes.run_json`, `result_routes.leaderboard_json`), the caller
authenticated in the same one hand-over to a thread.

The routes stay where they are: they document these reads in the OpenAPI schema and
answer whatever the shortcut leaves to them (a query string such as `format=csv`, a run
id FastAPI would refuse, other methods). Installed as `RecognizeShortcut` is, inside the
hub's middlewares: the answers are marked nosniff, an unexpected error is the
catch-all's 500, and a HubError answers as the app's exception handler would.
"""

import re
from collections.abc import Callable

from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth import Principal, authenticate
from gateway.deps import bearer_token
from gateway.error_responses import hub_error_response
from gateway.errors import HubError
from gateway.runs.result_routes import leaderboard_json
from gateway.runs.routes import run_json
from gateway.state import HubState
from gateway.wire import MAX_ROW_ID

Read = Callable[[Session, int, Principal], Response]
# A run id of at most 10 digits without a sign: `RowIdPath` reads the same number; any
# other spelling goes to FastAPI (which answers 422 where it must).
_POLLED = re.compile(r"/api/v1/runs/(?P<run_id>[0-9]{1,10})(?P<leaderboard>/leaderboard)?")


class PolledReads:
    """Serves `GET /api/v1/runs/{id}` and `GET /api/v1/runs/{id}/leaderboard` (JSON)
    directly; any other request goes on to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = (
            _POLLED.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]
            else None
        )
        run_id = int(matched["run_id"]) if matched is not None else 0
        if not 1 <= run_id <= MAX_ROW_ID:
            await self.app(scope, receive, send)
            return
        assert matched is not None
        read: Read = leaderboard_json if matched["leaderboard"] else run_json
        state: HubState = scope["app"].state.hub
        token = bearer_token(Headers(scope=scope))
        try:
            response = await run_in_threadpool(_answer, state, token, read, run_id)
        except HubError as exc:
            response = hub_error_response(exc)
        await response(scope, receive, send)


def _answer(state: HubState, token: str | None, read: Read, run_id: int) -> Response:
    """In a thread: the caller (401 without a known token), then the read; the session is
    closed whatever happens."""
    session = state.sessions()
    try:
        principal = authenticate(session, token, configured_admin=state.settings.admin_token)
        principal.require_caller()
        return read(session, run_id, principal)
    finally:
        session.close()
