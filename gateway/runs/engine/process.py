"""Running the dispatch worker: embedded in the hub, or as `recoghub worker`.

SQLite allows one worker per database: it holds an exclusive lock on `<db>.worker.lock`
(flock; the kernel drops it when the process dies), and, holding it, frees at once the
leases a killed hub left behind, so a restarted hub resumes its runs by itself. On
PostgreSQL any number of workers share the database; a dead worker's leases expire
after `lease_s` and the others take its work.

A worker's statements run in a recording process of its own (`engine.recorder`), started
with the worker and gone with it; when that process dies the worker stops: the embedded
one starts again (with a new recording process), `recoghub worker` exits with status 1
and one line saying so, for its supervisor to start it again.
"""

import asyncio
import contextlib
import fcntl
import gc
import logging
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, make_url

from gateway.config import Settings
from gateway.db import is_sqlite, make_engine, make_session_factory
from gateway.dispatch.client import make_client_session
from gateway.dispatch.dispatcher import Dispatcher
from gateway.runs.engine.recorder import Recorder
from gateway.runs.engine.threads import Database, DbThreads
from gateway.runs.engine.timing import wait_event
from gateway.runs.engine.worker import DispatchWorker
from gateway.state import HubState

if TYPE_CHECKING:
    from gateway.dialout.handover import ServeLink

log = logging.getLogger("recoghub.worker")
RESTART_PAUSE_S = 5.0


class WorkerRefused(RuntimeError):
    """This process may not dispatch: another worker holds the SQLite database, or the
    database has no RecogHub schema."""


def sqlite_lock_path(database_url: str) -> Path | None:
    """`<db>.worker.lock` beside a SQLite database file; None for other databases and
    for in-memory SQLite."""
    if not is_sqlite(database_url):
        return None
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(f"{database}.worker.lock")


@contextlib.contextmanager
def worker_lock(database_url: str) -> Iterator[bool]:
    """Hold the database's worker lock while the block runs; yields True when this worker
    is then the only one (SQLite), False when workers share the database (PostgreSQL).

    Raises WorkerRefused when another process holds the SQLite lock.
    """
    path = sqlite_lock_path(database_url)
    if path is None:
        yield is_sqlite(database_url)
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkerRefused(
            f"another worker already dispatches the runs of {make_url(database_url).database}"
            f" (it holds {path}); SQLite allows one worker; use PostgreSQL for several"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield True
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


async def worker_database(database_url: str, engine: Engine) -> Database:
    """Where a worker's statements run: a recording process of its own on `database_url`;
    threads of this process on `engine` for an in-memory SQLite database, which no other
    process can open."""
    if is_sqlite(database_url) and sqlite_lock_path(database_url) is None:
        return DbThreads(engine)
    return await Recorder.start(database_url)


def tune_gc() -> None:
    """Keep the cyclic garbage collector out of the way of dispatch.

    Every collection stops the event loop, and its time lands in the latency recorded
    for the answers waiting meanwhile. Objects alive once the process is up (modules,
    the app, the engine) are frozen out of the collections, and young objects are
    collected less often (every 10,000 allocations instead of 700).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


async def run_embedded_worker(state: HubState, stop: asyncio.Event) -> None:
    """The hub's own worker, in its event loop, until `stop` is set. When another process
    already dispatches this SQLite database, this hub serves the API only. A worker that
    fails (the database unreachable at start, say) is started again after a pause."""
    try:
        with worker_lock(state.settings.database_url) as exclusive:
            tune_gc()
            while not stop.is_set():
                worker = DispatchWorker(
                    db=await worker_database(state.settings.database_url, state.engine),
                    dispatcher=state.dispatcher,
                    settings=state.settings,
                    exclusive=exclusive,
                    public_url=state.settings.public_url,
                )
                state.worker = worker
                try:
                    await worker.run(stop)
                except Exception:
                    log.exception("the embedded worker failed; starting it again")
                    await wait_event(stop, RESTART_PAUSE_S)
    except WorkerRefused as refused:
        log.warning("%s; this hub process serves the API only", refused)
        await stop.wait()


async def serve_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    listen: "socket.socket | None" = None,
    handed: "ServeLink | None" = None,
) -> None:
    """A standalone worker with its own engine and HTTP session, until `stop` is set.
    With `listen`, it also accepts dial-out recognizers there (`settings.public_url` is
    what they are told). With `handed` (the worker child of `recoghub serve`), it serves
    the dial-out connections the API process hands over on that channel, and stops
    when that process is gone (gateway.dialout.handover).

    Raises WorkerRefused (see `worker_lock`, or a database never migrated).
    """
    from gateway.migrate import current_revision

    with worker_lock(settings.database_url) as exclusive:
        engine = make_engine(settings.database_url)
        try:
            if current_revision(engine) is None:
                raise WorkerRefused(
                    "the database has no RecogHub schema yet; run `recoghub migrate` "
                    "(or start `recoghub serve` once) first"
                )
            http = make_client_session(settings)
            tune_gc()
            accepts = listen is not None or handed is not None
            try:
                worker = DispatchWorker(
                    db=await worker_database(settings.database_url, engine),
                    dispatcher=Dispatcher(http, settings),
                    settings=settings,
                    exclusive=exclusive,
                    public_url=settings.public_url if accepts else None,
                    dialout_grace=accepts,
                )
                await _run_with_listener(worker, engine, stop, listen=listen, handed=handed)
            finally:
                await http.close()
        finally:
            engine.dispose()


async def _run_with_listener(
    worker: DispatchWorker,
    engine: Engine,
    stop: asyncio.Event,
    *,
    listen: "socket.socket | None",
    handed: "ServeLink | None",
) -> None:
    """Run the worker; with `listen` or `handed`, serve the connect route beside it until
    the worker has stopped (its requests in flight over those connections finish first)."""
    if listen is None and handed is None:
        await worker.run(stop)
        return
    from gateway.dialout.listener import serve_connect_route
    from gateway.dialout.routes import DialoutHost

    host = DialoutHost(
        worker.settings,
        make_session_factory(engine),
        worker.dispatcher.connections,
        lambda: worker.id,
    )
    stopped = asyncio.Event()
    listener = asyncio.create_task(
        serve_connect_route(host, listen, stopped, handed=handed, handed_closed=stop.set)
    )
    try:
        await worker.run(stop)
    finally:
        stopped.set()
        await listener


def run_worker_process(
    settings: Settings,
    *,
    listen: "socket.socket | None" = None,
    handed: "ServeLink | None" = None,
) -> None:
    """Run `serve_worker` on uvloop until SIGTERM or SIGINT; the worker then finishes its
    requests in flight (briefly), writes its results and releases its leases."""
    import uvloop

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve_worker(settings, stop, listen=listen, handed=handed)

    uvloop.run(main())
