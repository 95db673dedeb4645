"""Where the worker's statements run (`Database`): every store function runs in a
transaction of its own on one of two database threads, so the event loop keeps sending
while a batch commits. `DbThreads` has the threads in this process (tests, in-memory
SQLite); `engine.recorder.Recorder` has them in a recording process of their own (the
production workers: no SQL on the sender's GIL).

`hot` serves what sending waits on (claims, results, heartbeats, slot leases, image
files); `cold` the rest (surveys, scoring and closing services and runs, probes), so a
slow survey never holds up a claim.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")
P = ParamSpec("P")


def after_commit(then: Callable[..., T]) -> Callable[[Callable[P, Any]], Callable[P, T]]:
    """Mark a statement function `fn`: once its transaction has committed, the call's
    value is `then(value, **kwargs)` (state kept where the statements run, e.g. the lanes'
    live scorers, changes only with what was committed). Typed as the call returns it
    (`in_transaction`, as `Database` runs it), `then`'s type."""

    def mark(fn: Callable[P, Any]) -> Callable[P, T]:
        fn.after_commit = then  # type: ignore[attr-defined]
        return fn

    return mark


def in_transaction(engine: Engine, fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
    """`fn(conn, **kwargs)` in a transaction of its own (then its `after_commit`)."""
    conn: Connection
    with engine.begin() as conn:
        value = fn(conn, **kwargs)
    then = getattr(fn, "after_commit", None)
    return value if then is None else then(value, **kwargs)


class DatabaseLost(RuntimeError):
    """No statement can run any more (the recording process died): the worker stops, and
    its loops end quietly rather than retry."""


class Database(Protocol):
    """What the engine's parts call to run statements (see the module's docstring)."""

    async def hot(self, fn: Callable[..., T], /, **kwargs: Any) -> T: ...

    async def cold(self, fn: Callable[..., T], /, **kwargs: Any) -> T: ...

    async def on_hot_thread(self, fn: Callable[..., T], /, *args: Any) -> T: ...

    async def lost(self) -> BaseException:
        """Return (why) once no statement can run any more: the worker must restart."""
        ...

    def abandon(self) -> None: ...

    async def close(self) -> None: ...


class DbThreads:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._hot = ThreadPoolExecutor(1, thread_name_prefix="recoghub-db")
        self._cold = ThreadPoolExecutor(1, thread_name_prefix="recoghub-db-cold")

    async def hot(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`fn(conn, **kwargs)` in a transaction on the hot thread."""
        return await self._in_transaction(self._hot, fn, kwargs)

    async def cold(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`fn(conn, **kwargs)` in a transaction on the cold thread."""
        return await self._in_transaction(self._cold, fn, kwargs)

    async def on_hot_thread(self, fn: Callable[..., T], /, *args: Any) -> T:
        """`fn(*args)` on the hot thread, without a transaction (reading image files)."""
        return await asyncio.get_running_loop().run_in_executor(self._hot, fn, *args)

    async def _in_transaction(
        self, pool: ThreadPoolExecutor, fn: Callable[..., T], kwargs: dict[str, Any]
    ) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            pool, in_transaction, self.engine, fn, kwargs
        )

    async def lost(self) -> BaseException:
        """Never: threads of this process do not go away."""
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def abandon(self) -> None:
        """Stop both threads without waiting (nothing was started on them)."""
        self._hot.shutdown(wait=False)
        self._cold.shutdown(wait=False)

    async def close(self) -> None:
        """Wait for both threads to finish: a call still running would otherwise keep its
        connection past the engine's disposal."""
        await asyncio.to_thread(self._hot.shutdown, True)
        await asyncio.to_thread(self._cold.shutdown, True)
