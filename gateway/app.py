"""The hub's ASGI app: lifespan (engine, sessions, one HTTP client, worker) and routes."""

import asyncio
import contextlib
import functools
import gc
import logging
import sys
from collections.abc import AsyncIterator, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from gateway import __version__
from gateway.auth import ensure_admin_token
from gateway.challenges.file_routes import router as challenge_files_router
from gateway.challenges.files import resume_scoring
from gateway.challenges.routes import router as challenges_router
from gateway.config import Settings, get_settings
from gateway.datasets.routes import router as datasets_router
from gateway.db import make_engine, make_session_factory, transaction
from gateway.dialout.routes import DialoutHost
from gateway.dialout.routes import router as dialout_router
from gateway.dispatch.client import make_client_session
from gateway.dispatch.dispatcher import Dispatcher
from gateway.error_responses import hub_error_response
from gateway.errors import HubError
from gateway.middleware.body_guard import BodyGuard
from gateway.middleware.nosniff import NoSniff
from gateway.migrate import upgrade
from gateway.notify.notifier import Notifier
from gateway.notify.routes import router as notify_router
from gateway.observability import router as metrics_router
from gateway.openapi import install_openapi
from gateway.registry.routes import providers_router, services_router, whoami_router
from gateway.relay.routes import RecognizeShortcut
from gateway.relay.routes import router as relay_router
from gateway.runs.engine.process import run_embedded_worker
from gateway.runs.polled import PolledReads
from gateway.runs.result_routes import router as run_results_router
from gateway.runs.routes import router as runs_router
from gateway.state import HubState
from gateway.unhandled import UnhandledErrors
from gateway.web.api_docs import router as api_docs_router
from gateway.web.routes import router as web_router
from gateway.worker_child import WorkerChild

log = logging.getLogger("recoghub")
API_PREFIX = "/api/v1"


def announce_admin_token(token: str) -> None:
    """Printed once, at the first start, when no RECOGHUB_ADMIN_TOKEN is set."""
    sys.stderr.write(
        f"\nRecogHub generated the organizer's admin token (shown only now):\n  {token}\n"
        "Keep it, or set RECOGHUB_ADMIN_TOKEN yourself.\n\n"
    )


def create_app(
    settings: Settings | None = None, *, worker_child: WorkerChild | None = None
) -> FastAPI:
    """The hub app. `settings` defaults to the environment's (`get_settings()`).

    The dispatch worker (unless `settings.embedded_worker` is off) runs in this event
    loop; with `worker_child` (`recoghub serve`), it runs in that child process instead,
    started and stopped with the app, and this process runs none."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        upgrade(engine)
        sessions = make_session_factory(engine)
        with transaction(sessions) as session:
            generated = ensure_admin_token(session, settings.admin_token)
        if generated:
            announce_admin_token(generated)
        http = make_client_session(settings)
        state = HubState(settings, engine, sessions, http, Dispatcher(http, settings))
        app.state.hub = state
        app.state.dialout = DialoutHost(
            settings, sessions, state.dispatcher.connections, lambda: _worker_id(state)
        )
        stop = asyncio.Event()
        # Prediction files a stopped hub left `scoring` are scored again (SPEC §13).
        resumed = asyncio.get_running_loop().run_in_executor(
            None, functools.partial(resume_scoring, sessions, settings=settings)
        )
        if worker_child is not None:
            worker_child.start(state.dispatcher.connections)
            state.worker_metrics = worker_child.metrics
        worker = (
            asyncio.create_task(run_embedded_worker(state, stop), name="recoghub-worker")
            if settings.embedded_worker and worker_child is None
            else None
        )

        async def stop_dispatch() -> None:
            """Stop the worker: requests in flight finish (briefly), results are written,
            leases released. `recoghub serve` calls it before closing the dial-out
            connections, so that its own shutdown costs no team a result."""
            stop.set()
            if worker_child is not None:
                await worker_child.stop()
            if worker is not None and not worker.done():
                await asyncio.wait({worker}, timeout=10)
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker

        app.state.stop_dispatch = stop_dispatch
        # Teams' webhooks, on a task and an HTTP client of their own (gateway.notify).
        notifier = asyncio.create_task(
            Notifier(engine=engine, settings=settings).run(stop), name="recoghub-notifier"
        )
        # Start-up leaves ~100k long-lived objects; a full collection over them stalls
        # every request in flight for 100+ ms (recorded as the teams' latency). Freezing
        # them keeps the collector to what the hub allocates afterwards.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await stop_dispatch()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(notifier, timeout=10)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(resumed), timeout=10)
            await http.close()
            engine.dispose()

    # /docs and /redoc are the hub's own (gateway.web.api_docs): FastAPI's need a CDN.
    # FastAPI's OpenTelemetry is off: the hub's metrics are Prometheus' (GET /metrics),
    # and asking OpenTelemetry whether it is configured cost some 15 µs every request.
    app = FastAPI(
        title="RecogHub",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    install_openapi(app)
    # Added last is outermost. The catch-all answers for the guard too, and every answer,
    # the catch-all's 500 included, leaves marked nosniff. The shortcuts of the relay and
    # of the reads polled during a run are innermost: they answer what the router would,
    # sooner.
    app.add_middleware(RecognizeShortcut)
    app.add_middleware(PolledReads)
    app.add_middleware(
        BodyGuard,
        max_bytes=settings.max_json_bytes,
        submission_max_bytes=settings.submission_max_bytes,
    )
    app.add_middleware(UnhandledErrors)
    app.add_middleware(NoSniff)

    @app.get(f"{API_PREFIX}/ping", tags=["hub"])
    async def ping() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    for router in (
        whoami_router,
        providers_router,
        notify_router,
        services_router,
        relay_router,
        datasets_router,
        runs_router,
        run_results_router,
        challenges_router,
        challenge_files_router,
        dialout_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(metrics_router)
    app.include_router(web_router)
    app.include_router(api_docs_router)
    return app


def _worker_id(state: HubState) -> str | None:
    return state.worker.id if state.worker is not None else None


def _error(
    status: int, detail: str, code: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path."""
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as `{"detail", "code"}`."""

    @app.exception_handler(HubError)
    async def hub_error(_: Request, exc: HubError) -> JSONResponse:
        return hub_error_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        if exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
            # The router names the methods of the first route of the path it met, one of
            # several (GET /services/{guid}, then PATCH, DELETE): name every one. OPTIONS
            # is no operation of the API (the schema has none), so it is a 405 too.
            methods = allowed_methods(request)
            detail = (
                f"{request.method} is not allowed on {request.url.path[:200]}; "
                f"it allows {', '.join(methods)}"
            )
            return _error(405, detail, code, {**exc.headers, "Allow": ", ".join(methods)})
        # Keeps Starlette's headers.
        return _error(exc.status_code, str(exc.detail), code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        return _error(422, problems or "invalid request", "invalid_input")
