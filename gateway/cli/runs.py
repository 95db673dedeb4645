"""`recoghub run ...`: start, watch, cancel and resume runs; print or export leaderboards
and results. Every command talks to a running hub over its API (SPEC §3)."""

import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich import box
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
from gateway.cli.run_list import deadline_note, parse_moment, runs_table, wire
from gateway.cli.run_tables import (
    failures_text,
    leaderboard_table,
    ms_text,
    pct_text,
    progress_table,
    rate_text,
)
from gateway.cli.service_view import longest_word, team_service
from gateway.errors import OUTCOMES
from gateway.scoring.display import board_notes
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
            pct_text(row["top1_accuracy"]),
            pct_text(row["top5_accuracy"]),
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
                rate_text(b["images_per_s"]),
                f"{ms_text(b['latency_ms']['p50'])}/{ms_text(b['latency_ms']['p99'])}",
                failures_text(b["failures"]),
            )
    console.print(table)
