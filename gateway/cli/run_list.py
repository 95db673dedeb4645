"""The runs table of `recoghub run list`, and the evaluation window as the organizer
writes it (`--start-at`, `--deadline`) and reads it back. The team tool (`recoghub-cli
runs|status|leaderboard`) says the window in the same words: it imports them from here.

The table fits the terminal like the leaderboard's: the least important columns are left
out, with a caption saying which, so that no state or count is ever cut (`compl…`).
"""

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

LIST_COLUMNS = (
    "id",
    "dataset",
    "phase",
    "metric",
    "state",
    "services",
    "done",
    "created",
    "starts",
    "deadline",
    "published",
)
# Dropped in this order, least important first, when the terminal is too narrow.
LIST_OPTIONAL = ("services", "created", "metric", "starts", "published", "deadline")
# Columns that may wrap (free text); every other cell must show whole.
LIST_WRAPPED = ("dataset",)
DEADLINE_MARK = "*"
STOPPED_AT_DEADLINE = "stopped at its deadline: images not answered by then are missed"
DEADLINE_NOTE = f"{DEADLINE_MARK} {STOPPED_AT_DEADLINE}"

_RELATIVE = re.compile(r"\+(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """`--start-at`/`--deadline`: ISO 8601 (`2026-12-01T18:00:00Z`; no offset: UTC) or a
    time from now (`+90s`, `+30m`, `+2h`, `+1d`). Raises ValueError saying what it wants."""
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount, unit = float(relative[1]), _UNITS[relative[2]]
        return (now or datetime.now(UTC)) + timedelta(**{unit: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give ISO 8601 (2026-12-01T18:00:00Z) or a time from "
            "now (+30m, +2h, +1d)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def wire(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def short_time(value: str | None) -> str:
    """`2026-11-30T18:00:00Z` as `11-30 18:00` (UTC), or `-`."""
    return "-" if not value else f"{value[5:10]} {value[11:16]}"


def window_line(run: dict[str, Any]) -> str | None:
    """What `run status` says of a run's window, or None for a run without one."""
    parts = []
    if run.get("start_at"):
        parts.append(f"starts {run['start_at']}")
    if run.get("deadline"):
        parts.append(f"deadline {run['deadline']}")
    if run.get("stopped_at_deadline"):
        parts.append(STOPPED_AT_DEADLINE)
    return "; ".join(parts) or None


def deadline_note(run: dict[str, Any]) -> str | None:
    """The line under a leaderboard whose run the deadline ended, else None."""
    if not run.get("stopped_at_deadline"):
        return None
    return (
        f"run {run['id']} stopped at its deadline {run['deadline']}: images not answered "
        "by then are missed and count as wrong"
    )


def _cells(run: dict[str, Any]) -> dict[str, str]:
    done = sum(s["done"] for s in run["services"])
    total = sum(s["total"] for s in run["services"])
    state = run["state"] + (DEADLINE_MARK if run.get("stopped_at_deadline") else "")
    return {
        "id": str(run["id"]),
        "dataset": str(run["dataset"]),
        "phase": run["phase"],
        "metric": run["metric"],
        "state": state,
        "services": str(len(run["services"])),
        "done": f"{done}/{total}",
        "created": short_time(run.get("created_at")),
        "starts": short_time(run.get("start_at")),
        "deadline": short_time(run.get("deadline")),
        "published": "yes" if run["published"] else "no",
    }


def runs_table(runs: list[dict[str, Any]], *, width: int) -> Table:
    """The runs, newest first, fitted to `width` columns (times in UTC)."""
    cells = [_cells(run) for run in sorted(runs, key=lambda r: r["id"], reverse=True)]
    notes = [DEADLINE_NOTE] if any(r.get("stopped_at_deadline") for r in runs) else []
    left_out: list[str] = []
    while True:
        names = [name for name in LIST_COLUMNS if name not in left_out]
        table = Table(title="runs (times UTC)", box=box.SIMPLE_HEAD, pad_edge=False)
        for name in names:
            if name in LIST_WRAPPED:
                table.add_column(name, overflow="fold", min_width=8)
            else:
                table.add_column(name, no_wrap=True, justify="right" if name == "id" else "left")
        for row in cells:
            table.add_row(*(row[name] for name in names))
        caption = list(notes)
        if left_out:
            caption.append(
                f"left out to fit {width} columns: {', '.join(left_out)} (--json has all)"
            )
        table.caption = "\n".join(caption) or None
        optional = [name for name in LIST_OPTIONAL if name not in left_out]
        if not optional or shows_whole(table, width, names, cells):
            return table
        left_out.append(optional[0])


def shows_whole(table: Table, width: int, names: list[str], cells: list[dict[str, str]]) -> bool:
    """Whether `table`, printed `width` columns wide, shows every header and every cell of
    its unwrapped columns whole (Rich crops them silently when space runs out)."""
    probe = Console(width=width, record=True, color_system=None, file=io.StringIO())
    probe.print(table)
    text = probe.export_text()
    return all(name in text for name in names) and all(
        row[name] in text for row in cells for name in names if name not in LIST_WRAPPED
    )
