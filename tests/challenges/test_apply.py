"""`recoghub challenge apply` (SPEC §12): idempotent, prints each change, and refuses,
naming the field, a change that would alter a scored submission."""

from pathlib import Path

import httpx
import yaml
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.builders import ADMIN_TOKEN, register_team
from tests.challenges.builders import phase_body, submit
from tests.runs.api_builders import CAT_DOG, LABELS, recognizers, seed_dataset, wait_for
from tests.servers import LiveServer


def apply(hub: LiveServer, path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["challenge", "apply", str(path), "--hub", hub.url, "--token", ADMIN_TOKEN]
    )
    return result.exit_code, result.output


def test_apply_twice_changes_nothing_and_a_refused_change_names_its_field(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed_dataset(database_url, tmp_path / "data", LABELS, name="pets")
    seed_dataset(database_url, tmp_path / "data", LABELS, name="more-pets")
    file = {
        "slug": "pets-cup",
        "title": "Pets cup",
        "providers": "all",
        "phases": [phase_body(submission_limit={"per_day": 2})],
    }
    path = tmp_path / "pets.yaml"
    path.write_text(yaml.safe_dump(file), encoding="utf-8")
    assert apply(hub, path) == (0, "created challenge pets-cup with 1 phases\n")
    assert apply(hub, path) == (0, "challenge pets-cup: no changes\n")

    # A change before any submission is applied and printed.
    file["phases"][0]["metric"] = "top1"
    file["title"] = "Pets cup 2026"
    path.write_text(yaml.safe_dump(file), encoding="utf-8")
    code, out = apply(hub, path)
    assert code == 0
    assert out.splitlines() == [
        'challenge pets-cup: title: "Pets cup" -> "Pets cup 2026"',
        'phase pets-cup/final: metric: "top5" -> "top1"',
    ]

    with recognizers(CAT_DOG) as (ra,), httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [ra.url], name="alpha")
        made = submit(c, alpha.api_key, alpha.service_guid)
        assert made.status_code == 201, made.text
        wait_for(c, made.json()["run_id"], {"completed"})
    for field, value in (("dataset", "more-pets"), ("metric", "top5"), ("public_fraction", 0.5)):
        changed = {**file, "phases": [{**file["phases"][0], field: value}]}
        path.write_text(yaml.safe_dump(changed), encoding="utf-8")
        code, out = apply(hub, path)
        assert code == 1
        assert f"phase final: {field}: cannot change" in " ".join(out.split()), out
    # What does not touch a score still applies: the limit.
    limit = {**file, "phases": [{**file["phases"][0], "submission_limit": {"per_day": 3}}]}
    path.write_text(yaml.safe_dump(limit), encoding="utf-8")
    assert apply(hub, path) == (0, "phase pets-cup/final: per_day: 2 -> 3\n")

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**file, "phases": [{**file["phases"][0], "counts": "most"}]}))
    code, out = apply(hub, bad)
    assert code == 1 and "phases.0.counts" in out

    # The organizer's phase controls.
    for command, state in (("close", "closed"), ("publish", "published")):
        result = CliRunner().invoke(
            app,
            ["challenge", command, "pets-cup", "final", "--hub", hub.url, "--token", ADMIN_TOKEN],
        )
        assert result.exit_code == 0 and result.output == f"phase final: {state}\n", result.output
