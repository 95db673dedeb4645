"""Functions a team might hand to the python backend (`tests.recognizer.team_models:...`)."""

import asyncio
import threading
from decimal import Decimal
from fractions import Fraction

import numpy as np


def ranked_pairs(image: bytes) -> list[tuple[str, float]]:
    # Listed worst first: the hub's ranking, not the team's order, decides.
    return [("small", 0.25), (f"bytes-{len(image)}", 0.75)]


def result_string(image: bytes) -> str:
    return "husky:0.8;malamute:0.15"


async def async_model(image: bytes) -> list[tuple[str, float]]:
    return [("async", 1.0)]


def numpy_scores(image: bytes) -> list[tuple[object, object]]:
    # What an sklearn model gives: numpy classes and probabilities.
    classes = np.array(["husky", "malamute", "wolf"])
    probabilities = np.array([0.81, 0.12, 0.07], dtype=np.float32)
    return list(zip(classes, probabilities, strict=True))


def numpy_class_indices(image: bytes) -> dict[object, object]:
    # Class indices as tags, a dict of scores of every numeric kind.
    return {np.int64(3): np.float64(0.97), np.int32(7): np.int64(0), 11: Fraction(1, 4)}


class Confidence:
    """A score object that is no numbers.Real but converts to float."""

    def __float__(self) -> float:
        return 0.5


def float_like_scores(image: bytes) -> list[tuple[object, object]]:
    return [("sled", Confidence()), (b"caf\xc3\xa9", Decimal("0.25"))]


def text_score(image: bytes) -> list[tuple[str, str]]:
    return [("cat", "0.9")]


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
