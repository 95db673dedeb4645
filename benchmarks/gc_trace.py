"""Experiment: when did a benchmarked worker's event loop stall, and was it the collector?

`recoghub_command(gc_trace=True)` imports this before the hub starts. It writes to
stderr (the process's log)

    GC-PAUSE gen=2 ms=12.34 end=1733362245.123456     a collection of 1 ms or more
    LOOP-LATE ms=3.21 end=1733362245.130000           the loop-lag sentinel of
                                                      gateway/runs/engine/timing.py woke
                                                      2 ms or more late

(`end`: wall-clock seconds, the clock of a result's `finished_at`), and `stalls(log)`
reads them back. The benchmark then asks of the slowest results whether their answers
were handled just after such a stall (`explained`): an answer that arrives while the loop
stands still waits, and that wait is recorded as the team's latency.
"""

import gc
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

GC_REPORTED_MS = 1.0
LATE_REPORTED_MS = 2.0
LINE = re.compile(r"(GC-PAUSE gen=(\d)|LOOP-LATE) ms=([\d.]+) end=([\d.]+)")


def install() -> None:
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - started[0]) * 1000.0
        if ms >= GC_REPORTED_MS:
            _write(f"GC-PAUSE gen={info['generation']} ms={ms:.2f} end={time.time():.6f}")

    gc.callbacks.append(callback)

    # The sentinel's own samples, as they are taken (it keeps only their percentiles).
    from gateway.runs.engine import timing

    original = timing.LoopLag.run

    async def run(self: timing.LoopLag) -> None:
        late_ms = self._late_ms

        class Watched(list[float]):
            def append(self, late: float) -> None:
                if late >= LATE_REPORTED_MS:
                    _write(f"LOOP-LATE ms={late:.2f} end={time.time():.6f}")
                super().append(late)

        self._late_ms = Watched(late_ms)
        take = self.take

        def take_watched() -> timing.LagWindow | None:
            window = take()
            self._late_ms = Watched(self._late_ms)
            return window

        self.take = take_watched  # type: ignore[method-assign]
        await original(self)

    timing.LoopLag.run = run  # type: ignore[method-assign]


def _write(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@dataclass(frozen=True, slots=True)
class Stall:
    kind: str  # "gc0", "gc1", "gc2" or "loop"
    ms: float
    end: float  # wall-clock seconds


def stalls(log_text: str) -> list[Stall]:
    """The stalls a process's log reports."""
    return [
        Stall(f"gc{gen}" if gen else "loop", float(ms), float(end))
        for _, gen, ms, end in LINE.findall(log_text)
    ]


def gc_summary(found: Sequence[Stall]) -> str:
    gcs = [s for s in found if s.kind.startswith("gc")]
    if not gcs:
        return "GC: no pause of 1 ms or more"
    parts = []
    for kind in sorted({s.kind for s in gcs}):
        ms = [s.ms for s in gcs if s.kind == kind]
        parts.append(f"gen {kind[2:]}: {len(ms)}, {sum(ms):.0f} ms in all, max {max(ms):.1f}")
    return "GC pauses >= 1 ms: " + "; ".join(parts)


def explained(handled_at: Sequence[float], found: Sequence[Stall], *, kinds: str) -> float:
    """The share of `handled_at` (when each answer was handled, wall-clock seconds) that
    fell within a stall of one of `kinds` ("gc", "loop") or the 2 ms after its end."""
    windows = sorted(
        (s.end - s.ms / 1000.0, s.end + 0.002) for s in found if s.kind.startswith(kinds)
    )
    if not handled_at:
        return 0.0
    inside = 0
    for at in handled_at:
        inside += any(start <= at <= end for start, end in windows)
    return inside / len(handled_at)
