"""The recording process: every statement of a worker that sends runs in a child process of
its own, so the sending process runs no SQL and its event loop shares its GIL with no
database thread (issue 21).

`Recorder` has `DbThreads`' interface (`hot`, `cold`, `on_hot_thread`, `abandon`,
`close`, `lost`): `hot(fn, **kwargs)` sends `fn` (a module-level function, pickled by
name) and its arguments over a socketpair to the child, which runs `fn(conn, **kwargs)` in
a transaction on its own hot or cold thread, as `DbThreads` does in-process, and sends
back what it returned or raised. Many calls are in flight at once, their replies matched
by call id; the calls of one thread run in the order they were made.

    frame    4-byte big-endian length, then a pickle (protocol 5)
    call     (call id, "hot" | "cold", fn, kwargs)
    reply    (call id, True, value) | (call id, False, (pickled exception | None, repr))

An exception raised in the child is raised again by the caller with its type (and the
child's traceback as a note); one that cannot be pickled is raised as `RecorderError`
with its repr. Image files are read on a thread of the sending process (no SQL).

The child is started with the "spawn" context (never a fork of a process running an
event loop and threads), builds its own engine, ignores SIGINT (a terminal's Ctrl-C
reaches the whole group; the sender stops first and writes its last results), and exits
once its socket reaches end of file: when the sender closes it, or dies (kill -9). When
the child dies, every call pending or made later raises `RecorderGone` and `lost()`
returns, which ends `DispatchWorker.run`.
"""

import asyncio
import gc
import importlib
import logging
import multiprocessing
import pickle
import signal
import socket
import struct
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from gateway.runs.engine.threads import DatabaseLost, in_transaction

T = TypeVar("T")
log = logging.getLogger("recoghub.worker")

HEADER = struct.Struct("!I")
PROTOCOL = 5
# How long a closing sender waits for the child to exit once its socket is closed.
EXIT_WAIT_S = 30.0


class RecorderError(RuntimeError):
    """An exception raised in the recording process that could not be sent back as it
    was: its repr."""


class RecorderGone(DatabaseLost):
    """The recording process is gone: no statement can run, the worker must restart."""


def _frame(message: object) -> bytes:
    body = pickle.dumps(message, protocol=PROTOCOL)
    return HEADER.pack(len(body)) + body


class Recorder:
    """The sending process's end of a recording process (see the module's docstring)."""

    def __init__(self, database_url: str) -> None:
        """Use `Recorder.start`."""
        self.database_url = database_url
        self._socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._process = multiprocessing.get_context("spawn").Process(
            target=serve, args=(theirs, database_url), name="recoghub-recorder", daemon=True
        )
        self._theirs = theirs
        self._files = ThreadPoolExecutor(1, thread_name_prefix="recoghub-files")
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._gone: RecorderGone | None = None
        self._lost = asyncio.Event()
        self._closing = False

    @classmethod
    async def start(cls, database_url: str) -> "Recorder":
        """Start a recording process on `database_url`; calls may be made at once (they
        wait in the socket while the child starts)."""
        recorder = cls(database_url)
        try:
            await asyncio.to_thread(recorder._process.start)
        finally:
            recorder._theirs.close()
        reader, recorder._writer = await asyncio.open_unix_connection(
            sock=recorder._socket, limit=2**20
        )
        recorder._reading = asyncio.create_task(recorder._read(reader), name="recoghub-recorder")
        return recorder

    @property
    def pid(self) -> int | None:
        return self._process.pid

    async def hot(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`fn(conn, **kwargs)` in a transaction on the recording process's hot thread."""
        return await self._call("hot", fn, kwargs)

    async def cold(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`fn(conn, **kwargs)` in a transaction on the recording process's cold thread."""
        return await self._call("cold", fn, kwargs)

    async def on_hot_thread(self, fn: Callable[..., T], /, *args: Any) -> T:
        """`fn(*args)` on a thread of this process (reading image files: no SQL)."""
        return await asyncio.get_running_loop().run_in_executor(self._files, fn, *args)

    async def _call(self, thread: str, fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
        if self._gone is not None:
            raise self._gone
        assert self._writer is not None, "use Recorder.start"
        writer = self._writer
        self._next_id += 1
        call_id = self._next_id
        reply: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = reply
        try:
            writer.write(_frame((call_id, thread, fn, kwargs)))
        except Exception:
            del self._calls[call_id]
            raise
        # A cancelled caller does not cancel the statement: its reply is dropped.
        return await reply

    async def _read(self, reader: asyncio.StreamReader) -> None:
        calls = self._calls
        try:
            while True:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                call_id, ok, value = pickle.loads(await reader.readexactly(size))
                reply = calls.pop(call_id, None)
                if reply is None or reply.done():
                    continue
                if ok:
                    reply.set_result(value)
                else:
                    reply.set_exception(_raised(*value))
        except (asyncio.IncompleteReadError, ConnectionError):
            reason = "closed" if self._closing else "died"
        except Exception as error:  # a frame that cannot be read: a bug
            log.exception("reading the recording process's replies failed")
            reason = f"could not be read ({error!r})"
        await asyncio.to_thread(self._process.join, 1.0)
        code = self._process.exitcode
        self._gone = RecorderGone(
            f"the recording process (pid {self.pid}) {reason}"
            + ("" if code is None else f" (exit code {code})")
        )
        for reply in calls.values():
            if not reply.done():
                reply.set_exception(self._gone)
        calls.clear()
        self._lost.set()

    async def lost(self) -> BaseException:
        """Wait until the recording process is gone; returns why (`RecorderGone`)."""
        await self._lost.wait()
        assert self._gone is not None
        return self._gone

    def abandon(self) -> None:
        """Close the socket without waiting: the child exits by itself."""
        self._closing = True
        if self._writer is not None:
            self._writer.close()
        else:
            self._socket.close()
            self._theirs.close()
        self._files.shutdown(wait=False)

    async def close(self) -> None:
        """Wait for the calls in flight, close the socket, and wait for the child to
        finish its statements and exit (killed if it does not in `EXIT_WAIT_S`)."""
        pending = [reply for reply in self._calls.values() if not reply.done()]
        if pending:
            await asyncio.wait(pending)
        self.abandon()
        if self._reading is not None:
            await asyncio.gather(self._reading, return_exceptions=True)
        await asyncio.to_thread(self._process.join, EXIT_WAIT_S)
        if self._process.exitcode is None:
            log.error("the recording process (pid %s) did not exit; killing it", self.pid)
            self._process.kill()
            await asyncio.to_thread(self._process.join)
        await asyncio.to_thread(self._files.shutdown, True)


def _raised(pickled: bytes | None, text: str) -> BaseException:
    """The exception the child sent back, or a RecorderError with its repr."""
    if pickled is not None:
        try:
            exc = pickle.loads(pickled)
        except Exception:
            pass
        else:
            if isinstance(exc, BaseException):
                return exc
    return RecorderError(text)


# The child's side.


def serve(sock: socket.socket, database_url: str) -> None:
    """The recording process: run the calls read from `sock` until it reaches end of
    file, then finish the calls in flight and exit."""
    from gateway.db import make_engine

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s recorder %(message)s")
    engine = make_engine(database_url)
    # The modules whose functions the worker sends (pickled by name) are imported now, as
    # the worker imports them, not by the first calls of its first run: a fifth of a
    # second of this process's CPU that would otherwise hold up those calls.
    importlib.import_module("gateway.runs.engine.worker")
    # Batches make many young objects and no cycles worth collecting often (as the
    # sender's `process.tune_gc`).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    threads = {
        "hot": ThreadPoolExecutor(1, thread_name_prefix="recoghub-db"),
        "cold": ThreadPoolExecutor(1, thread_name_prefix="recoghub-db-cold"),
    }
    sending = threading.Lock()

    def reply(message: tuple[int, bool, object]) -> None:
        try:
            frame = _frame(message)
        except Exception as error:  # a value that cannot be pickled
            frame = _frame((message[0], False, _pickled_error(error)))
        with sending:
            try:
                sock.sendall(frame)
            except OSError:
                pass  # the sender is gone; the reader sees end of file and we exit

    def run(call_id: int, fn: Callable[..., object], kwargs: dict[str, Any]) -> None:
        try:
            value = in_transaction(engine, fn, kwargs)
        except BaseException as error:
            reply((call_id, False, _pickled_error(error)))
        else:
            reply((call_id, True, value))

    stream = sock.makefile("rb")
    try:
        while True:
            header = stream.read(HEADER.size)
            if len(header) < HEADER.size:
                break
            (size,) = HEADER.unpack(header)
            body = stream.read(size)
            if len(body) < size:
                break
            call_id, thread, fn, kwargs = pickle.loads(body)
            threads[thread].submit(run, call_id, fn, kwargs)
    finally:
        for pool in threads.values():
            pool.shutdown(wait=True)
        stream.close()
        sock.close()
        engine.dispose()


def _pickled_error(error: BaseException) -> tuple[bytes | None, str]:
    """An exception as the reply carries it: pickled (with the child's traceback as a
    note) when it can be, and its repr."""
    text = repr(error)
    try:
        error.add_note("in the recording process:\n" + "".join(traceback.format_exception(error)))
        pickled = pickle.dumps(error, protocol=PROTOCOL)
        pickle.loads(pickled)
    except Exception:
        return None, text
    return pickled, text
