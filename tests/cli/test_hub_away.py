"""The back-off of a watcher whose hub is away: growing pauses, bounded, reset on return."""

from gateway.cli.hub_away import HubAway


def test_pauses_grow_to_a_cap_and_the_watcher_gives_up_after_the_bound() -> None:
    now = [0.0]
    away = HubAway(give_up_s=30.0, clock=lambda: now[0])
    pauses = []
    while (pause := away.missed()) is not None and len(pauses) < 100:
        pauses.append(pause)
        now[0] += pause
    assert pauses[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert max(pauses) == 10.0 and sum(pauses) == 30.0  # the last pause ends at the bound
    assert "for up to 0.5 min" in away.away_line("http://h", "ConnectError")


def test_an_answer_resets_the_wait() -> None:
    now = [0.0]
    away = HubAway(give_up_s=30.0, clock=lambda: now[0])
    assert away.back() is None
    away.missed()
    now[0] += 25.0
    assert away.back() == 25.0 and not away.away
    now[0] += 100.0
    assert away.missed() == 0.5  # a new absence starts its own bound
