"""A team's prediction files (SPEC §13): `download SLUG PHASE -o DIR` fetches an offline
phase's images (a zip streamed by the hub, unpacked into DIR with its `images.csv` and
`labels.txt`), and `submit SLUG PHASE FILE --format F` uploads a file, following a 202
(`scoring`) to its scores. A refused file is one line naming the line or array of the
file and what was expected; it does not count against the limit.
"""

import asyncio
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from cmdline_tool import output
from cmdline_tool.errors import CliError
from cmdline_tool.hub_api import team_client
from cmdline_tool.options import HubOpt, JsonOpt, KeyOpt, TimeoutOpt, run
from cmdline_tool.refusals import Subject, refusal

FORMATS = ("recoghub-tsv", "ilsvrc", "isc-matching", "isc-descriptors")
CHUNK = 1024 * 1024
# How long `submit` follows a file still scoring, and how often it asks.
FOLLOW_S = 3600.0
POLL_S = 1.0
FIGURES = ("top1", "top5", "micro_ap", "coverage_at_95", "coverage_at_99")

SlugArg = Annotated[str, typer.Argument(metavar="SLUG", help="The challenge (see `challenges`).")]
PhaseArg = Annotated[str, typer.Argument(metavar="PHASE", help="The phase (see `phases SLUG`).")]


def _phase_path(slug: str, phase: str) -> str:
    return f"/challenges/{slug.strip()}/phases/{phase.strip()}"


def _challenge(slug: str) -> Subject:
    return Subject("challenge", slug, "SLUG")


def download(
    slug: SlugArg,
    phase: PhaseArg,
    out_dir: Annotated[
        Path, typer.Option("-o", "--output", help="The directory to unpack the images into.")
    ],
    hub: HubOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = 300.0,
) -> None:
    """Download an offline phase's images into DIR: images/, images.csv, labels.txt."""

    async def work() -> bool:
        out_dir.mkdir(parents=True, exist_ok=True)
        archive = out_dir / f".{slug}-{phase}-images.zip.part"
        progress = Progress(
            TextColumn("downloading"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=output.err,
            transient=True,
            disable=as_json or not output.err.is_terminal,
        )
        async with team_client(hub, key, timeout) as client:
            url = f"{_phase_path(slug, phase)}/images"
            async with client.stream("GET", url) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise refusal(response, client.url, _challenge(slug))
                with progress, archive.open("wb") as out:
                    task = progress.add_task("downloading", total=None)
                    async for chunk in response.aiter_bytes(CHUNK):
                        out.write(chunk)
                        progress.advance(task, len(chunk))
        try:
            with zipfile.ZipFile(archive) as unpacked:
                names = unpacked.namelist()
                unpacked.extractall(out_dir)
        except zipfile.BadZipFile as exc:
            raise CliError(
                "hub", "bad_download", f"the download is not a whole zip ({exc})", "try again"
            ) from None
        finally:
            archive.unlink(missing_ok=True)
        images = sum(1 for name in names if name.startswith("images/"))
        if as_json:
            output.emit_json({"directory": str(out_dir), "images": images, "files": names})
        else:
            listed = ", ".join(
                n for n in ("images.csv", "labels.txt", "references.txt") if n in names
            )
            output.out.print(
                f"{images} images in {escape(str(out_dir / 'images'))}; {escape(listed)} "
                f"in {escape(str(out_dir))}"
            )
        return True

    run(as_json, work)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as stream:
        while chunk := await asyncio.to_thread(stream.read, CHUNK):
            yield chunk


# What each stage of a file's scoring counts (SubmissionRead.progress).
_STAGES = {"search": "queries searched", "score": "images scored"}


class _ScoringBar:
    """The progress of a file still scoring, as the hub shows it: a bar on a terminal,
    else a line each time the stage changes."""

    def __init__(self, *, quiet: bool) -> None:
        self._quiet = quiet
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=output.err,
            transient=True,
            disable=quiet or not output.err.is_terminal,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> "_ScoringBar":
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)

    def show(self, progress: dict[str, Any] | None) -> None:
        if self._quiet or not progress:
            return
        stage = str(progress["stage"])
        label = _STAGES.get(stage, stage)
        done, total = int(progress["done"]), int(progress["total"])
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(label, total=total)
            if self._bar.disable:
                output.err.print(f"scoring: {done}/{total} {label}")
        self._bar.update(self._tasks[stage], completed=done, total=total)


def submit_file(
    slug: str,
    phase: str,
    file: Path,
    fmt: str | None,
    *,
    hub: str | None,
    key: str | None,
    as_json: bool,
    timeout: float,
) -> None:
    """Upload `file` as a prediction file of format `fmt` and show its scores."""

    async def work() -> bool:
        if fmt is None:
            raise CliError(
                "local",
                "usage",
                "a prediction file needs its --format",
                f"one of {', '.join(FORMATS)}",
            )
        if not file.is_file():
            raise CliError("local", "no_file", f"no file at {file}", "check the FILE path")
        path = _phase_path(slug, phase)
        size = file.stat().st_size
        async with team_client(hub, key, timeout) as client:
            response = await client.request(
                "POST",
                f"{path}/submissions",
                params={"format": fmt},
                content=_chunks(file),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
            if response.status_code == 422:
                body = response.json() if response.content else {}
                if body.get("code") == "file_rejected":
                    raise CliError(
                        "local",
                        "file_rejected",
                        f"{file.name} refused: {body['detail']}",
                        "fix the file and submit it again; a refused file does not count",
                    )
            if response.status_code not in (201, 202):
                raise refusal(response, client.url, _challenge(slug))
            made: dict[str, Any] = response.json()
            deadline = time.monotonic() + FOLLOW_S
            if made.get("state") == "scoring" and not as_json:
                output.err.print(f"submission {made['id']} accepted; scoring…")
            with _ScoringBar(quiet=as_json) as bar:
                bar.show(made.get("progress"))
                while made.get("state") == "scoring" and time.monotonic() < deadline:
                    await asyncio.sleep(POLL_S)
                    made = await client.call(
                        "GET", f"{path}/submissions/{made['id']}", _challenge(slug)
                    )
                    bar.show(made.get("progress"))
            shown = await client.call("GET", path, _challenge(slug))
        if as_json:
            output.emit_json({**made, "yours": shown.get("yours")})
            return made.get("state") == "scored"
        from cmdline_tool.challenges import left_text

        head = f"submission {made['id']} ({escape(str(made.get('format')))}, {size} bytes)"
        if made.get("state") == "failed":
            output.out.print(f"{head} could not be scored: {escape(str(made.get('error')))}")
            return False
        if made.get("state") == "scoring":
            output.out.print(
                f"{head} is still scoring; see `recoghub-cli submissions {slug} {phase}`"
            )
        scores = made.get("scores")
        if scores:
            figures = ", ".join(
                f"{name} {output.pct_text(scores[name])}"
                for name in FIGURES
                if scores.get(name) is not None
            )
            where = "all images" if scores["part"] == "all" else f"the {scores['part']} part"
            output.out.print(f"{head} scored on {where}: {figures}")
        elif made.get("state") == "scored":
            output.out.print(f"{head} scored; the phase shows scores once published")
        output.out.print(left_text(shown.get("yours")))
        return True

    run(as_json, work)
