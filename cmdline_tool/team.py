"""A team's own view of the hub's runs (SPEC §7): its runs, their status, leaderboards and
results (its failures: failures.py; its dry runs: dryrun.py; its services:
team_services.py).

Everything goes through the hub's API with the team's key, so the hub decides what the
team may see: only the runs its services take part in, only its own rows, results of
dry runs only. A refusal is one line naming the side and what to do (refusals.py).
"""

import asyncio
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cmdline_tool import output
from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import HubClient, require_guid, run_subject, team_client
from cmdline_tool.options import HubOpt, JsonOpt, KeyOpt, ServiceOpt, TimeoutOpt, run
from cmdline_tool.refusals import Subject, refusal
from gateway.cli.run_list import deadline_note, window_line
from gateway.cli.service_view import (
    longest_word,
    team_service,
)
from gateway.scoring.display import board_notes

RunArg = Annotated[int, typer.Argument(metavar="RUN", min=1, help="Run id (see `runs`).")]
FINISHED = ("completed", "cancelled", "failed")


def _images(row: dict[str, Any]) -> str:
    """Images scored, and of how many while the row is provisional (hubs that say)."""
    total = row.get("images_total")
    if row.get("provisional") and isinstance(total, int):
        return f"{row['images']}/{total}"
    return str(row["images"])


def _starter(body: dict[str, Any]) -> str:
    return "organizer" if not body.get("started_by") else str(body.get("started_by_name") or "team")


def runs(
    hub: HubOpt = None, key: KeyOpt = None, as_json: JsonOpt = False, timeout: TimeoutOpt = 30.0
) -> None:
    """The runs your services take part in, newest first."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            body = await client.call("GET", "/runs")
        if as_json:
            output.emit_json({"runs": body})
            return True
        if not body:
            output.out.print(
                "no runs yet: your services take part in none; start a dry run with "
                "`recoghub-cli dryrun --dataset NAME`"
            )
            return True
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("run", "phase", "dataset", "state", "by", "your services"):
            table.add_column(column, no_wrap=column != "your services")
        for r in body:
            mine = ", ".join(
                f"{s['service_name']} {s['status']} {s['done']}/{s['total']}" for s in r["services"]
            )
            table.add_row(
                str(r["id"]),
                r["phase"],
                escape(r["dataset"]),
                r["state"],
                escape(_starter(r)),
                escape(mine),
            )
        output.out.print(table)
        # The window in the words of the organizer's `run show`, a line a run (not more
        # columns: the table already fills 80).
        for r in body:
            window = window_line(r)
            if window:
                style = "magenta" if r.get("stopped_at_deadline") else ""
                output.out.print(f"run {r['id']}: {escape(window)}", style=style)
        return True

    run(as_json, work)


def _status_table(body: dict[str, Any]) -> Table:
    table = Table(
        title=f"run {body['id']} · {body['phase']} on {escape(body['dataset'])} · "
        f"{body['state']} · started by {escape(_starter(body))}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    names = [s["service_name"] for s in body["services"]]
    statuses = max((len(str(s["status"])) for s in body["services"]), default=6)
    for column in ("service", "status", "done", "failed", "p50", "p99", "img/s", "eta"):
        if column == "service":  # wraps between words, never inside one
            table.add_column(column, min_width=longest_word(names))
        elif column == "status":  # whole, never "pass…"
            table.add_column(column, no_wrap=True, min_width=statuses)
        else:
            table.add_column(column, justify="right", no_wrap=True)
    for s in body["services"]:
        eta = s.get("eta_s")
        table.add_row(
            escape(s["service_name"]),
            s["status"],
            f"{s['done']}/{s['total']}",
            str(s["done"] - s["outcomes"].get("ok", 0)),  # by kind under the table
            output.ms_text(s["latency_ms"].get("p50")),
            output.ms_text(s["latency_ms"].get("p99")),
            f"{s['images_per_s']:.1f}" if s.get("images_per_s") is not None else "–",
            f"{eta:.0f} s" if isinstance(eta, int | float) else "–",
        )
    return table


def show_status(body: dict[str, Any]) -> None:
    output.out.print(_status_table(body))
    if body.get("part") == "public":
        output.out.print(
            "a challenge submission: counts are of the public part of the images only until "
            "the final ranking is published"
        )
    window = window_line(body)
    if window:
        output.out.print(escape(window), style="magenta" if body.get("stopped_at_deadline") else "")
    for s in body["services"]:
        if s.get("reason"):
            output.out.print(f"{escape(s['service_name'])}: {escape(s['reason'])}")
        elif failed := output.failed_outcomes(s["outcomes"]):
            output.out.print(f"{escape(s['service_name'])}: {escape(failed)}", style="yellow")


def status(
    run_id: RunArg,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """State and progress of a run, for your services."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            body = await client.call("GET", f"/runs/{run_id}", run_subject(run_id))
        if as_json:
            output.emit_json(body)
        else:
            show_status(body)
        return True

    run(as_json, work)


def board_table(run_id: int, rows: list[dict[str, Any]]) -> Table:
    """A leaderboard as a team reads it; names wrap between words, statuses stay whole."""
    table = Table(
        title=f"run {run_id}", title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True
    )
    names = [team_service(r["provider_name"], r["service_name"]) for r in rows]
    statuses = max((len(str(r["status"])) for r in rows), default=6)
    for column in ("#", "team / service", "status", "images", "top-1", "top-5", "p50", "p99"):
        if column == "team / service":  # wraps between words, never inside one
            table.add_column(column, min_width=longest_word(names))
        else:
            table.add_column(
                column,
                justify="left" if column == "status" else "right",
                no_wrap=True,
                min_width=statuses if column == "status" else None,
            )
    for r, name in zip(rows, names, strict=True):
        table.add_row(
            str(r["rank"]),
            escape(name),
            r["status"],
            _images(r),
            output.pct_text(r.get("top1")),
            output.pct_text(r.get("top5")),
            output.ms_text(r["latency_ms"].get("p50")),
            output.ms_text(r["latency_ms"].get("p99")),
        )
    return table


def leaderboard(
    run_id: RunArg,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """The run's leaderboard: your own row of a dry run; an evaluation's once published."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            rows = await client.call("GET", f"/runs/{run_id}/leaderboard", run_subject(run_id))
            if as_json:
                output.emit_json({"run": run_id, "rows": rows})
                return True
            # A published board may be read by a team outside the run: then no note.
            answer = await client.request("GET", f"/runs/{run_id}")
            note = deadline_note(answer.json()) if answer.status_code == 200 else None
        table = board_table(run_id, rows)
        output.out.print(table)
        for r in rows:
            if r.get("resent"):
                output.out.print(
                    escape(
                        f"re-sent: the organizer had {r['resent']} images of "
                        f"{r['provider_name']} / {r['service_name']} sent again"
                    )
                )
        if rows:
            output.out.print(escape(board_notes(rows[0])), highlight=False)
        if note:
            output.out.print(escape(note), style="magenta")
        return True

    run(as_json, work)


async def _own_service(client: HubClient, run_id: int, service: str | None) -> str:
    """The service whose results to fetch: the one given, or the team's only one in the run."""
    if service:
        return require_guid(service, "--service", "RECOGHUB_SERVICE")
    body = await client.call("GET", f"/runs/{run_id}", run_subject(run_id))
    guids = [s["service_guid"] for s in body["services"]]
    if len(guids) == 1:
        return str(guids[0])
    raise CliError(
        "local",
        "usage",
        f"run {run_id} has {len(guids)} of your services: say which one",
        f"pass --service, one of {', '.join(guids)}",
    )


class ResultFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


def results(
    run_id: RunArg,
    output_file: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file (default: stdout)."),
    ] = None,
    fmt: Annotated[ResultFormat, typer.Option("--format", help="csv or jsonl.")] = ResultFormat.csv,
    service: ServiceOpt = None,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 120.0,
) -> None:
    """Your service's result for every image of a dry run (CSV or JSONL)."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            guid = await _own_service(client, run_id, service)
            response = await client.request(
                "GET", f"/runs/{run_id}/results", params={"service": guid, "format": fmt.value}
            )
            if response.status_code != 200:
                raise refusal(response, client.url, Subject("service", guid, "--service"))
        text = response.text
        rows = max(0, text.count("\n") - (1 if fmt == "csv" else 0))
        if output_file is None:
            sys.stdout.write(text)
            return True
        try:
            await asyncio.to_thread(output_file.write_text, text, encoding="utf-8")
        except OSError as exc:
            raise CliError(
                "local",
                "unwritable",
                f"cannot write {output_file} ({exc.strerror or exc})",
                "check the path and its permissions",
            ) from None
        if as_json:
            output.emit_json(
                {
                    "run": run_id,
                    "service": guid,
                    "format": fmt.value,
                    "rows": rows,
                    "output": str(output_file),
                }
            )
        else:
            output.err.print(f"wrote {rows} rows of run {run_id} to {escape(str(output_file))}")
        return True

    run(as_json, work)
