"""The leaderboard table at a terminal's width: columns are left out, numbers never cut."""

from typing import Any

from rich.console import Console

from gateway.cli.run_tables import leaderboard_table


def row(rank: int, team: str, ok: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "provider_name": team,
        "service_name": f"{team.split()[0].lower()}-colours",
        "status": "passed",
        "top1": 0.990,
        "top5": 1.0,
        "coverage_at_95": 1.0,
        "coverage_at_99": 0.964,
        "micro_ap": 0.998,
        "latency_ms": {"p50": 29.7, "p99": 112.9},
        "outcomes": {"ok": ok, "timeout": 0, "bad_format": 400 - ok},
        "images_per_s": 1234.5,
    }


def render(width: int) -> str:
    rows = [row(1, "Accurate Team", 400), row(2, "Flaky Team", 376)]
    console = Console(width=width, record=True, color_system=None)
    console.print(leaderboard_table(rows, width=width))
    return console.export_text()


def test_at_80_columns_the_least_important_columns_go_and_numbers_stay_whole() -> None:
    text = render(80)
    assert all(len(line) <= 80 for line in text.splitlines())
    for number in ("400", "376", "99.0%", "100.0%", "29.7/112.9"):
        assert number in text, text
    assert "left out to fit 80 columns: img/s" in text


def test_a_wide_terminal_shows_every_column() -> None:
    text = render(200)
    assert "left out" not in text
    for column in ("img/s", "cov@99", "failed", "cov@95", "µAP", "1234.5"):
        assert column in text.replace("1,234.5", "1234.5"), text


def test_fractions_print_as_the_dashboard_prints_them_ties_half_up() -> None:
    tie = {**row(1, "Tie Team", 400), "top1": 0.9625, "micro_ap": 0.8125, "status": "cancelled"}
    console = Console(width=200, record=True, color_system=None)
    console.print(leaderboard_table([tie], width=200))
    text = console.export_text()
    # Half up, as `(x * 100).toFixed(1)`: Python's own "{:.1f}" would say 96.2% and 81.2%.
    assert "96.3%" in text and "81.3%" in text and "cancelled" in text, text


def test_a_failed_status_does_not_pass_for_the_failed_column_s_header() -> None:
    """A team's status `failed` once hid that the `failed` column's header was cut to "f"
    at 80 columns (the demo's board): the header is whole or the column is left out."""
    flaky = {
        **row(4, "Flaky Team", 176),
        "status": "failed",
        "latency_ms": {"p50": 15.7, "p99": 51.3},
    }
    rows = [row(1, "Firewalled Team", 192), flaky]
    console = Console(width=80, record=True, color_system=None)
    console.print(leaderboard_table(rows, width=80))
    text = console.export_text()
    head = text.split("─", 1)[0]
    assert " failed" in head or "failed (--json has all)" in text, text
