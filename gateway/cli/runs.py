"""`recoghub run ...`: start, watch, cancel and resume runs; print or export leaderboards
and results. Every command talks to a running hub over its API (SPEC §3)."""

import io
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gateway.cli.hub_away import AWAY_STATUSES, HubAway, back_line
from gateway.cli.hub_client import (
    HubOption,
    TokenOption,
    caller_note,
    checked,
    console,
    err_console,
    fail,
    hub_client,
    print_json,
)
from gateway.cli.run_list import deadline_note, parse_moment, runs_table, window_line, wire
from gateway.cli.service_view import longest_word, team_service
from gateway.errors import OUTCOMES
from gateway.scoring.display import board_notes, percent
from gateway.scoring.leaderboard import MetricName

app = typer.Typer(help="Start, watch, cancel and resume runs.", no_args_is_help=True)

RunId = Annotated[int, typer.Argument(help="Run id.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
Interval = Annotated[float, typer.Option("--interval", min=0.05, help="Watch refresh, s.")]
FINAL_STATES = {"completed", "cancelled", "failed"}
OUTCOME_NAMES = OUTCOMES


class PhaseChoice(StrEnum):
    dryrun = "dryrun"
    evaluation = "evaluation"


class ResultFormatChoice(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return percent(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _failures(outcomes: dict[str, int]) -> str:
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
            _rate(s.get("images_per_s")),
            f"{_ms(latency.get('p50'))}/{_ms(latency.get('p99'))}",
            _eta(s.get("eta_s")),
        )
        if s.get("reason"):
            notes.append(Text(f"{name}: {s['reason']}", style="red"))
        elif _failures(s["outcomes"]) != "-":
            notes.append(Text(f"{name}: {_failures(s['outcomes'])}", style="yellow"))
    return Group(header, table, *notes)


def _status_width(rows: list[dict[str, Any]]) -> int:
    return max((len(str(r["status"])) for r in rows), default=6)


def watch_run(client: httpx.Client, run_id: int, interval: float, as_json: bool) -> None:
    """Refresh the view until the run ends (with --json, only the final state is printed);
    exit 0 only when it completed."""

    away = HubAway()
    hub = str(client.base_url).rstrip("/")

    def poll() -> dict[str, Any]:
        # The hub may restart under a long run: wait for it (gateway.cli.hub_away).
        while True:
            try:
                response = client.get(f"/api/v1/runs/{run_id}")
                reason = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                response, reason = None, type(exc).__name__
            if response is not None and response.status_code not in AWAY_STATUSES:
                seconds = away.back()
                if seconds is not None:
                    err_console.print(back_line(seconds), highlight=False)
                run: dict[str, Any] = checked(response)
                return run
            first = not away.away
            pause = away.missed()
            if pause is None:
                fail(
                    f"{away.gone_line(hub)} run {run_id} (the run goes on at the hub)",
                    f"`recoghub run watch {run_id}` once the hub is back",
                )
            if first:
                err_console.print(away.away_line(hub, reason), highlight=False)
            time.sleep(pause)

    run = poll()
    try:
        if as_json:
            while run["state"] not in FINAL_STATES:
                time.sleep(interval)
                run = poll()
        else:
            with Live(progress_table(run), console=console, refresh_per_second=4) as live:
                while run["state"] not in FINAL_STATES:
                    time.sleep(interval)
                    run = poll()
                    live.update(progress_table(run))
    except KeyboardInterrupt:
        fail(f"stopped watching run {run_id}; the run goes on", f"`recoghub run watch {run_id}`")
    if as_json:
        print_json(run)
    if run["state"] != "completed":
        detail = f": {run['error']}" if run.get("error") else ""
        fail(
            f"run {run_id} ended {run['state']}{detail}",
            f"`recoghub run resume {run_id}` continues it",
        )


@app.command()
def start(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset id or name.")],
    phase: Annotated[PhaseChoice, typer.Option("--phase", help="dryrun or evaluation.")],
    services: Annotated[
        list[str] | None,
        typer.Option("--service", help="Service GUID (repeat); all enabled services if none."),
    ] = None,
    metric: Annotated[MetricName | None, typer.Option("--metric", help="Primary metric.")] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, help="In flight per service.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.001, help="Request timeout, s.")
    ] = None,
    max_attempts: Annotated[int | None, typer.Option("--max-attempts", min=1, max=10)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the shuffled order.")] = None,
    start_at: Annotated[
        str | None,
        typer.Option(
            "--start-at",
            help="Queued until then: ISO 8601 (no offset: UTC) or from now, e.g. +30m.",
        ),
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            "--deadline",
            help="Images not answered by then are missed and the run completes: ISO 8601 "
            "or from now, e.g. +2h.",
        ),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Watch the run until it ends.")] = False,
    interval: Interval = 1.0,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Start a run of DATASET against the services."""
    body: dict[str, Any] = {
        "dataset": int(dataset) if dataset.isdigit() else dataset,
        "phase": phase.value,
    }
    now = datetime.now(UTC)  # `+1h` and `+3h` count from the same moment
    optional = {
        "services": services or None,
        "metric": metric.value if metric else None,
        "concurrency": concurrency,
        "timeout_s": timeout,
        "max_attempts": max_attempts,
        "seed": seed,
        "start_at": _moment("--start-at", start_at, now),
        "deadline": _moment("--deadline", deadline, now),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    with hub_client(hub, token) as client:
        run = checked(client.post("/api/v1/runs", json=body))
        if not watch:
            if as_json:
                print_json(run)
            else:
                console.print(
                    f"started run {run['id']} ({run['phase']} of {run['dataset']}, "
                    f"{len(run['services'])} services); watch it with "
                    f"`recoghub run watch {run['id']}`"
                )
            return
        watch_run(client, run["id"], interval, as_json)


def _moment(option: str, value: str | None, now: datetime) -> str | None:
    if value is None:
        return None
    try:
        return wire(parse_moment(value, now=now))
    except ValueError as exc:
        fail(f"{option}: {exc}")


@app.command("list")
def list_runs(
    hub: str = HubOption, token: str | None = TokenOption, as_json: AsJson = False
) -> None:
    """List the runs, newest first, with their evaluation window (times in UTC)."""
    with hub_client(hub, token) as client:
        note = caller_note(client)
        runs = checked(client.get("/api/v1/runs"))
    if note:
        err_console.print(f"note: {note}", style="yellow", markup=False, highlight=False)
    if as_json:
        print_json(runs)
        return
    console.print(runs_table(runs, width=console.width))


@app.command("show", help="Print a run's state, window and per-service progress once.")
@app.command()
def status(
    run_id: RunId,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Print a run's state, window and per-service progress once."""
    with hub_client(hub, token) as client:
        run = checked(client.get(f"/api/v1/runs/{run_id}"))
    if as_json:
        print_json(run)
    else:
        console.print(progress_table(run))


@app.command()
def watch(
    run_id: RunId,
    interval: Interval = 1.0,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Watch a run live until it ends; exit 0 only if it completed."""
    with hub_client(hub, token) as client:
        watch_run(client, run_id, interval, as_json)


def _run_action(path: str, hub: str, token: str | None, as_json: bool, **body: Any) -> None:
    with hub_client(hub, token) as client:
        run = checked(client.post(path, json=body or None))
    if as_json:
        print_json(run)
    else:
        published = "published" if run["published"] else "not published"
        console.print(f"run {run['id']}: {run['state']}, leaderboard {published}")


@app.command()
def cancel(
    run_id: RunId,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Stop sending new requests; what is recorded stays."""
    _run_action(f"/api/v1/runs/{run_id}/cancel", hub, token, as_json)


@app.command()
def resume(
    run_id: RunId,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Continue a cancelled or failed run where it stopped."""
    _run_action(f"/api/v1/runs/{run_id}/resume", hub, token, as_json)


@app.command()
def publish(
    run_id: RunId,
    unpublish: Annotated[bool, typer.Option("--unpublish", help="Hide it again.")] = False,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Show the run's leaderboard to the providers (or hide it with --unpublish)."""
    path = f"/api/v1/runs/{run_id}/publish"
    _run_action(path, hub, token, as_json, published=not unpublish)


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
        "top1": _pct(row.get("top1")),
        "top5": _pct(row.get("top5")),
        "cov@95": _pct(row.get("coverage_at_95")),
        "cov@99": _pct(row.get("coverage_at_99")),
        "µAP": _pct(row.get("micro_ap")),
        "p50/p99 ms": f"{_ms(latency.get('p50'))}/{_ms(latency.get('p99'))}",
        "ok": str(row["outcomes"].get("ok", 0)),
        "failed": _failures(row["outcomes"]),
        "img/s": _rate(row.get("images_per_s")),
    }


class ViewFormatChoice(StrEnum):
    """How a leaderboard or timeline is printed: a table, the hub's CSV, or JSON."""

    table = "table"
    csv = "csv"
    json = "json"


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


@app.command()
def leaderboard(
    run_id: RunId,
    fmt: Annotated[
        ViewFormatChoice, typer.Option("--format", help="table, csv (the hub's) or json.")
    ] = ViewFormatChoice.table,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also export to FILE.")] = None,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Print a run's leaderboard, best first."""
    path = f"/api/v1/runs/{run_id}/leaderboard"
    with hub_client(hub, token) as client:
        if csv_file is not None or fmt == ViewFormatChoice.csv:
            response = client.get(path, params={"format": "csv"})
            if not response.is_success:
                checked(response)
            text = response.text
            if csv_file is not None:
                _write_text(csv_file, text)
                rows_n = max(0, len(text.splitlines()) - 1)
                err_console.print(f"wrote the leaderboard ({rows_n} rows) to {csv_file}")
            if fmt == ViewFormatChoice.csv:
                sys.stdout.write(text)
                sys.stdout.flush()
                return
        rows: list[dict[str, Any]] = checked(client.get(path))
        table = not (as_json or fmt == ViewFormatChoice.json)
        run = checked(client.get(f"/api/v1/runs/{run_id}")) if table else {}
    if not table:
        print_json(rows)
    else:
        console.print(leaderboard_table(rows, title=f"leaderboard of run {run_id}"))
        if rows:
            console.print(board_notes(rows[0]), highlight=False)

        note = deadline_note(run)
        if note:
            console.print(note, style="magenta", highlight=False)


@app.command()
def results(
    run_id: RunId,
    service: Annotated[
        str | None,
        typer.Option("--service", help="Service GUID; every service when omitted (organizer)."),
    ] = None,
    fmt: Annotated[ResultFormatChoice, typer.Option("--format")] = ResultFormatChoice.jsonl,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default stdout.")] = None,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Download a run's results, one row per image, streamed: one service's, or (without
    --service) every service's with the truth, error detail, request id and time."""
    params = {"format": fmt.value}
    if service is not None:
        params["service"] = service
    with (
        hub_client(hub, token, timeout=300.0) as client,
        client.stream("GET", f"/api/v1/runs/{run_id}/results", params=params) as response,
    ):
        if not response.is_success:
            response.read()
            checked(response)
        if output is None:
            for chunk in response.iter_text():
                sys.stdout.write(chunk)
            sys.stdout.flush()
            return
        try:
            with output.open("wb") as out:
                for data in response.iter_bytes():
                    out.write(data)
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
    what = f"service {service}" if service else "every service"
    err_console.print(f"wrote the results of {what} in run {run_id} to {output}")


def _when(value: str | None) -> str:
    """`2026-11-29T22:03:04.123Z` as `22:03:04` (the date is the run's)."""
    return "-" if not value else value[11:19]


@app.command()
def failures(
    run_id: RunId,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Print a run's failures grouped by service, outcome and error text (numbers and ids
    as <n> and <id>), most frequent first."""
    with hub_client(hub, token) as client:
        groups: list[dict[str, Any]] = checked(client.get(f"/api/v1/runs/{run_id}/failures"))
    if as_json:
        print_json(groups)
        return
    if not groups:
        console.print(f"run {run_id}: no failures")
        return
    # One block per kind, not a table: details and request ids are long, and a table
    # at 80 columns would cut them mid-word.
    service = None
    for g in groups:
        name = f"{g['provider_name']}/{g['service_name']}"
        if name != service:
            service = name
            console.print(Text(name, style="bold"))
        status = f" {g['http_status']}" if g.get("http_status") else ""
        seen = f"{_when(g.get('first_seen'))} to {_when(g.get('last_seen'))}"
        console.print(
            Text.assemble(f"  {g['count']} x ", (f"{g['outcome']}{status}", "red"), f"  ({seen})")
        )
        console.print(Text(f"    {g['detail'] or '-'}"), overflow="fold")
        console.print(Text(f"    requests: {' '.join(g['request_ids']) or '-'}"))


@app.command()
def classes(
    run_id: RunId,
    service: Annotated[str, typer.Option("--service", help="Service GUID.")],
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Print per true label: images, top-1, top-5 and the most frequent wrong first tags
    of a service in a run, worst top-1 first."""
    with hub_client(hub, token) as client:
        rows: list[dict[str, Any]] = checked(
            client.get(f"/api/v1/runs/{run_id}/services/{service}/classes")
        )
    if as_json:
        print_json(rows)
        return
    table = Table(
        title=f"classes of {service} in run {run_id}", box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column("label", overflow="fold", max_width=20)
    for column in ("images", "top1", "top5", "failed"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("answered instead (count)", overflow="fold", ratio=1)
    for row in sorted(rows, key=lambda r: (r["top1_accuracy"], r["label"])):
        table.add_row(
            row["label"],
            str(row["images"]),
            _pct(row["top1_accuracy"]),
            _pct(row["top5_accuracy"]),
            str(row["failed"]),
            ", ".join(f"{w['tag']} ({w['count']})" for w in row["wrong_top1"]) or "-",
        )
    console.print(table)


@app.command()
def timeline(
    run_id: RunId,
    bucket: Annotated[float, typer.Option("--bucket", min=0.001, help="Bucket width, s.")] = 10.0,
    fmt: Annotated[
        ViewFormatChoice, typer.Option("--format", help="table, csv or json.")
    ] = ViewFormatChoice.table,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Print a run over time: per service and bucket, answers, ok, failures, images/s and
    latency p50/p99."""
    path = f"/api/v1/runs/{run_id}/timeline"
    params: dict[str, Any] = {"bucket_s": bucket}
    with hub_client(hub, token) as client:
        if fmt == ViewFormatChoice.csv:
            response = client.get(path, params={**params, "format": "csv"})
            if not response.is_success:
                checked(response)
            sys.stdout.write(response.text)
            sys.stdout.flush()
            return
        data: dict[str, Any] = checked(client.get(path, params=params))
    if fmt == ViewFormatChoice.json:
        print_json(data)
        return
    table = Table(title=f"run {run_id} every {bucket:g} s", box=box.SIMPLE_HEAD, pad_edge=False)
    names = [team_service(s["provider_name"], s["service_name"]) for s in data["services"]]
    table.add_column("team / service", min_width=longest_word(names))
    for column in ("t s", "done", "ok", "img/s", "p50/p99 ms"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("failed", overflow="fold", ratio=1)
    for s, name in zip(data["services"], names, strict=True):
        for b in s["buckets"]:
            table.add_row(
                name,
                f"{b['t_s']:g}",
                str(b["done"]),
                str(b["ok"]),
                _rate(b["images_per_s"]),
                f"{_ms(b['latency_ms']['p50'])}/{_ms(b['latency_ms']['p99'])}",
                _failures(b["failures"]),
            )
    console.print(table)
