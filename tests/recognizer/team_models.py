"""Functions a team might hand to the python backend (`tests.recognizer.team_models:...`)."""

import asyncio
import threading


def ranked_pairs(image: bytes) -> list[tuple[str, float]]:
    # Listed worst first: the hub's ranking, not the team's order, decides.
    return [("small", 0.25), (f"bytes-{len(image)}", 0.75)]


def result_string(image: bytes) -> str:
    return "husky:0.8;malamute:0.15"


async def async_model(image: bytes) -> list[tuple[str, float]]:
    return [("async", 1.0)]


def no_score(image: bytes) -> str:
    return "cat:0.9;bird:0.2;dog"


def not_a_result(image: bytes) -> int:
    return 42


def crashes(image: bytes) -> str:
    raise RuntimeError("CUDA out of memory")


NOT_CALLABLE = "just a string"


class Gate:
    """A model held at a gate: each call counts itself in, waits until the test lets one
    call through (`release`), and counts itself out. Async, so the backend's thread pool
    does not bound it: only the recognizer's own concurrency limit does."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.active = 0
        self.peak = 0
        self.done = 0
        self.passes = threading.Semaphore(0)

    def release(self, calls: int = 1) -> None:
        self.passes.release(calls)

    async def __call__(self, image: bytes) -> str:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            while not self.passes.acquire(blocking=False):
                await asyncio.sleep(0.005)
        finally:
            with self.lock:
                self.active -= 1
                self.done += 1
        return "busy:1"


gate = Gate()


async def gated(image: bytes) -> str:
    return await gate(image)
