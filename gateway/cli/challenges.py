"""`recoghub challenge`: a challenge as a file, and the organizer's phase controls.

    apply FILE.yaml     create or update the challenge the file describes; prints what
                        changed (nothing the second time); refuses, naming the field, a
                        change that would alter a scored submission
    export SLUG         the file back (YAML; JSON is YAML too)
    show SLUG           phases with their windows, limits and states
    close SLUG PHASE    end a phase's window now (its runs stop; the ranking is frozen)
    publish SLUG PHASE  show the final ranking to the teams (and a public page)

The file's keys are the API's field names (SPEC §12); it is read and checked here with
the API's own schema (`ChallengeCreate`) so a mistake names its place in the file before
anything is sent, and the hub applies it in one transaction (`PUT /challenges/{slug}`).
"""

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table

from gateway.challenges.schemas import ChallengeCreate
from gateway.cli.hub_client import (
    HubOption,
    JsonOption,
    TokenOption,
    checked,
    console,
    fail,
    hub_answer,
    hub_client,
    print_json,
)

app = typer.Typer(
    help="Challenges as files (apply, export) and the organizer's phase controls.",
    no_args_is_help=True,
)
API = "/api/v1/challenges"
# The file's keys of a phase, in the order `export` writes them.
PHASE_KEYS = (
    "name",
    "dataset",
    "kind",
    "metric",
    "opens_at",
    "closes_at",
    "submission_limit",
    "counts",
    "selection_limit",
    "visible",
    "public_fraction",
    "seed",
    "dry_run",
    "baselines",
    "k",
)


def read_file(path: Path) -> ChallengeCreate:
    """The challenge a YAML (or JSON) file describes; fails naming the bad place."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {error}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        fail(f"{path} is not valid YAML: {error}")
    if not isinstance(data, dict):
        fail(f"{path}: expected a mapping with slug, title and phases at the top")
    try:
        return ChallengeCreate.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        fail(f"{path}: {problems}")


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="The challenge file (YAML or JSON).")],
    hub: str = HubOption,
    token: str | None = TokenOption,
    as_json: bool = JsonOption,
) -> None:
    """Create or update a challenge from a file; prints what changed."""
    challenge = read_file(file)
    with hub_client(hub, token) as client:
        applied = checked(
            client.put(f"{API}/{challenge.slug}", json=challenge.model_dump(mode="json"))
        )
    if as_json:
        print_json(applied)
        return
    if applied["created"]:
        console.print(f"created challenge {challenge.slug} with {len(challenge.phases)} phases")
        return
    if not applied["changes"]:
        console.print(f"challenge {challenge.slug}: no changes")
        return
    for change in applied["changes"]:
        typer.echo(
            f"{change['what']}: {change['field']}: {_shown(change['old'])} -> "
            f"{_shown(change['new'])}"
        )


def file_of(challenge: dict[str, Any]) -> dict[str, Any]:
    """A challenge as the API shows it to the organizer, as its file."""
    phases = []
    for phase in challenge["phases"]:
        entry = {key: phase[key] for key in PHASE_KEYS}
        entry["submission_limit"] = {
            k: v for k, v in phase["submission_limit"].items() if v is not None
        }
        if entry["k"] is None:
            del entry["k"]
        phases.append(entry)
    return {
        "slug": challenge["slug"],
        "title": challenge["title"],
        "description": challenge["description"],
        "public": challenge["public"],
        "providers": challenge["providers"],
        "phases": phases,
    }


@app.command("export")
def export(
    slug: str,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here, not to stdout.")
    ] = None,
    hub: str = HubOption,
    token: str | None = TokenOption,
) -> None:
    """Write the challenge back as a file that `apply` takes (the split's seed included,
    so applying it changes nothing)."""
    with hub_client(hub, token) as client:
        challenge = checked(client.get(f"{API}/{slug}"))
    text = yaml.safe_dump(file_of(challenge), sort_keys=False, allow_unicode=True)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def _limits(limit: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in limit.items() if v is not None) or "none"


@app.command("show")
def show(
    slug: str, hub: str = HubOption, token: str | None = TokenOption, as_json: bool = JsonOption
) -> None:
    """The challenge's phases: state, window, limit, what counts, visibility, split."""
    challenge = hub_answer(hub, token, "GET", f"{API}/{slug}", as_json=as_json)
    if challenge is None:
        return  # printed as JSON
    table = Table(title=f"{challenge['slug']}: {challenge['title']}")
    for column in ("phase", "state", "dataset", "kind", "metric", "window", "limit", "counts"):
        table.add_column(column)
    table.add_column("visible")
    table.add_column("public", justify="right")
    for p in challenge["phases"]:
        table.add_row(
            p["name"],
            p["state"],
            p["dataset"],
            p["kind"] + (" (dry run)" if p["dry_run"] else ""),
            p["metric"],
            f"{p['opens_at'][:16]} .. {p['closes_at'][:16]}".replace("T", " "),
            _limits(p["submission_limit"]),
            p["counts"],
            p["visible"],
            f"{p['public_fraction']:.0%}",
        )
    console.print(table)


@app.command("close")
def close(slug: str, phase: str, hub: str = HubOption, token: str | None = TokenOption) -> None:
    """End a phase's window now: its running submissions stop as at a deadline and the
    final ranking is frozen once they have."""
    with hub_client(hub, token) as client:
        shown = checked(client.post(f"{API}/{slug}/phases/{phase}/close"))
    console.print(f"phase {phase}: {shown['state']}")


@app.command("publish")
def publish(slug: str, phase: str, hub: str = HubOption, token: str | None = TokenOption) -> None:
    """Show a closed phase's final ranking to the teams (and, if public, to everyone)."""
    with hub_client(hub, token) as client:
        shown = checked(client.post(f"{API}/{slug}/phases/{phase}/publish"))
    console.print(f"phase {phase}: {shown['state']}")
