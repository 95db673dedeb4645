"""`recoghub run leaderboard | results | failures | classes | timeline`: what a run found,
printed or exported (CSV, JSON, JSONL) from a running hub's API (SPEC §3)."""

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from gateway.cli.hub_client import (
    HubOption,
    TokenOption,
    checked,
    console,
    err_console,
    fail,
    hub_answer,
    hub_client,
    print_json,
)
from gateway.cli.run_list import deadline_note
from gateway.cli.run_tables import (
    failures_text,
    leaderboard_table,
    ms_text,
    pct_text,
    rate_text,
)
from gateway.cli.runs import AsJson, RunId
from gateway.cli.service_view import longest_word, team_service
from gateway.scoring.display import board_notes


class ResultFormatChoice(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


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


def failures(
    run_id: RunId,
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: AsJson = False,
) -> None:
    """Print a run's failures grouped by service, outcome and error text (numbers and ids
    as <n> and <id>), most frequent first."""
    groups: list[dict[str, Any]] = hub_answer(
        hub, token, "GET", f"/api/v1/runs/{run_id}/failures", as_json=as_json
    )
    if groups is None:
        return  # printed as JSON
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


def register(runs: typer.Typer) -> None:
    """Add the commands to the organizer's `recoghub run` group."""
    runs.command()(leaderboard)
    runs.command()(results)
    runs.command()(failures)
    runs.command()(classes)
    runs.command()(timeline)
