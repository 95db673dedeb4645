"""Live scores: the SPEC §6 figures of one run service kept as counters while it runs,
so that progress and leaderboard requests cost the same at 10 or 1,000,000 results.

A `LiveTally` is added to one recorded result at a time, or merged with another tally
(a batch's tally into the stored one); the same results in any order and any split into
batches give the same counters. What it holds and how exact each figure is:

- exact: images scored, counts per outcome, top-1 and top-5 (as counts over the images
  with a true set, the way `ServiceScorer` counts them), latency max, min and count,
  throughput (from the earliest request sent to the latest answer, as
  `gateway.runs.finish.elapsed_s`);
- latency mean: the running sum of the `ok` latencies over their count, equal to the
  full rescore up to float rounding (the rescore sums with `math.fsum`);
- latency p50/p90/p99: from a histogram of log buckets `BUCKET_RATIO` apart
  (bucket i holds [r^i, r^(i+1)) ms); a percentile is the nearest-rank bucket's
  geometric middle, clamped to the exact min and max, so it is within
  `PERCENTILE_ERROR` (0.5%) of the exact nearest-rank value, relatively (exact when it
  is the smallest or the largest value). At most `MAX_BUCKETS` (2,315) buckets:
  latencies outside [MIN_MS, MAX_MS] go to the end buckets, where the bound does not
  hold; a service whose answers take 1 to 1,000 ms fills at most about 700.
- coverage@95, coverage@99 and µAP need every ranked score and are not kept: null while
  the service runs. The final figures of a passed or failed service come from the full
  rescore stored with it (`RunService.scores`), exact as ever.
"""

import bisect
import itertools
import json
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.errors import OUTCOMES, Outcome
from gateway.scoring.metrics import PERCENTILES, Counts, nearest_rank
from gateway.scoring.ranking import first_true_place, truth_set

BUCKET_RATIO = 1.01
PERCENTILE_ERROR = math.sqrt(BUCKET_RATIO) - 1  # 0.4988%
MIN_MS = 1e-3
MAX_MS = 1e7
_LOG_RATIO = math.log(BUCKET_RATIO)
_LOWEST = math.floor(math.log(MIN_MS) / _LOG_RATIO)
_HIGHEST = math.floor(math.log(MAX_MS) / _LOG_RATIO)
MAX_BUCKETS = _HIGHEST - _LOWEST + 1
_OK = Outcome.OK.value
# A result as `LiveTally.add_many` takes it: (outcome, tags, truth, latency_ms, finished_at);
# and the part of it that times the service: (outcome, latency_ms, finished_at).
Tallied = tuple[str, Sequence[Sequence[Any]] | None, Sequence[str], float | None, datetime | None]
Timed = tuple[str, float | None, datetime | None]
_TIMES = operator.itemgetter(0, 3, 4)


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket of a latency (ms), clamped to the buckets kept."""
    if not latency_ms > MIN_MS:
        return _LOWEST
    bucket = math.floor(math.log(latency_ms) / _LOG_RATIO)
    return _HIGHEST if bucket > _HIGHEST else _LOWEST if bucket < _LOWEST else bucket


def bucket_middle(bucket: int) -> float:
    """The geometric middle of a bucket, in ms."""
    return math.exp((bucket + 0.5) * _LOG_RATIO)


@dataclass
class LiveTally:
    """Counters of one run service's recorded results (the columns of `live_scores`)."""

    images: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    with_truth: int = 0  # images with a true set: N of top-k
    true_pairs: int = 0  # N_gt of µAP, kept for when it is scored
    top1: int = 0
    top5: int = 0
    latency_count: int = 0
    latency_sum: float = 0.0
    latency_max: float | None = None
    latency_min: float | None = None
    latency_buckets: dict[int, int] = field(default_factory=dict)
    first_finished_at: datetime | None = None
    first_sent_at: datetime | None = None
    last_finished_at: datetime | None = None

    def add(
        self,
        *,
        outcome: str,
        tags: Sequence[Sequence[Any]] | None,
        truth: Sequence[str],
        latency_ms: float | None,
        finished_at: datetime | None,
    ) -> None:
        """Count one recorded result: its outcome, its ranked `[tag, score]` pairs, its
        image's true tags, its latency and when it was recorded. Tags and latency of an
        answer that is not `ok` are ignored, as the full rescore ignores them; a latency
        that is not finite is not counted."""
        self.add_many(((outcome, tags, truth, latency_ms, finished_at),))

    def add_many(self, results: Sequence[Tallied]) -> None:
        """`add` of each `(outcome, tags, truth, latency_ms, finished_at)`, in one loop (a
        worker's batch)."""
        outcomes = self.outcomes
        images = with_truth = true_pairs = top1 = top5 = 0
        for outcome, tags, truth, _, _ in results:
            images += 1
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            true = truth_set(truth)
            true_pairs += len(true)
            if true:
                with_truth += 1
                if tags and outcome == _OK:
                    rank = first_true_place(tags, true, within=5)
                    if rank is not None and rank <= 5:
                        top5 += 1
                        top1 += rank == 1
        self.images += images
        self.with_truth += with_truth
        self.true_pairs += true_pairs
        self.top1 += top1
        self.top5 += top5
        self._add_times(map(_TIMES, results))

    def add_scored(self, counts: Counts, times: Iterable[Timed]) -> None:
        """Count results a `ServiceScorer` of their own has counted (`counts`: the same
        images, outcomes, true sets and top-k as `add` counts), with each one's
        `(outcome, latency_ms, finished_at)`."""
        self.images += counts.images
        for name, count in counts.outcomes.items():
            if count:
                self.outcomes[name] = self.outcomes.get(name, 0) + count
        self.with_truth += counts.with_truth
        self.true_pairs += counts.true_pairs
        self.top1 += counts.top1
        self.top5 += counts.top5
        self._add_times(times)

    def _add_times(self, times: Iterable[Timed]) -> None:
        """The latencies of the `ok` answers and the first and last answer."""
        isfinite = math.isfinite
        buckets = self.latency_buckets
        count, total = self.latency_count, self.latency_sum
        high, low = self.latency_max, self.latency_min
        first, last = self.first_finished_at, self.last_finished_at
        for outcome, latency_ms, finished_at in times:
            if outcome == _OK and latency_ms is not None and isfinite(latency_ms):
                count += 1
                total += latency_ms
                # As max() and min(): an equal value keeps the one kept.
                if high is None or latency_ms > high:
                    high = latency_ms
                if low is None or latency_ms < low:
                    low = latency_ms
                bucket = bucket_of(latency_ms)
                buckets[bucket] = buckets.get(bucket, 0) + 1
            if finished_at is not None:
                if first is None or finished_at <= first:  # only then may it be the first
                    self._first(
                        finished_at, finished_at - timedelta(milliseconds=latency_ms or 0.0)
                    )
                    first = self.first_finished_at
                if last is None or finished_at > last:
                    last = finished_at
        self.latency_count, self.latency_sum = count, total
        self.latency_max, self.latency_min = high, low
        self.last_finished_at = last

    def remove(self, *, outcome: str, truth: Sequence[str]) -> None:
        """Take back one recorded result that was not `ok` (the organizer has it sent
        again, `gateway.runs.resend`): such a result added only its image, its outcome
        and its image's true tags, so removing it is exact. An `ok` answer also moved
        the latency extremes and the first and last answer, which cannot be taken back:
        ValueError."""
        if outcome == _OK:
            raise ValueError("an ok result cannot be taken back from live scores")
        if self.images < 1 or self.outcomes.get(outcome, 0) < 1:
            raise ValueError(f"no {outcome} result is counted here to take back")
        self.images -= 1
        self.outcomes[outcome] -= 1
        true = truth_set(truth)
        self.true_pairs -= len(true)
        if true:
            self.with_truth -= 1

    def merge(self, other: "LiveTally") -> None:
        """Add `other`'s counters to this tally."""
        self.images += other.images
        for name, count in other.outcomes.items():
            self.outcomes[name] = self.outcomes.get(name, 0) + count
        self.with_truth += other.with_truth
        self.true_pairs += other.true_pairs
        self.top1 += other.top1
        self.top5 += other.top5
        self.latency_count += other.latency_count
        self.latency_sum += other.latency_sum
        if other.latency_max is not None:
            mine = self.latency_max
            self.latency_max = other.latency_max if mine is None else max(mine, other.latency_max)
        if other.latency_min is not None:
            mine = self.latency_min
            self.latency_min = other.latency_min if mine is None else min(mine, other.latency_min)
        for bucket, count in other.latency_buckets.items():
            self.latency_buckets[bucket] = self.latency_buckets.get(bucket, 0) + count
        if other.first_finished_at is not None and other.first_sent_at is not None:
            self._first(other.first_finished_at, other.first_sent_at)
        if other.last_finished_at is not None and (
            self.last_finished_at is None or other.last_finished_at > self.last_finished_at
        ):
            self.last_finished_at = other.last_finished_at

    def _first(self, finished_at: datetime, sent_at: datetime) -> None:
        # The earliest answer, and on a tie the earlier send: `elapsed_s` takes the first
        # answer by finish time, whichever of equals the database returns.
        first = self.first_finished_at
        if (
            first is None
            or self.first_sent_at is None
            or finished_at < first
            or (finished_at == first and sent_at < self.first_sent_at)
        ):
            self.first_finished_at = finished_at
            self.first_sent_at = sent_at

    def elapsed_s(self) -> float | None:
        """Seconds from the first request sent to the latest answer; None before it is
        positive."""
        if self.first_sent_at is None or self.last_finished_at is None:
            return None
        seconds = (self.last_finished_at - self.first_sent_at).total_seconds()
        return seconds if seconds > 0 else None

    def latency_summary(self) -> dict[str, float | None]:
        """p50, p90, p99 (from the histogram, see the module doc), max and mean (exact)."""
        n = self.latency_count
        if n == 0 or self.latency_min is None or self.latency_max is None:
            return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
        low, high = self.latency_min, self.latency_max
        summary: dict[str, float | None] = {}
        # One sort and one running sum; each percentile's bucket is the first whose
        # running count reaches its nearest rank (a bisection, in C).
        buckets = sorted(self.latency_buckets)
        seen = list(itertools.accumulate(map(self.latency_buckets.__getitem__, buckets)))
        for name, percent in PERCENTILES:
            wanted = nearest_rank(n, percent)
            if wanted in (1, n):  # the smallest or the largest: known exactly
                summary[name] = low if wanted == 1 else high
                continue
            at = bisect.bisect_left(seen, wanted)
            value = bucket_middle(buckets[at]) if at < len(buckets) else high
            summary[name] = min(high, max(low, value))
        summary["max"] = high
        summary["mean"] = self.latency_sum / n
        return summary

    def result(self) -> dict[str, Any]:
        """The leaderboard fields of `ServiceScorer.result()` from the counters: coverage
        and µAP null (not kept while a service runs)."""
        n = self.with_truth
        elapsed = self.elapsed_s()
        return {
            "images": self.images,
            "top1": self.top1 / n if n else None,
            "top5": self.top5 / n if n else None,
            "coverage_at_95": None,
            "coverage_at_99": None,
            "micro_ap": None,
            "latency_ms": self.latency_summary(),
            "outcomes": {name: self.outcomes.get(name, 0) for name in OUTCOMES},
            "images_per_s": self.images / elapsed if elapsed else None,
        }

    def columns(self, *, buckets_text: str | None = None) -> dict[str, Any]:
        """The `live_scores` column values of this tally (JSON keys are text); with
        `buckets_text`, the histogram's is that text (its JSON, which the caller keeps)."""
        return {
            "images": self.images,
            "outcomes": dict(self.outcomes),
            "with_truth": self.with_truth,
            "true_pairs": self.true_pairs,
            "top1": self.top1,
            "top5": self.top5,
            "latency_count": self.latency_count,
            "latency_sum": self.latency_sum,
            "latency_max": self.latency_max,
            "latency_min": self.latency_min,
            "latency_buckets": (
                _bucket_columns(self.latency_buckets) if buckets_text is None else buckets_text
            ),
            "first_finished_at": self.first_finished_at,
            "first_sent_at": self.first_sent_at,
            "last_finished_at": self.last_finished_at,
        }

    @classmethod
    def of_columns(cls, row: Mapping[Any, Any]) -> "LiveTally":
        """The tally stored in a `live_scores` row (as `columns()` wrote it)."""
        return cls(
            images=int(row["images"]),
            outcomes={**dict.fromkeys(OUTCOMES, 0), **(row["outcomes"] or {})},
            with_truth=int(row["with_truth"]),
            true_pairs=int(row["true_pairs"]),
            top1=int(row["top1"]),
            top5=int(row["top5"]),
            latency_count=int(row["latency_count"]),
            latency_sum=float(row["latency_sum"]),
            latency_max=row["latency_max"],
            latency_min=row["latency_min"],
            latency_buckets=buckets_of_column(row["latency_buckets"] or {}),
            first_finished_at=row["first_finished_at"],
            first_sent_at=row["first_sent_at"],
            last_finished_at=row["last_finished_at"],
        )


# A histogram has up to `MAX_BUCKETS` entries and every progress or leaderboard request
# reads one per run service: converted with C loops (map, zip), not a comprehension.


def _bucket_columns(buckets: dict[int, int]) -> dict[str, int]:
    """The histogram as stored: text keys (JSON), in bucket order."""
    ordered = sorted(buckets)
    return dict(zip(map(str, ordered), map(buckets.__getitem__, ordered), strict=True))


def buckets_of_column(stored: Mapping[str, Any]) -> dict[int, int]:
    """The histogram `_bucket_columns` stored."""
    return dict(zip(map(int, stored), map(int, stored.values()), strict=True))


# The stored histogram's JSON text read as a flat JSON array of its numbers:
# `{"-5": 3, "7": 1}` -> `[-5, 3, 7, 1]`. Decoded so, a histogram of 350 buckets costs a
# third of json.loads and int() of each text key (60 against 155 µs measured), and a
# polled progress or leaderboard request of a running run reads one per service.
_AS_ARRAY = str.maketrans({"{": "[", "}": "]", ":": ",", '"': None})


def buckets_of_text(text: str) -> dict[int, int]:
    """The histogram whose column (`_bucket_columns`) is this JSON text."""
    numbers = iter(json.loads(text.translate(_AS_ARRAY)) or ())
    return dict(zip(numbers, numbers, strict=True))
