"""Functions a team might hand to the python backend (`tests.recognizer.team_models:...`)."""

import threading
import time


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


class Probe:
    """Counts how many calls run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.active = 0
        self.peak = 0

    def __call__(self, image: bytes) -> str:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.05)  # a model that takes a while, so that calls would overlap
        with self.lock:
            self.active -= 1
        return "busy:1"


probe = Probe()
