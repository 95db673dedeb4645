"""FastAPI dependencies: the hub's state, a database session per request, the caller."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session
from starlette.datastructures import Headers

from gateway.auth import Principal, authenticate
from gateway.state import HubState
from gateway.wire import MAX_ROW_ID


def get_state(request: Request) -> HubState:
    state: HubState = request.app.state.hub
    return state


HubStateDep = Annotated[HubState, Depends(get_state)]


def get_session(state: HubStateDep) -> Iterator[Session]:
    with state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# Where the body guard (gateway.middleware.body_guard) leaves the caller it authenticated
# before letting a request's body be read; the request's dependencies take it from there.
REQUEST_PRINCIPAL = "principal"


def get_principal(request: Request, state: HubStateDep, session: SessionDep) -> Principal:
    known = getattr(request.state, REQUEST_PRINCIPAL, None)
    if isinstance(known, Principal):
        return known
    token = bearer_token(request.headers)
    return authenticate(session, token, configured_admin=state.settings.admin_token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_admin(principal: PrincipalDep) -> Principal:
    principal.require_admin()
    return principal


def get_caller(principal: PrincipalDep) -> Principal:
    principal.require_caller()
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
CallerDep = Annotated[Principal, Depends(get_caller)]

# An id in a URL path (`/runs/{run_id}`, `/datasets/{dataset_id}`), bounded like `wire.RowId`
# (here, not in wire.py: the worker imports wire and must not pull in FastAPI).
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
