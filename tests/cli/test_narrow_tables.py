"""At 80 columns (issue 20) names wrap between words, never inside one, and statuses are
never cut (`pass…`): the organizer's progress and leaderboard, the team's status and
leaderboard tables."""

import re
from typing import Any

from rich.console import Console, RenderableType

from cmdline_tool.team import _status_table, board_table
from gateway.cli.run_tables import leaderboard_table, progress_table

NAMES = [("Team A", "digits-logreg", "passed"), ("Team B", "digits-svc-dialout", "ongoing")]
NAMES.append(("Team C", "digits-knn-mlserver", "cancelled"))


def service(provider: str, name: str, status: str) -> dict[str, Any]:
    return {
        "provider_name": provider,
        "service_name": name,
        "provider_guid": "p",
        "service_guid": "s",
        "status": status,
        "done": 1257,
        "total": 1257,
        "outcomes": {"ok": 1250, "timeout": 7},
        "images_per_s": 120.3,
        "latency_ms": {"p50": 7.53, "p99": 30.1},
        "eta_s": None,
        "reason": None,
    }


RUN = {
    "id": 12,
    "phase": "evaluation",
    "dataset": "digits-test",
    "metric": "top1",
    "state": "running",
    "started_by": None,
    "services": [service(*n) for n in NAMES],
}
ROWS = [
    {**s, "rank": 1, "top1": 0.987, "top5": 0.991, "coverage_at_95": 0.5,
     "coverage_at_99": 0.2, "micro_ap": 0.9, "images": 1257, "images_total": 1257}
    for s in RUN["services"]
]  # fmt: skip


def at_80(renderable: RenderableType) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def words_whole(text: str, *, teams: bool = True, headers: tuple[str, ...] = ()) -> None:
    assert all(len(line) <= 80 for line in text.splitlines()), text
    tokens = set(re.findall(r"[\w.-]+", text))
    for provider, name, status in NAMES:
        assert name in tokens and status in tokens, text
        assert not teams or provider.split()[1] in tokens, text
    assert "…" not in text, text
    assert set(headers) <= tokens, text


def test_the_organizers_tables_keep_words_and_statuses_whole() -> None:
    headers = ("status", "progress", "ok", "err", "img", "p50", "p99", "ms", "ETA")
    words_whole(at_80(progress_table(RUN, width=80)), headers=headers)
    words_whole(at_80(leaderboard_table(ROWS, width=80)))


def test_the_teams_status_table_keeps_words_and_statuses_whole() -> None:
    headers = ("service", "status", "done", "failed", "p50", "p99", "img", "s", "eta")
    words_whole(at_80(_status_table(RUN)), teams=False, headers=headers)


def test_the_teams_leaderboard_keeps_words_and_statuses_whole() -> None:
    headers = ("status", "images", "top-1", "top-5", "p50", "p99")
    words_whole(at_80(board_table(12, ROWS)), headers=headers)
