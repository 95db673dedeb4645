"""`recoghub-cli failures RUN`: what failed for a team's services in a run.

The hub groups the failures (`GET /api/v1/runs/{id}/failures`, as for the organizer's
`recoghub run failures`): by service, outcome and error text with numbers and ids as
`<n>` and `<id>`. The tool only prints them, one line a group; a team sees the groups of
its dry runs (an evaluation's stay with the organizer) and the outcome counts of any run.
"""

from typing import Any

from rich.markup import escape

from cmdline_tool import output
from cmdline_tool.hub_api import run_subject, team_client
from cmdline_tool.options import HubOpt, JsonOpt, KeyOpt, TimeoutOpt, run
from cmdline_tool.team import RunArg


def group_line(group: dict[str, Any]) -> str:
    """One kind of failure: `3 x http_error 500: <detail> (first .. last; requests ...)`."""
    status = f" {group['http_status']}" if group.get("http_status") else ""
    seen = f"{group.get('first_seen') or '-'} to {group.get('last_seen') or '-'}"
    ids = " ".join(group.get("request_ids") or []) or "-"
    return (
        f"  {group['count']} x [red]{escape(group['outcome'] + status)}[/]: "
        f"{escape(group.get('detail') or '-')} ({seen}; requests {escape(ids)})"
    )


def failures(
    run_id: RunArg,
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 120.0,
) -> None:
    """What failed for your services in a run: outcome counts and, for a dry run, each
    kind of failure with how often, when, and a few request ids (grep your recognizer's
    log for them)."""

    async def work() -> bool:
        groups: list[dict[str, Any]] = []
        async with team_client(hub, key, timeout) as client:
            body = await client.call("GET", f"/runs/{run_id}", run_subject(run_id))
            if body["phase"] == "dryrun":
                path = f"/runs/{run_id}/failures"
                groups = await client.call("GET", path, run_subject(run_id))
        report = [
            {**s, "groups": [g for g in groups if g["service_guid"] == s["service_guid"]]}
            for s in body["services"]
        ]
        if as_json:
            output.emit_json({"run": run_id, "phase": body["phase"], "services": report})
            return True
        for s in report:
            name = escape(f"{s['service_name']} ({s['service_guid']})")
            failed = sum(n for o, n in s["outcomes"].items() if o != "ok")
            if not failed:
                output.out.print(
                    f"[green]{name}: no failures[/] ({s['done']}/{s['total']} done, {s['status']})"
                )
                continue
            output.out.print(
                f"[red]{name}: {failed} of {s['done']} done failed[/] "
                f"({escape(output.failed_outcomes(s['outcomes']))}; {s['status']})"
            )
            if s.get("reason"):
                output.out.print(f"  {escape(s['reason'])}")
            for group in s["groups"]:
                output.out.print(group_line(group))
        return True

    run(as_json, work)
