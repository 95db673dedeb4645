"""`recoghub-cli`: the team's tool — ping the hub, check a service, recognize images.

Exit code 0 only when everything asked for succeeded; every failure is one line that
says which side failed and what to do (errors.py), never a traceback.
"""

import time
from pathlib import Path
from typing import Annotated, Any, Protocol, cast

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from cmdline_tool import challenges, dryrun, failures, offline, output, team, team_services
from cmdline_tool.accuracy import Accuracy, require_labelled
from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import HubClient, normalize_hub_url, require_guid, require_key
from cmdline_tool.images import collect
from cmdline_tool.notify import notify_app
from cmdline_tool.options import (
    HubOpt,
    JsonOpt,
    KeyOpt,
    ProviderOpt,
    ServiceOpt,
    TimeoutOpt,
    run,
    unexpected,
)
from cmdline_tool.recog import Recognition, recognize_all
from cmdline_tool.refusals import SECRET_HINT

app = typer.Typer(
    name="recoghub-cli",
    help="RecogHub's team tool: ping the hub, check your service, recognize images through "
    "it, start and follow your dry runs, manage your service, enter challenges.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def ping(hub: HubOpt = None, as_json: JsonOpt = False, timeout: TimeoutOpt = 10.0) -> None:
    """Is the hub up? Prints its version and the round trip."""

    async def work() -> bool:
        url = normalize_hub_url(hub)
        async with HubClient(url, key=None, timeout_s=timeout) as client:
            started = time.perf_counter()
            body = await client.ping()
            round_trip = (time.perf_counter() - started) * 1000.0
        if body.get("status") != "ok":
            raise CliError(
                "hub",
                "hub_not_ok",
                f"the hub at {url} is up but reports status {body.get('status')!r}",
                "tell the organizer",
            )
        if as_json:
            output.emit_json({"hub": url, **body, "round_trip_ms": round(round_trip, 3)})
        else:
            output.out.print(
                f"[green]hub at {url} is up[/] (RecogHub {body.get('version', '?')}, "
                f"status {body.get('status')}, {round_trip:.1f} ms)"
            )
        return True

    run(as_json, work)


@app.command()
def check(
    hub: HubOpt = None,
    service: ServiceOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """The hub pings every instance of your service and sends it one probe image."""

    async def work() -> bool:
        url = normalize_hub_url(hub)
        guid = require_guid(service, "--service", "RECOGHUB_SERVICE")
        async with HubClient(url, key=require_key(key), timeout_s=timeout) as client:
            body = await client.check(guid)
        instances = [i for i in body.get("instances") or [] if isinstance(i, dict)]
        if as_json:
            output.emit_json({"hub": url, **body})
        else:
            output.out.print(output.check_table(guid, instances, body.get("protocol")))
        if body.get("ok") is True:
            if not as_json:
                output.out.print(f"[green]all {len(instances)} instance(s) passed the check[/]")
            return True
        output.error_line(check_failure(guid, instances))
        return False

    run(as_json, work)


def check_failure(service_guid: str, instances: list[dict[str, Any]]) -> CliError:
    """One line for a failed check: which instances failed, how, and what to do."""
    if not instances:
        return CliError(
            "hub",
            "no_instances",
            f"service {service_guid} has no instances to check",
            "ask the organizer to add your recognizer's endpoint URL to the service, or "
            "start it with recoghub-recognizer --connect (no port needed)",
        )
    failed = [i for i in instances if not (i.get("reachable") and i.get("format_ok"))]
    failed = failed or instances
    outcome = str(failed[0].get("outcome") or "connect_error")
    if outcome == "ok":  # the probe went well, so its /ping is what failed
        outcome = "ping_failed"
    if failed[0].get("status") == 401:
        outcome = "signature_rejected"
    parts = "; ".join(
        f"{i.get('instance')} {i.get('outcome') or 'unreachable'} ({i.get('detail') or '-'})"
        for i in failed
    )
    hints = {
        "timeout": "make it answer faster or check that it is not stuck",
        "http_error": "check its log: /ping and /recognize must answer 200",
        "bad_format": 'answer "tag:score" entries separated by ";", e.g. dog:0.95;cat:0.05',
        "too_large": "answer at most 64 KiB: send fewer tags",
        "ping_failed": "it answers /recognize but GET /ping must answer 200 too",
        "signature_rejected": SECRET_HINT,
    }
    return CliError(
        "recognizer",
        outcome,
        f"{len(failed)} of {len(instances)} instance(s) of service {service_guid} "
        f"failed the check: {parts}",
        hints.get(outcome, "is it running and reachable from the hub host?"),
    )


@app.command()
def recog(
    files: Annotated[
        list[Path],
        typer.Argument(help="Images, or directories searched for .jpg/.jpeg/.png files."),
    ],
    hub: HubOpt = None,
    service: ServiceOpt = None,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=256, help="Images in flight.")
    ] = 4,
    top: Annotated[int, typer.Option("--top", min=1, help="Tags shown per image.")] = 5,
    labels: Annotated[
        bool,
        typer.Option(
            "--labels", help="DIR is labelled (DIR/<label>/<image>): print top-1/top-5 accuracy."
        ),
    ] = False,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Recognize images through the hub: one line per image, then a summary."""

    async def work() -> bool:
        url = normalize_hub_url(hub)
        service_guid = require_guid(service, "--service", "RECOGHUB_SERVICE")
        # The key names its provider: --provider only double-checks it when given.
        provider_guid = provider.strip() if provider and provider.strip() else None
        api_key = require_key(key)
        images, any_directory = collect(files)
        accuracy = Accuracy([f for f in files if f.is_dir()]) if labels else None
        if accuracy is not None:
            require_labelled(images, accuracy.roots)
        many = any_directory or len(images) > 1
        async with HubClient(
            url, key=api_key, timeout_s=timeout, connections=concurrency
        ) as client:
            if provider_guid is not None:
                await client.provider(provider_guid)
            else:
                await client.whoami()  # a wrong key is named before any image is sent
            progress = Progress(
                SpinnerColumn(),
                TextColumn("recognizing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=output.err,
                transient=True,
                disable=as_json or not many or not output.err.is_terminal,
            )
            with progress:
                task = progress.add_task("recognizing", total=len(images))

                def shown(result: Recognition) -> None:
                    if as_json:
                        output.emit_json(result.as_json())
                    else:
                        output.out.print(output.recognition_line(result, top=top))
                    if accuracy is not None:
                        accuracy.add(result)
                    progress.advance(task)

                def waiting(seconds: float) -> None:
                    # stderr: with --json, stdout carries only JSON.
                    output.err.print(output.rate_limit_line(seconds))

                summary = await recognize_all(
                    client,
                    service_guid,
                    images,
                    concurrency=concurrency,
                    on_result=shown,
                    on_wait=waiting,
                )
        if as_json:
            output.emit_json(summary.as_json())
        elif many:
            output.out.print(output.summary_line(summary))
        if accuracy is not None and as_json:
            output.emit_json(accuracy.as_json())
        elif accuracy is not None:
            output.out.print(accuracy.line())
        return summary.failed == 0

    run(as_json, work)


app.command()(team.runs)
app.command()(team.status)
app.command()(team.leaderboard)
app.command()(team.results)
app.command()(failures.failures)
app.command()(dryrun.datasets)
app.command()(dryrun.dryrun)
app.add_typer(team_services.service_app, name="service")
app.add_typer(notify_app, name="notify")
app.command("challenges")(challenges.list_challenges)
app.command()(challenges.phases)
app.command()(challenges.submit)
app.command()(offline.download)
app.command()(challenges.submissions)
app.command()(challenges.select)
app.command()(challenges.standings)


def main() -> None:
    """Console-script entry point: whatever happens, at most one line, never a traceback.

    The CLI runs in non-standalone mode so that usage errors (a missing argument, a bad
    option value, an unknown command) are one line too, with exit code 2.
    """
    try:
        code = app(standalone_mode=False, prog_name="recoghub-cli")
    except (KeyboardInterrupt, typer.Abort):
        output.show_error(CliError("cli", "interrupted", "interrupted"), as_json=False)
        raise SystemExit(130) from None
    except Exception as exc:
        usage = _as_usage_error(exc)
        if usage is None:
            output.show_error(unexpected(exc), as_json=False)
            raise SystemExit(1) from None
        context = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and context is not None:
            typer.echo(context.get_help())
        else:
            path = getattr(context, "command_path", None)
            hint = f"see `{path} --help`" if path else None
            output.show_error(
                CliError("local", "usage", usage.format_message().rstrip("."), hint), as_json=False
            )
        raise SystemExit(usage.exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)


class _UsageError(Protocol):
    exit_code: int

    def format_message(self) -> str: ...


def _as_usage_error(exc: Exception) -> _UsageError | None:
    """Click's (or Typer's vendored Click's) error about the command line itself, if it is."""
    if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
        return cast(_UsageError, exc)
    return None


if __name__ == "__main__":
    main()
