"""Experiment: report the garbage collector's pauses of a benchmarked hub process.

`recoghub_command(gc_trace=True)` imports this before the hub starts. Every collection
of 1 ms or more is written to stderr (the process's log) as

    GC-PAUSE gen=2 ms=12.34 collected=0

and `pauses(log_text)` reads them back for the benchmark's report. A pause stalls the
event loop, so the loop-lag sentinel (gateway/runs/engine/timing.py) sees it too: this
says which part of that lateness the collector caused.
"""

import gc
import re
import sys
import time

REPORTED_MS = 1.0
LINE = re.compile(r"GC-PAUSE gen=(\d) ms=([\d.]+)")


def install() -> None:
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - started[0]) * 1000.0
        if ms >= REPORTED_MS:
            sys.stderr.write(
                f"GC-PAUSE gen={info['generation']} ms={ms:.2f} collected={info['collected']}\n"
            )
            sys.stderr.flush()

    gc.callbacks.append(callback)


def pauses(log_text: str) -> list[tuple[int, float]]:
    """(generation, milliseconds) of each reported pause in a process's log."""
    return [(int(gen), float(ms)) for gen, ms in LINE.findall(log_text)]
