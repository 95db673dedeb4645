"""Start and stop fast benchmark recognizers as separate processes on 127.0.0.1."""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent


@contextmanager
def fast_recognizers(
    count: int, *, sleep_ms: float = 0.0, answer: str | None = None
) -> Iterator[list[str]]:
    """`count` recognizer processes (answering `answer` if given); yields their base URLs."""
    extra = ["--answer", answer] if answer is not None else []
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "fast_recognizer.py"),
                "--sleep-ms",
                str(sleep_ms),
                *extra,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        urls = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().split()
            urls.append(f"http://127.0.0.1:{line[1]}")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
