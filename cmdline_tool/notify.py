"""`recoghub-cli notify`: where the hub tells your team of its events (a webhook).

    notify show           the URL set (the secret is shown only when made or rotated)
    notify set URL        set it; the first time, the signing secret is shown, once
    notify clear          stop the notifications
    notify test           the hub posts a signed `test` event now; prints your answer
    notify rotate-secret  a new signing secret, shown once

Events are JSON posts (`service.down`, `service.up`, `run.started`, `run.ended`,
`phase.opened`, `phase.closed`, `test`) signed like the hub's requests to your
recognizer: X-Recog-Signature under the notification secret (README, Notifications).
"""

from typing import Annotated, Any

import typer
from rich.markup import escape

from cmdline_tool import output
from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import HubClient, team_client
from cmdline_tool.options import HubOpt, JsonOpt, KeyOpt, TimeoutOpt, run
from cmdline_tool.refusals import Subject

notify_app = typer.Typer(
    help="Where the hub tells your team when its service goes down and back, and when "
    "runs start and end: set, test, show your webhook.",
    no_args_is_help=True,
)


async def _me(client: HubClient) -> dict[str, Any]:
    """The caller's provider record (the key names it: no --provider needed)."""
    who: dict[str, Any] = await client.call("GET", "/whoami")
    provider = who.get("provider")
    if not isinstance(provider, dict):
        raise CliError(
            "local",
            "not_a_team",
            "this key is the organizer's, not a team's",
            "use your team's API key (--key / RECOGHUB_API_KEY); the organizer's webhook is "
            "the setting RECOGHUB_ORGANIZER_WEBHOOK_URL",
        )
    return provider


def _subject(guid: str) -> Subject:
    return Subject("provider", guid, "--key")


def _show_secret(secret: str | None) -> None:
    if secret:
        output.out.print(
            f"notification secret (shown only now): {secret}\n"
            "check each event's X-Recog-Signature with it (README, Notifications)"
        )


def _change(
    hub: str | None, key: str | None, as_json: bool, timeout: float, url: str | None
) -> None:
    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            me = await _me(client)
            changed = await client.call(
                "PATCH",
                f"/providers/{me['guid']}",
                _subject(me["guid"]),
                json={"notification_url": url},
            )
        if as_json:
            output.emit_json(changed)
            return True
        if url is None:
            output.out.print("notifications stopped: no URL is set")
        else:
            output.out.print(f"the hub posts your team's events to {escape(url)}")
            _show_secret(changed.get("notification_secret"))
            output.out.print("try it: recoghub-cli notify test")
        return True

    run(as_json, work)


@notify_app.command("set")
def notify_set(
    url: Annotated[str, typer.Argument(metavar="URL", help="Your receiver, http(s)://...")],
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Set where the hub posts your team's events."""
    _change(hub, key, as_json, timeout, url)


@notify_app.command("clear")
def notify_clear(
    hub: HubOpt = None, key: KeyOpt = None, as_json: JsonOpt = False, timeout: TimeoutOpt = 30.0
) -> None:
    """Stop the notifications."""
    _change(hub, key, as_json, timeout, None)


@notify_app.command("show")
def notify_show(
    hub: HubOpt = None, key: KeyOpt = None, as_json: JsonOpt = False, timeout: TimeoutOpt = 30.0
) -> None:
    """Show where the hub posts your team's events."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            me = await _me(client)
        if as_json:
            output.emit_json(
                {"provider_guid": me["guid"], "notification_url": me.get("notification_url")}
            )
        elif me.get("notification_url"):
            output.out.print(
                f"the hub posts your team's events to {escape(me['notification_url'])}"
            )
        else:
            output.out.print("no notification URL is set; set one: recoghub-cli notify set URL")
        return True

    run(as_json, work)


@notify_app.command("test")
def notify_test(
    hub: HubOpt = None, key: KeyOpt = None, as_json: JsonOpt = False, timeout: TimeoutOpt = 30.0
) -> None:
    """The hub posts a signed `test` event to your URL now; prints how it answered."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            me = await _me(client)
            answer: dict[str, Any] = await client.call(
                "POST", f"/providers/{me['guid']}/notification-test", _subject(me["guid"])
            )
        if as_json:
            output.emit_json(answer)
            return bool(answer["delivered"])
        url = escape(answer["url"])
        if answer["delivered"]:
            output.out.print(f"[green]your receiver at {url} answered {answer['status']}[/]")
            return True
        raise CliError(
            "recognizer",  # the team's side: its receiver, as the hub saw it
            "notification_not_delivered",
            f"your receiver at {url} did not take the test event: {answer['detail']}",
            "it must answer 2xx to a POST within the hub's timeout (no redirects)",
        )

    run(as_json, work)


@notify_app.command("rotate-secret")
def notify_rotate_secret(
    hub: HubOpt = None, key: KeyOpt = None, as_json: JsonOpt = False, timeout: TimeoutOpt = 30.0
) -> None:
    """A new notification secret, shown once; events are signed with it from now on."""

    async def work() -> bool:
        async with team_client(hub, key, timeout) as client:
            me = await _me(client)
            made: dict[str, Any] = await client.call(
                "POST", f"/providers/{me['guid']}/notification-secret", _subject(me["guid"])
            )
        if as_json:
            output.emit_json(made)
        else:
            _show_secret(made["notification_secret"])
        return True

    run(as_json, work)
