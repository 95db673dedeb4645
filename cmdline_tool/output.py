"""What the team tool shows: lines and tables for people, JSON for machines.

People read stdout (results) and stderr (errors, progress); with `--json` stdout
carries only JSON — one document for ping and check, one object a line for recog.
"""

import json
from collections.abc import Callable
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cmdline_tool.errors import CliError
from cmdline_tool.recog import Recognition, Summary, json_number
from gateway.scoring.display import percent

# soft_wrap: a line stays one line however narrow the terminal.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def emit_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False))


def print_list(
    body: list[dict[str, Any]],
    *,
    name: str,
    as_json: bool,
    empty: str,
    table: Callable[[list[dict[str, Any]]], Table],
) -> None:
    """A list the hub sent: as JSON under `name`, `empty` when there is none, else as
    the table `table` makes of it."""
    if as_json:
        emit_json({name: body})
    elif not body:
        out.print(empty)
    else:
        out.print(table(body))


def error_line(error: CliError) -> None:
    """The one line of a failure, on stderr."""
    err.print(f"[bold red]error:[/] {escape(error.line())}")


def show_error(error: CliError, *, as_json: bool) -> None:
    """The one line of a failure on stderr (and its JSON object on stdout with --json)."""
    error_line(error)
    if as_json:
        emit_json({"type": "error", "ok": False, **error.as_json()})


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} ms"


def ms_text(value: object) -> str:
    """A latency the hub sent (maybe missing) in ms."""
    return ms(float(value)) if isinstance(value, int | float) else "–"


def pct_text(value: object) -> str:
    """Fractions as the organizer's CLI and dashboard print them: one decimal percent,
    rounded half up (gateway/scoring/display.py)."""
    return percent(float(value), missing="–") if isinstance(value, int | float) else "–"


def score_text(score: float) -> str:
    """Three decimals, unless that would hide a small score as 0.000."""
    return f"{score:.3f}" if score == 0 or abs(score) >= 0.001 else f"{score:.2e}"


def recognition_line(result: Recognition, *, top: int) -> str:
    """One image: its name, then its top tags and latency, or what failed."""
    name = f"[bold]{escape(result.image.name)}[/]"
    if result.error is not None:
        return f"{name}  [red]failed[/] {escape(result.outcome)}: {escape(result.error.line())}"
    if result.tags:
        tags = ", ".join(
            f"{escape(tag)} [cyan]{score_text(score)}[/]" for tag, score in result.tags[:top]
        )
    else:
        tags = "[yellow](no answer: the recognizer abstained)[/]"
    return f"{name}  {tags}  [dim]{ms(result.latency_ms)}[/]"


def rate_limit_line(seconds: float) -> str:
    """The hub's rate limit held the batch back: said once a pause."""
    return (
        f"[yellow]the hub's rate limit for your key was reached: waiting {seconds:g} s, "
        "then sending the rest[/]"
    )


def summary_line(summary: Summary) -> str:
    failures = sorted((n, o) for o, n in summary.outcomes.items() if o != "ok")
    by_outcome = ", ".join(f"{outcome} {n}" for n, outcome in reversed(failures))
    failed = f"failed {summary.failed}" + (f" ({by_outcome})" if by_outcome else "")
    colour = "green" if summary.failed == 0 else "red"
    return (
        f"[{colour}]images {summary.images}: sent {summary.sent}, ok {summary.ok}, "
        f"{escape(failed)}[/] · {summary.images_per_s:.1f} images/s · latency "
        f"p50 {ms(summary.latency(0.50))}, p99 {ms(summary.latency(0.99))}"
    )


def check_table(
    service_guid: str, instances: list[dict[str, Any]], protocol: object = None
) -> Table:
    """One row per instance: reachable (ping), probe latency, format verdict, the answer.

    What went wrong is said in the error line under the table.
    """
    # The protocol tells a team on a model server which health routes "up" means.
    spoken = f" ({escape(str(protocol))})" if protocol else ""
    table = Table(
        title=f"service {service_guid}{spoken}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    # The instance URL is what a team copies and greps for: never folded.
    width = max((len(str(row.get("instance", ""))) for row in instances), default=8)
    table.add_column("instance", no_wrap=True, min_width=width)
    table.add_column("via", no_wrap=True)  # "connected" for a dial-out instance (SPEC §10)
    table.add_column("up", no_wrap=True)
    table.add_column("ping", justify="right", no_wrap=True)
    table.add_column("probe", justify="right", no_wrap=True)
    table.add_column("format", no_wrap=True)  # ok, or the probe's outcome
    table.add_column("answer", overflow="fold", min_width=12)
    for row in instances:
        outcome = str(row.get("outcome") or "–")
        verdict = "[green]ok[/]" if row.get("format_ok") else f"[red]{escape(outcome)}[/]"
        tags = row.get("tags") if row.get("format_ok") else None
        answer = "–"
        if isinstance(tags, list):
            shown = [
                f"{t.get('tag')} {_score(t.get('score'))}" for t in tags[:3] if isinstance(t, dict)
            ]
            answer = ", ".join(shown) or "(abstained)"
        table.add_row(
            escape(str(row.get("instance", "?"))),
            "connected" if row.get("connected") else "endpoint",
            "[green]yes[/]" if row.get("reachable") else "[red]no[/]",
            ms(json_number(row.get("ping_ms"))),
            ms(json_number(row.get("latency_ms"))),
            verdict,
            escape(answer),
        )
    return table


def failed_outcomes(outcomes: dict[str, int]) -> str:
    """The failed outcomes of a count by outcome, most first: "timeout 3, bad_format 1"."""
    bad = sorted(((n, o) for o, n in outcomes.items() if o != "ok" and n), reverse=True)
    return ", ".join(f"{o} {n}" for n, o in bad)


def _score(value: object) -> str:
    number = json_number(value)
    return score_text(number) if number is not None else "?"
