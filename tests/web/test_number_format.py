"""The CLI's percent format (gateway/scoring/display.py) prints every fraction as the
dashboard's own `pct` (static/dom.js) does in a real chromium, ties included."""

from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING

from gateway.scoring.display import percent
from tests.servers import LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Page


def fractions() -> Iterator[float]:
    """Tie cases (k/16, k/80: x.x5 percents) and ordinary scores a leaderboard shows."""
    seen: set[float] = set()
    for den in (8, 16, 40, 80, 400, 800, 1000, 3, 7, 9999):
        for k in range(den + 1):
            value = float(Fraction(k, den))
            if value not in seen:
                seen.add(value)
                yield value


def test_the_cli_format_equals_the_dashboards(page: "Page", sqlite_hub: LiveServer) -> None:
    values = list(fractions())
    page.goto(sqlite_hub.url + "/")
    shown = page.evaluate(
        "async (values) => { const { pct } = await import('/static/dom.js');"
        " return values.map((v) => pct(v)); }",
        values,
    )
    mismatches = [
        (v, percent(v), js) for v, js in zip(values, shown, strict=True) if percent(v) != js
    ]
    assert not mismatches, mismatches[:10]
    assert shown[values.index(0.9625)] == "96.3%"
    assert len(values) > 10_000
