"""A team's dry runs (SPEC §7): the datasets the organizer opened to them, and a dry run
of the team's own services on one, followed to its end with `--watch`."""

import asyncio
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cmdline_tool import output
from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import team_client
from cmdline_tool.options import HubOpt, JsonOpt, KeyOpt, TimeoutOpt, run, run_list
from cmdline_tool.refusals import Subject
from cmdline_tool.team import FINISHED, show_status
from cmdline_tool.watch import poll_run
from gateway.cli.hub_away import HubAway
from gateway.scoring.leaderboard import MetricName


def _datasets_table(body: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("id", "name", "images"):
        table.add_column(column, justify="right" if column != "name" else "left")
    for d in body:
        table.add_row(str(d["id"]), escape(d["name"]), str(d["images"]))
    return table


def datasets(
    hub: HubOpt = None, key: KeyOpt = None, as_json: JsonOpt = False, timeout: TimeoutOpt = 30.0
) -> None:
    """The datasets the organizer opened to team dry runs."""
    run_list(
        hub,
        key,
        timeout,
        as_json,
        path="/datasets",
        name="datasets",
        empty="no dataset is open to team dry runs; ask the organizer",
        table=_datasets_table,
    )


def dryrun(
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="Dataset name or id (see `datasets`).")
    ],
    services: Annotated[
        list[str] | None,
        typer.Option("--service", help="Your service GUID (repeat; default: all enabled)."),
    ] = None,
    metric: Annotated[
        MetricName | None,
        typer.Option("--metric", help="Primary metric to rank by (default: top5)."),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Start a dry run of your services on a dataset open to teams (daily quota)."""

    async def work() -> bool:
        body: dict[str, Any] = {"dataset": dataset.strip(), "phase": "dryrun"}
        if dataset.strip().isdigit():
            body["dataset"] = int(dataset)
        if services:
            body["services"] = [s.strip() for s in services]
        if metric is not None:
            body["metric"] = metric.value
        async with team_client(hub, key, timeout) as client:
            started = await client.call(
                "POST", "/runs", Subject("dataset", dataset, "--dataset"), expect=201, json=body
            )
            run_id = int(started["id"])
            if not watch:
                if as_json:
                    output.emit_json(started)
                else:
                    output.out.print(
                        f"dry run {run_id} queued on {escape(started['dataset'])}: follow it with "
                        f"`recoghub-cli status {run_id}`"
                    )
                return True
            if not as_json:
                output.err.print(f"dry run {run_id} queued on {escape(started['dataset'])}")
            current = started
            last = ""
            away = HubAway()
            while current["state"] not in FINISHED:
                await asyncio.sleep(1.0)
                current = await poll_run(client, run_id, away, current)
                line = f"{current['state']}: " + ", ".join(
                    f"{s['service_name']} {s['done']}/{s['total']}" for s in current["services"]
                )
                if line != last and not as_json:
                    output.err.print(escape(line))
                    last = line
        passed = current["state"] == "completed" and all(
            s["status"] == "passed" for s in current["services"]
        )
        if as_json:
            output.emit_json(current)
        else:
            show_status(current)
            if passed:
                output.out.print(f"[green]dry run {run_id} passed[/]")
            else:
                output.error_line(
                    CliError(
                        "recognizer" if current["state"] == "completed" else "hub",
                        "dryrun_failed",
                        f"dry run {run_id} ended {current['state']} and did not pass",
                        f"see `recoghub-cli failures {run_id}`",
                    )
                )
        return passed

    run(as_json, work)
