"""`recoghub run ...`: start, watch, cancel and resume runs; print or export leaderboards
and results. Every command talks to a running hub over its API (SPEC §3)."""

import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import httpx
import typer
from rich.live import Live

from gateway.cli.hub_away import AWAY_STATUSES, HubAway, back_line
from gateway.cli.hub_client import (
    HubOption,
    TokenOption,
    caller_note,
    checked,
    console,
    err_console,
    fail,
    hub_answer,
    hub_client,
    print_json,
)
from gateway.cli.run_list import parse_moment, runs_table, wire
from gateway.cli.run_tables import (
    progress_table,
)
from gateway.scoring.leaderboard import MetricName

app = typer.Typer(help="Start, watch, cancel and resume runs.", no_args_is_help=True)

RunId = Annotated[int, typer.Argument(help="Run id.", show_default=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
Interval = Annotated[float, typer.Option("--interval", min=0.05, help="Watch refresh, s.")]
FINAL_STATES = {"completed", "cancelled", "failed"}


class PhaseChoice(StrEnum):
    dryrun = "dryrun"
    evaluation = "evaluation"


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
    run = hub_answer(hub, token, "GET", f"/api/v1/runs/{run_id}", as_json=as_json)
    if run is not None:
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
    run = hub_answer(hub, token, "POST", path, json=body or None, as_json=as_json)
    if run is not None:
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
