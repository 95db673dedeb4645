"""Floats kept sorted in runs, for `ServiceScorer` (gateway.scoring.metrics): a run of
100,000 images scores in nearly flat memory (SPEC §8) when each per-image figure is a
float in a sorted `array('d')` run, the runs merged lazily."""

import heapq
import struct
from array import array
from collections.abc import Iterable, Iterator
from itertools import chain


class SortedPool:
    """Floats kept as descending `array('d')` runs of `run_size` plus an unsorted tail."""

    __slots__ = ("_runs", "_tail", "_run_size")

    def __init__(self, run_size: int) -> None:
        if run_size < 1:
            raise ValueError(f"sort_run_size must be at least 1, got {run_size}")
        self._runs: list[array[float]] = []
        self._tail: array[float] = array("d")
        self._run_size = run_size

    def __len__(self) -> int:
        return sum(map(len, self._runs)) + len(self._tail)

    def extend(self, values: Iterable[float]) -> None:
        tail = self._tail
        if isinstance(values, list):
            # Packed in one C call: `array.extend` converts a list's floats one by one.
            tail.frombytes(struct.pack(f"{len(values)}d", *values))
        else:
            tail.extend(values)
        size = self._run_size
        while len(tail) >= size:
            self._runs.append(array("d", sorted(tail[:size], reverse=True)))
            tail = self._tail = tail[size:]

    def merge(self, other: "SortedPool") -> None:
        """Add every value of `other`: its arrays copied as they are (`extend` of an
        iterator makes a float of each value)."""
        for values in (*other._runs, other._tail):
            self.extend(values)

    def values(self) -> Iterator[float]:
        """Every value, in no particular order."""
        return chain(*self._runs, self._tail)

    def descending(self) -> Iterator[float]:
        streams: list[Iterable[float]] = list(self._runs)
        if self._tail:
            streams.append(sorted(self._tail, reverse=True))
        if len(streams) == 1:
            return iter(streams[0])
        return heapq.merge(*streams, reverse=True)


def merge_flags(right: Iterator[float], wrong: Iterator[float]) -> Iterator[bool]:
    """Merge two descending score streams into correctness flags in ranked order:
    score descending, incorrect before correct on equal scores."""
    r = next(right, None)
    w = next(wrong, None)
    while r is not None or w is not None:
        if w is not None and (r is None or w >= r):
            yield False
            w = next(wrong, None)
        else:
            yield True
            r = next(right, None)
