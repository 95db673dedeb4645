"""Watching a run through a hub restart: both CLIs' `--watch` (`recoghub run start/watch`,
`recoghub-cli dryrun --watch`) keep watching while the hub is away.

A run outlives its hub process (a restarted hub goes on with it), so a watcher that
loses the hub says so once, asks again after a growing pause (0.5 s doubling to 10 s)
and carries on when the hub answers. It gives up after `WAIT_FOR_HUB_S` (5 minutes) of
silence: the run still goes on, and the line says how to watch it again.

What counts as away: no connection, a connection that broke or timed out, or a 502, 503
or 504 (a proxy in front of a hub that is starting).
"""

import time
from collections.abc import Callable

WAIT_FOR_HUB_S = 300.0
FIRST_PAUSE_S = 0.5
LONGEST_PAUSE_S = 10.0
AWAY_STATUSES = frozenset({502, 503, 504})


class HubAway:
    """How long a watcher has missed the hub, and how long to pause before asking again."""

    def __init__(
        self,
        *,
        give_up_s: float = WAIT_FOR_HUB_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.give_up_s = give_up_s
        self._clock = clock
        self._since: float | None = None
        self._pause = FIRST_PAUSE_S

    @property
    def away(self) -> bool:
        return self._since is not None

    def missed(self) -> float | None:
        """Note one failed request: the pause before the next, or None once the hub has
        been away for `give_up_s` (then stop watching)."""
        now = self._clock()
        if self._since is None:
            self._since = now
            self._pause = FIRST_PAUSE_S
        elif now - self._since >= self.give_up_s:
            return None
        else:
            self._pause = min(self._pause * 2, LONGEST_PAUSE_S)
        return min(self._pause, max(0.0, self._since + self.give_up_s - now))

    def back(self) -> float | None:
        """Note an answer: the seconds the hub was away, or None if it was not."""
        if self._since is None:
            return None
        seconds = self._clock() - self._since
        self._since = None
        return seconds

    def away_line(self, hub: str, reason: str) -> str:
        minutes = self.give_up_s / 60
        return (
            f"the hub at {hub} is away ({reason}); the run goes on there: waiting for the hub "
            f"to come back (asking again with back-off, for up to {minutes:g} min)"
        )

    def gone_line(self, hub: str) -> str:
        return f"the hub at {hub} has been away for {self.give_up_s / 60:g} min; stopped watching"


def back_line(seconds: float) -> str:
    return f"the hub is back after {seconds:.0f} s; watching again"
