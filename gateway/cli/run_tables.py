"""How `recoghub run ...` and the demo draw a run: the live progress table and the
leaderboard table, fitted to the terminal (names wrap between words, statuses and numbers
are never cut; columns are left out, least important first, and a caption says which)."""

import io
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from gateway.cli.hub_client import console
from gateway.cli.run_list import window_line
from gateway.cli.service_view import longest_word, team_service
from gateway.scoring.display import percent


def ms_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def pct_text(value: float | None) -> str:
    return percent(value)


def rate_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def failures_text(outcomes: dict[str, int]) -> str:
    """The non-ok outcome counts, e.g. `timeout 2, http_error 1`, or `-`."""
    bad = [f"{name} {n}" for name, n in outcomes.items() if name != "ok" and n]
    return ", ".join(bad) or "-"


STATUS_STYLE = {
    "passed": "green",
    "failed": "red",
    "ongoing": "yellow",
    "down": "magenta",
    "cancelled": "bright_black",
}


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def _bar(done: int, total: int, width: int = 10) -> Text:
    """A progress bar with its count, e.g. `━━━━━━──── 6/10`."""
    if width == 0:  # a narrow terminal: the count alone
        return Text(f"{done}/{total}")
    filled = width * done // total if total else width
    return Text.assemble(
        ("━" * filled, "green"), ("─" * (width - filled), "bright_black"), f" {done}/{total}"
    )


# Below this many columns the progress bar gives way to the bare count, so that no status
# or figure is cut.
WIDE_TERMINAL = 110


def progress_table(run: dict[str, Any], *, width: int | None = None) -> RenderableType:
    """The live view of a run: a header line and one row per service with its bar; names
    wrap between words and statuses stay whole at `width` (the terminal's by default)."""
    header = Text.assemble(
        (f"run {run['id']}", "bold"),
        f"  {run['phase']} of {run['dataset']}  metric {run['metric']}  state ",
        (run["state"], "green" if run["state"] == "completed" else "yellow"),
    )
    names = [team_service(s["provider_name"], s["service_name"]) for s in run["services"]]
    bar = 10 if (width or console.width) >= WIDE_TERMINAL else 0
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("team / service", min_width=longest_word(names))
    table.add_column("status", no_wrap=True, min_width=_status_width(run["services"]))
    table.add_column("progress", no_wrap=True)
    for column in ("ok", "err", "img/s", "p50/p99 ms", "ETA"):
        table.add_column(column, justify="right", no_wrap=True)
    notes: list[Text] = []
    window = window_line(run)
    if window:
        notes.append(Text(window, style="magenta" if run.get("stopped_at_deadline") else ""))
    for s, name in zip(run["services"], names, strict=True):
        latency = s.get("latency_ms") or {}
        table.add_row(
            name,
            _status(s["status"]),
            _bar(s["done"], s["total"], bar),
            str(s["outcomes"].get("ok", 0)),
            str(s["done"] - s["outcomes"].get("ok", 0)),
            rate_text(s.get("images_per_s")),
            f"{ms_text(latency.get('p50'))}/{ms_text(latency.get('p99'))}",
            eta_text(s.get("eta_s")),
        )
        if s.get("reason"):
            notes.append(Text(f"{name}: {s['reason']}", style="red"))
        elif failures_text(s["outcomes"]) != "-":
            notes.append(Text(f"{name}: {failures_text(s['outcomes'])}", style="yellow"))
    return Group(header, table, *notes)


def _status_width(rows: list[dict[str, Any]]) -> int:
    return max((len(str(r["status"])) for r in rows), default=6)


# Dropped in this order, least important first, when the terminal is too narrow: a
# number is never cut, and a caption says what was left out.
LEADERBOARD_OPTIONAL = ("img/s", "cov@99", "failed", "cov@95", "µAP")


def leaderboard_table(
    rows: list[dict[str, Any]], *, title: str = "leaderboard", width: int | None = None
) -> Table:
    """The leaderboard rows (SPEC §3 shape) as a table, in the order given, fitted to
    `width` (the terminal's by default) by leaving out the least important columns."""
    cells = [_leaderboard_cells(row) for row in rows]
    width = width or console.width
    left_out: list[str] = []
    while True:
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        names = [name for name in cells[0] if name not in left_out] if cells else []
        for name in names:
            if name == "team / service":
                table.add_column(name, min_width=longest_word(str(c[name]) for c in cells))
            elif name == "status":
                table.add_column(name, no_wrap=True, min_width=_status_width(rows))
            elif name == "failed":
                table.add_column(name, overflow="fold")
            else:
                table.add_column(name, justify="right", no_wrap=True)
        for row in cells:
            table.add_row(*(row[name] for name in names))
        if left_out:
            table.caption = (
                f"left out to fit {width} columns: {', '.join(left_out)} (--json has all)"
            )
        optional = [name for name in LEADERBOARD_OPTIONAL if name not in left_out]
        if not optional or _shows_whole(table, width, [names, *cells]):
            return table
        left_out.append(optional[0])


def _shows_whole(table: Table, width: int, lines: list[Any]) -> bool:
    """Whether `table`, printed `width` columns wide, shows every header and every cell
    of its unwrapped columns whole (Rich crops them silently when space runs out)."""
    probe = Console(width=width, record=True, color_system=None, file=io.StringIO())
    probe.print(table)
    text = probe.export_text()
    head = text.split("─", 1)[0]  # the headers, above the rule (a cell may say "failed")
    names = lines[0]
    wrapped = ("team / service", "failed")
    return all(name in head for name in names) and all(
        str(row[name]) in text for row in lines[1:] for name in names if name not in wrapped
    )


def _leaderboard_cells(row: dict[str, Any]) -> dict[str, str | Text]:
    latency = row.get("latency_ms") or {}
    return {
        "#": str(row["rank"]),
        "team / service": team_service(row["provider_name"], row["service_name"])
        + (f" (re-sent {row['resent']})" if row.get("resent") else ""),
        "status": _status(row["status"]),
        "top1": pct_text(row.get("top1")),
        "top5": pct_text(row.get("top5")),
        "cov@95": pct_text(row.get("coverage_at_95")),
        "cov@99": pct_text(row.get("coverage_at_99")),
        "µAP": pct_text(row.get("micro_ap")),
        "p50/p99 ms": f"{ms_text(latency.get('p50'))}/{ms_text(latency.get('p99'))}",
        "ok": str(row["outcomes"].get("ok", 0)),
        "failed": failures_text(row["outcomes"]),
        "img/s": rate_text(row.get("images_per_s")),
    }
