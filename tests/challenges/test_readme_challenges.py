"""README.md's three challenge files (IRC, ILSVRC, ISC), applied as written with
`recoghub challenge apply`: created once, unchanged when applied again, and unchanged
when their export is applied."""

import json
import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.builders import ADMIN_TOKEN
from tests.runs.api_builders import LABELS, seed_dataset
from tests.servers import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"


def challenge_files() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Challenges and phases") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"^```yaml\n(.*?)^```", section, re.M | re.S)


def recoghub(hub: LiveServer, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--hub", hub.url, "--token", ADMIN_TOKEN])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_readme_challenges_apply_as_written(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    files = challenge_files()
    assert [yaml.safe_load(f)["slug"] for f in files] == ["irc-2016", "ilsvrc-2015", "isc-2021"]
    names = {p["dataset"] for f in files for p in yaml.safe_load(f)["phases"]}
    for name in sorted(names):
        seed_dataset(database_url, tmp_path / "data", LABELS, name=name)
    for n, text in enumerate(files):
        slug = yaml.safe_load(text)["slug"]
        path = tmp_path / f"challenge-{n}.yaml"
        path.write_text(text, encoding="utf-8")
        assert "created challenge" in recoghub(hub, "challenge", "apply", str(path))
        assert recoghub(hub, "challenge", "apply", str(path)).strip() == (
            f"challenge {slug}: no changes"
        )
        exported = tmp_path / f"export-{n}.yaml"
        result = CliRunner().invoke(
            app,
            [
                "challenge",
                "export",
                slug,
                "-o",
                str(exported),
                "--hub",
                hub.url,
                "--token",
                ADMIN_TOKEN,
            ],
        )
        assert result.exit_code == 0, result.output
        again = recoghub(hub, "challenge", "apply", str(exported))
        assert again.strip() == f"challenge {slug}: no changes"
        shown = json.loads(recoghub(hub, "challenge", "show", slug, "--json"))
        # Their windows are past: with nothing running they closed by themselves.
        assert [(p["name"], p["state"]) for p in shown["phases"]] == [
            (p["name"], "closed") for p in yaml.safe_load(text)["phases"]
        ]
