"""`recoghub run resend`: the organizer has a service's items with chosen outcomes sent
again (`POST /api/v1/runs/{id}/resend`; README, "Re-sending a team's images"), and
`recoghub run resends` prints the earlier results kept as history."""

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from gateway.cli.hub_client import (
    HubOption,
    JsonOption,
    TokenOption,
    checked,
    console,
    hub_answer,
    hub_client,
    print_json,
)

RunId = Annotated[int, typer.Argument(help="Run id.", show_default=False)]
ServiceOption = Annotated[
    str, typer.Option("--service", help="The service's GUID.", show_default=False)
]


def register(runs: typer.Typer) -> None:
    """Add the commands to the organizer's `recoghub run` group."""

    @runs.command("resend")
    def resend(
        run_id: RunId,
        service: ServiceOption,
        outcome: Annotated[
            str,
            typer.Option(
                "--outcome",
                help="Comma-separated outcomes whose images are sent again, e.g. "
                "connect_error,missed,unreachable (any outcome but ok).",
                show_default=False,
            ),
        ],
        hub: str = HubOption,
        token: str | None = TokenOption,
        as_json: bool = JsonOption,
    ) -> None:
        """Send a service's images that ended with the given outcomes again, while the
        run is open or after it completed; their earlier results are kept as history."""
        outcomes = [name.strip() for name in outcome.split(",") if name.strip()]
        body = {"service_guid": service, "outcomes": outcomes}
        path = f"/api/v1/runs/{run_id}/resend"
        done = hub_answer(hub, token, "POST", path, json=body, as_json=as_json)
        if done is None:
            return  # printed as JSON
        counts = ", ".join(f"{name} {n}" for name, n in done["outcomes"].items())
        console.print(
            f"run {done['run_id']}: {done['images']} images of service {done['service_guid']} "
            f"sent again ({counts}); {done['resent']} re-sent in all; run {done['run_state']}",
            highlight=False,
            soft_wrap=True,
        )

    @runs.command("resends")
    def resends(
        run_id: RunId,
        service: ServiceOption,
        hub: str = HubOption,
        token: str | None = TokenOption,
        as_json: bool = JsonOption,
    ) -> None:
        """Print the earlier results of a service's re-sent images (the history)."""
        with hub_client(hub, token) as client:
            rows = checked(
                client.get(f"/api/v1/runs/{run_id}/resends", params={"service": service})
            )
        if as_json:
            print_json(rows)
            return
        table = Table(title=f"earlier results re-sent, run {run_id}", box=box.SIMPLE_HEAD)
        for name in ("key", "outcome", "attempts", "re-sent at", "detail"):
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(
                row["key"],
                row["outcome"],
                str(row["attempts"]),
                row["resent_at"],
                row["detail"] or "",
            )
        console.print(table)
