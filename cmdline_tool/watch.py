"""`recoghub-cli dryrun --watch` through a hub restart: the run's state, asked again with
back-off while the hub is away (gateway.cli.hub_away, shared with `recoghub run watch`)."""

import asyncio
from typing import Any

from rich.markup import escape

from cmdline_tool import output
from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import HubClient, run_subject
from cmdline_tool.refusals import json_body, refusal
from gateway.cli.hub_away import AWAY_STATUSES, HubAway, back_line

# A transport failure of the hub (cmdline_tool.hub_api): it may be restarting.
_HUB_AWAY_CODES = frozenset({"hub_unreachable", "hub_timeout", "hub_error"})


async def poll_run(
    client: HubClient, run_id: int, away: HubAway, current: dict[str, Any]
) -> dict[str, Any]:
    """The run's state now; while the hub is away (a restart), wait for it with back-off
    and carry on (gateway.cli.hub_away), giving up with a "hub" CliError."""
    while True:
        try:
            response = await client.request("GET", f"/runs/{run_id}")
        except CliError as exc:
            if exc.code not in _HUB_AWAY_CODES:
                raise
            reason = exc.message
        else:
            if response.status_code not in AWAY_STATUSES:
                seconds = away.back()
                if seconds is not None:
                    output.err.print(escape(back_line(seconds)))
                if response.status_code != 200:
                    raise refusal(response, client.url, run_subject(run_id))
                body = json_body(response)
                return body if isinstance(body, dict) else current
            reason = f"HTTP {response.status_code}"
        first = not away.away
        pause = away.missed()
        if pause is None:
            raise CliError(
                "hub",
                "hub_unreachable",
                f"{away.gone_line(client.url)} dry run {run_id} (it goes on at the hub)",
                f"`recoghub-cli status {run_id}` once the hub is back",
            )
        if first:
            output.err.print(escape(away.away_line(client.url, _short(reason))))
        await asyncio.sleep(pause)


def _short(reason: str) -> str:
    # CliError messages name the hub again ("cannot reach the hub at URL"): keep the gist.
    return reason.split(" at http", 1)[0]
