"""A team in a challenge (SPEC §12): the challenges it may enter, their phases with the
windows and limits, its submissions, the ones it selects, and the phase standings.

Everything goes through the hub's API with the team's key: the hub decides what a team
sees (its own submissions; the public part's scores while a phase is open, none at all
in a phase that shows them at close; the final ranking once published). A refusal is one
line naming the side and what to do (refusals.py): a used-up limit says when the next
submission is allowed, in local time and UTC; a closed window says the window.
"""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from cmdline_tool import output
from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import HubClient, require_guid, team_client
from cmdline_tool.offline import submit_file
from cmdline_tool.options import HubOpt, JsonOpt, KeyOpt, TimeoutOpt, run, run_list
from cmdline_tool.refusals import Subject
from cmdline_tool.times import local_time

SlugArg = Annotated[str, typer.Argument(metavar="SLUG", help="The challenge (see `challenges`).")]
PhaseArg = Annotated[str, typer.Argument(metavar="PHASE", help="The phase (see `phases SLUG`).")]
LIMITS = ("per_day", "per_week", "total")


def _challenge(slug: str) -> Subject:
    return Subject("challenge", slug, "SLUG")


def _phase_path(slug: str, phase: str) -> str:
    return f"/challenges/{slug.strip()}/phases/{phase.strip()}"


def limit_text(limit: dict[str, Any]) -> str:
    """ "per_week 2, total 3", or "none"."""
    return ", ".join(f"{k} {limit[k]}" for k in LIMITS if limit.get(k) is not None) or "none"


def left_text(yours: dict[str, Any] | None) -> str:
    """The caller's submissions left: "2 of 3 left", "unlimited", or when the next is."""
    if not yours:
        return "–"
    if yours.get("left") is None:
        return f"{yours['made']} made, no limit"
    text = f"{yours['made']} made, {yours['left']} left"
    if yours["left"] == 0 and yours.get("next_allowed_at"):
        text += f" (next at {local_time(yours['next_allowed_at'])})"
    return text


def _challenges_table(body: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("slug", "title", "phases", "public"):
        table.add_column(column, no_wrap=column != "title")
    for c in body:
        table.add_row(
            escape(c["slug"]),
            escape(c["title"]),
            str(c["phases"]),
            "yes" if c["public"] else "no",
        )
    return table


def list_challenges(
    hub: HubOpt = None, key: KeyOpt = None, as_json: JsonOpt = False, timeout: TimeoutOpt = 30.0
) -> None:
    """The challenges you may enter (and the public ones)."""
    run_list(
        hub,
        key,
        timeout,
        as_json,
        path="/challenges",
        name="challenges",
        empty="no challenge is open to your team yet; ask the organizer",
        table=_challenges_table,
    )


def phases(
    slug: SlugArg,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """A challenge's phases: window (local time), limit, what counts, your submissions left."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            body = await client.call("GET", f"/challenges/{slug.strip()}", _challenge(slug))
        if as_json:
            output.emit_json(body)
            return True
        output.out.print(f"[bold]{escape(body['title'])}[/] ({escape(body['slug'])})")
        if body.get("enrolled") is False:
            output.out.print("[yellow]your team is not enrolled: ask the organizer[/]")
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("phase", "state", "kind", "metric", "limit", "counts"):
            table.add_column(column, no_wrap=column != "limit")
        for p in body["phases"]:
            counts = p["counts"]
            if counts == "selected":
                counts += f" (up to {p['selection_limit']})"
            table.add_row(
                escape(p["name"]),
                p["state"],
                p["kind"] + (" dry run" if p.get("dry_run") else ""),
                p["metric"],
                limit_text(p["submission_limit"]),
                counts,
            )
        output.out.print(table)
        for p in body["phases"]:
            shown = "live" if p["visible"] == "live" else "at close (no score before)"
            split = (
                f", live scores on {p['public_fraction']:.0%} of the images"
                if p["public_fraction"] < 1
                else ""
            )
            yours = f"; yours: {left_text(p['yours'])}" if p.get("yours") else ""
            output.out.print(
                f"{escape(p['name'])}: {local_time(p['opens_at'])} to "
                f"{local_time(p['closes_at'])}; leaderboard {shown}{split}{yours}"
            )
        return True

    run(as_json, work)


def submit(
    slug: SlugArg,
    phase: PhaseArg,
    file: Annotated[
        Path | None,
        typer.Argument(metavar="FILE", help="A prediction file (with --format)."),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option("--service", envvar="RECOGHUB_SERVICE", help="Your service's GUID."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="The prediction file's format.")
    ] = None,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Submit to a phase within your limit: a live run of your service (--service GUID)
    or a prediction file (FILE --format F; shows its scores)."""
    if file is not None and service is None:
        submit_file(slug, phase, file, fmt, hub=hub, key=key, as_json=as_json, timeout=timeout)
        return

    async def work() -> bool:
        if service is not None and file is not None:
            raise CliError(
                "local", "usage", "give --service or FILE, not both", "see `submit --help`"
            )
        guid = require_guid(service, "--service", "RECOGHUB_SERVICE")
        path = _phase_path(slug, phase)
        async with team_client(hub, key, timeout) as client:
            made = await client.call(
                "POST",
                f"{path}/submissions",
                Subject("service", guid, "--service"),
                expect=201,
                json={"service_guid": guid},
            )
            shown = await client.call("GET", path, _challenge(slug))
        if as_json:
            output.emit_json({**made, "yours": shown.get("yours")})
        else:
            output.out.print(
                f"submission {made['id']} accepted: run {made['run_id']} of "
                f"{escape(str(made['service_name']))} in {escape(slug)}/{escape(phase)}; "
                f"{left_text(shown.get('yours'))}"
            )
            output.out.print(
                f"follow it with `recoghub-cli submissions {slug} {phase}` or "
                f"`recoghub-cli status {made['run_id']}`"
            )
        return True

    run(as_json, work)


def _score(row: dict[str, Any], metric: str) -> str:
    scores = row.get("scores")
    if not scores:
        return "hidden" if row.get("status") else "–"
    text = output.pct_text(scores.get(metric))
    return text + (" (provisional)" if scores.get("provisional") else "")


def submissions(
    slug: SlugArg,
    phase: PhaseArg,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Your submissions to a phase, oldest first, with the scores the phase shows you."""

    async def work() -> bool:
        path = _phase_path(slug, phase)
        async with team_client(hub, key, timeout) as client:
            shown = await client.call("GET", path, _challenge(slug))
            body = await client.call("GET", f"{path}/submissions", _challenge(slug))
        if as_json:
            output.emit_json({"phase": shown, "submissions": body})
            return True
        metric = shown["metric"]
        part = next((s["scores"]["part"] for s in body if s.get("scores")), None)
        title = f"{slug}/{phase} · {metric}" + (f" on the {part} part" if part else "")
        table = Table(title=escape(title), title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("id", "made", "service", "run", "status", "images", metric, "selected"):
            table.add_column(column, no_wrap=True)
        for s in body:
            table.add_row(
                str(s["id"]),
                local_time(s["created_at"]),
                escape(str(s["service_name"] or "file")),
                str(s["run_id"] or "–"),
                str(s["status"] or "–"),
                f"{s['images_done']}/{s['images_total']}",
                _score(s, metric),
                "yes" if s["selected"] else "",
            )
        output.out.print(table if body else "no submissions yet")
        output.out.print(left_text(shown.get("yours")))
        return True

    run(as_json, work)


async def _find_submission(client: HubClient, submission_id: int) -> str:
    """The phase path of the caller's submission `submission_id`, looked up in the phases
    of the challenges it may see (one request each)."""
    for c in await client.call("GET", "/challenges"):
        found = await client.call("GET", f"/challenges/{c['slug']}", _challenge(c["slug"]))
        for p in found["phases"]:
            path = _phase_path(c["slug"], p["name"])
            response = await client.request("GET", f"{path}/submissions/{submission_id}")
            if response.status_code == 200:
                return path
    raise CliError(
        "hub",
        "not_found",
        f"no submission {submission_id} of your team in any challenge you may see",
        "list your submissions with `recoghub-cli submissions SLUG PHASE`",
    )


def select(
    submission_id: Annotated[
        int, typer.Argument(metavar="SUBMISSION", min=1, help="Submission id.")
    ],
    drop: Annotated[
        bool, typer.Option("--drop", help="Unselect it (it no longer counts).")
    ] = False,
    challenge: Annotated[
        str | None, typer.Option("--challenge", help="Its challenge (saves a search).")
    ] = None,
    phase: Annotated[str | None, typer.Option("--phase", help="Its phase.")] = None,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Pick a submission to count, in a phase that counts selected ones (before it closes)."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            if challenge and phase:
                path = _phase_path(challenge, phase)
            else:
                path = await _find_submission(client, submission_id)
            body = await client.call(
                "POST",
                f"{path}/submissions/{submission_id}/select",
                Subject("submission", str(submission_id), "SUBMISSION"),
                json={"selected": not drop},
            )
        if as_json:
            output.emit_json(body)
        else:
            state = "selected: it counts" if body["selected"] else "unselected"
            output.out.print(
                f"submission {submission_id} in {escape(body['challenge'])}/"
                f"{escape(body['phase'])} {state}"
            )
        return True

    run(as_json, work)


def standings(
    slug: SlugArg,
    phase: PhaseArg,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """The phase leaderboard: public-part live scores while open; the final ranking once
    the organizer publishes it."""

    async def work() -> bool:
        path = _phase_path(slug, phase)
        async with team_client(hub, key, timeout) as client:
            shown = await client.call("GET", path, _challenge(slug))
            board = await client.call("GET", f"{path}/leaderboard", _challenge(slug))
        if as_json:
            output.emit_json(board)
            return True
        metric = shown["metric"]
        what = (
            f"final ranking on the {board['part']} part"
            if board["final"]
            else f"live scores on the {board['part']} part (the final ranking may differ)"
        )
        table = Table(
            title=f"{escape(slug)}/{escape(phase)} · {what}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for column in ("#", "team / service", metric, "images", "made", "left", "last"):
            table.add_column(column, no_wrap=True)
        for r in board["rows"]:
            scores = r.get("scores") or {}
            rank = "baseline" if r["baseline"] else str(r["rank"] or "–")
            table.add_row(
                rank,
                escape(f"{r['provider_name']} / {r['service_name'] or '–'}"),
                output.pct_text(scores.get(metric)),
                str(scores.get("images", "–")),
                str(r["submissions"]),
                "–" if r["submissions_left"] is None else str(r["submissions_left"]),
                local_time(r["last_submission_at"]),
            )
        output.out.print(table)
        return True

    run(as_json, work)
