"""FastAPI dependencies: the hub's state, a database session per request, the caller.

They are coroutines, and touch the database only in the thread pool: FastAPI runs a plain
function dependency in a thread of its own, a hand-over that cost the API about 0.2 ms of
CPU each (six per GET of a run, where two are needed: the route's own and the session's
close). Opening a session reads nothing; the admin token is checked without a lookup.

The routes polled during a run (its progress and leaderboard) save the other two
hand-overs: they end their session's transaction in their own thread (`read_only`), and
answer JSON they serialized there (`json_response`), which FastAPI would validate again
in a thread of its own.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import Response
from pydantic import TypeAdapter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from gateway.auth import ADMIN, ANONYMOUS, Principal, is_configured_admin, look_up
from gateway.state import HubState
from gateway.wire import MAX_ROW_ID


async def get_state(request: Request) -> HubState:
    state: HubState = request.app.state.hub
    return state


HubStateDep = Annotated[HubState, Depends(get_state)]


async def get_session(state: HubStateDep) -> AsyncIterator[Session]:
    session = state.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)  # gives its connection back: a statement
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


@contextmanager
def read_only(session: Session) -> Iterator[Session]:
    """The session of a route that only reads, closed as the block ends (returns or
    raises) in the route's thread: `get_session` then has no transaction to hand over."""
    try:
        yield session
    finally:
        session.close()


def json_response(adapter: TypeAdapter[Any], value: Any) -> Response:
    """`value` as FastAPI answers it for a `response_model` of `adapter`'s type (validated
    from attributes, serialized by alias): the same bytes, without its thread hand-over.
    The route still declares `response_model` for the OpenAPI schema."""
    valid = adapter.validate_python(value, from_attributes=True)
    return Response(adapter.dump_json(valid, by_alias=True), media_type="application/json")


def bearer_token(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# Where the body guard (gateway.middleware.body_guard) leaves the caller it authenticated
# before letting a request's body be read; the request's dependencies take it from there.
REQUEST_PRINCIPAL = "principal"


async def get_principal(request: Request, state: HubStateDep, session: SessionDep) -> Principal:
    known = getattr(request.state, REQUEST_PRINCIPAL, None)
    if isinstance(known, Principal):
        return known
    token = bearer_token(request.headers)
    if not token:
        return ANONYMOUS
    admin = state.settings.admin_token
    if is_configured_admin(token, admin):
        return ADMIN
    return await run_in_threadpool(look_up, session, token, configured_admin=admin)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_admin(principal: PrincipalDep) -> Principal:
    principal.require_admin()
    return principal


async def get_caller(principal: PrincipalDep) -> Principal:
    principal.require_caller()
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
CallerDep = Annotated[Principal, Depends(get_caller)]

# An id in a URL path (`/runs/{run_id}`, `/datasets/{dataset_id}`), bounded like `wire.RowId`
# (here, not in wire.py: the worker imports wire and must not pull in FastAPI).
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
