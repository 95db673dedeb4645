"""`recoghub-cli` against a live hub and live sample recognizers: what a team sees."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cmdline_tool.main import app
from tests.builders import Team, jpeg_bytes, png_bytes
from tests.cli.team_tool import (
    CLEAN_ENV,
    as_team,
    cli,
    hub_with,
    lines,
    recog,
    recognizer,
    team_on,
)
from tests.servers import LiveServer

# The team tool's recog and check reach the API process only: no test here dispatches a
# run. Its ping and errors: test_team_errors.py.
pytestmark = pytest.mark.api_only


# check


def test_check_shows_each_instance(sqlite_hub: LiveServer, up: LiveServer) -> None:
    team = team_on(sqlite_hub, [up.url])
    code, output = cli(
        "check", "--hub", sqlite_hub.url, "--service", team.service_guid, "--key", team.api_key
    )
    assert code == 0, output
    assert up.url in output and "passed the check" in output
    assert f"service {team.service_guid} (recoghub-v1)" in output

    code, output = cli(
        "check",
        "--json",
        env={
            "RECOGHUB_HUB": sqlite_hub.url,
            "RECOGHUB_SERVICE": team.service_guid,
            "RECOGHUB_API_KEY": team.api_key,
        },
    )
    assert code == 0
    document = json.loads(output)
    assert document["ok"] is True and document["protocol"] == "recoghub-v1"
    assert document["instances"][0]["instance"] == up.url


def test_check_prints_scores_and_latencies_rounded(sqlite_hub: LiveServer) -> None:
    with recognizer(answer="cat:0.918273645546372819;dog:0.1") as precise:
        team = team_on(sqlite_hub, [precise.url])
        code, output = cli(
            "check", "--hub", sqlite_hub.url, "--service", team.service_guid, "--key", team.api_key
        )
    assert code == 0, output
    assert "cat 0.918, dog 0.100" in " ".join(output.split()), output
    assert "0.91827" not in output
    assert re.search(r"\b\d+\.\d ms\b", output), output  # ping and probe: one decimal
    assert not re.search(r"\d+\.\d{2,} ms", output), output


def test_check_with_a_down_instance_names_it(
    sqlite_hub: LiveServer, up: LiveServer, refused_url: Callable[[], str]
) -> None:
    down = refused_url()
    team = team_on(sqlite_hub, [up.url, down])
    code, output = cli(
        "check", "--hub", sqlite_hub.url, "--service", team.service_guid, "--key", team.api_key
    )
    assert code == 1
    error = [line for line in lines(output) if line.startswith("error:")]
    assert len(error) == 1
    assert f"1 of 2 instance(s) of service {team.service_guid} failed" in error[0]
    assert down in error[0] and "reachable from the hub host" in error[0]


def test_check_of_a_recognizer_with_the_wrong_secret_says_to_start_it_with_the_right_one(
    sqlite_hub: LiveServer,
) -> None:
    with recognizer(secret="not-the-services-secret") as wrong:
        team = team_on(sqlite_hub, [wrong.url])
        code, output = cli(
            "check", "--hub", sqlite_hub.url, "--service", team.service_guid, "--key", team.api_key
        )
        _, as_json = cli(
            "check",
            "--json",
            "--hub",
            sqlite_hub.url,
            "--service",
            team.service_guid,
            "--key",
            team.api_key,
        )
    assert code == 1
    [error] = [line for line in lines(output) if line.startswith("error:")]
    assert (
        "the recognizer rejected the hub's signature: start it with this service's signing "
        "secret (`--secret` / its environment variable)"
    ) in error
    assert "RECOGHUB_RECOGNIZER_SECRET" in error
    [instance] = json.loads(as_json.splitlines()[0])["instances"]
    assert instance["reachable"] is False  # the table's "up" column: no


# recog


def test_recog_one_file_shows_its_tags(sqlite_hub: LiveServer, up: LiveServer, image: Path) -> None:
    team = team_on(sqlite_hub, [up.url])
    code, output = recog(sqlite_hub, team, image)
    assert code == 0, output
    [line] = lines(output)
    assert line.startswith(str(image))
    assert "cat 0.900, dog 0.100" in line and " ms" in line


def test_recog_needs_no_provider_the_key_names_it(
    sqlite_hub: LiveServer, up: LiveServer, image: Path
) -> None:
    team = team_on(sqlite_hub, [up.url])
    base = ("recog", "--hub", sqlite_hub.url, "--service", team.service_guid)
    code, output = cli(*base, "--key", team.api_key, str(image))
    assert code == 0, output
    assert "cat 0.900, dog 0.100" in output
    # A wrong key is still named before any image is sent.
    code, output = cli(*base, "--key", "rk_" + "0" * 40, str(image))
    assert code == 1, output
    [line] = lines(output)
    assert "key" in line.lower() and "cat 0.900" not in line, line


def test_recog_of_a_directory_sums_up(
    sqlite_hub: LiveServer, up: LiveServer, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    (folder / "more").mkdir(parents=True)
    for n in range(3):
        (folder / f"p{n}.png").write_bytes(png_bytes(color=(n * 40, 10, 10)))
    (folder / "more" / "j.JPG").write_bytes(jpeg_bytes())
    (folder / "notes.txt").write_text("not an image")
    team = team_on(sqlite_hub, [up.url])

    code, output = recog(sqlite_hub, team, folder, extra=("--concurrency", "3"))
    assert code == 0, output
    assert len([line for line in lines(output) if "cat 0.900" in line]) == 4
    assert "images 4: sent 4, ok 4, failed 0" in lines(output)[-1]
    assert "notes.txt" not in output

    code, output = recog(sqlite_hub, team, folder, extra=("--json",))
    assert code == 0
    documents = [json.loads(line) for line in lines(output)]
    images, summary = documents[:-1], documents[-1]
    assert sorted(Path(d["file"]).name for d in images) == ["j.JPG", "p0.png", "p1.png", "p2.png"]
    assert all(d["ok"] and d["tags"][0] == {"tag": "cat", "score": 0.9} for d in images)
    assert summary["type"] == "summary" and summary["ok"] == 4 and summary["failed"] == 0
    assert summary["latency_ms"]["p50"] is not None


def test_a_service_guid_given_as_provider_is_named(
    sqlite_hub: LiveServer, up: LiveServer, image: Path
) -> None:
    team = team_on(sqlite_hub, [up.url])
    mixed = Team(team.service_guid, team.api_key, team.service_guid, team.signing_secret)
    code, output = recog(sqlite_hub, mixed, image)
    assert code == 1
    [line] = lines(output)
    assert f"{team.service_guid} is a service GUID, not a provider GUID" in line
    assert "--provider" in line


def test_a_provider_guid_given_as_service_is_named(
    sqlite_hub: LiveServer, up: LiveServer, image: Path
) -> None:
    team = team_on(sqlite_hub, [up.url])
    mixed = Team(team.provider_guid, team.api_key, team.provider_guid, team.signing_secret)
    code, output = recog(sqlite_hub, mixed, image)
    assert code == 1
    [line] = lines(output)
    assert f"{team.provider_guid} is a provider GUID, not a service GUID" in line
    assert "--service" in line


def test_recognizer_down_says_the_hub_cannot_reach_it(
    sqlite_hub: LiveServer, image: Path, refused_url: Callable[[], str]
) -> None:
    down = refused_url()
    team = team_on(sqlite_hub, [down])
    code, output = recog(sqlite_hub, team, image)
    assert code == 1
    [line] = lines(output)
    assert f"the hub cannot reach your recognizer at {down}" in line
    assert "is it running and reachable from the hub host?" in line


def test_recognizer_too_slow_is_a_timeout(tmp_path: Path, image: Path) -> None:
    with (
        hub_with(tmp_path, request_timeout_s=0.5, max_attempts=1) as hub,
        recognizer(delay_ms=1500) as slow,
    ):
        team = team_on(hub, [slow.url])
        code, output = recog(hub, team, image)
    assert code == 1
    [line] = lines(output)
    assert "failed timeout" in line and "did not answer the hub in time" in line


def test_bad_format_shows_the_entry_and_the_raw_answer(sqlite_hub: LiveServer, image: Path) -> None:
    with recognizer(bad_rate=1.0) as bad:
        team = team_on(sqlite_hub, [bad.url])
        code, output = recog(sqlite_hub, team, image)
    assert code == 1
    [line] = lines(output)
    assert "failed bad_format" in line
    assert "entry " in line and "raw: " in line


def test_a_recognizer_with_the_wrong_secret_gets_the_hubs_signature_message(
    sqlite_hub: LiveServer, image: Path
) -> None:
    with recognizer(secret="not-the-services-secret") as wrong:
        team = team_on(sqlite_hub, [wrong.url])
        code, output = recog(sqlite_hub, team, image)
    assert code == 1
    [line] = lines(output)
    assert (
        "the recognizer rejected the hub's signature: start it with this service's signing "
        "secret (`--secret` / its environment variable)"
    ) in line
    assert "signature does not match" in line and "RECOGHUB_RECOGNIZER_SECRET" in line


def test_a_wrong_key_is_refused_with_what_to_do(
    sqlite_hub: LiveServer, up: LiveServer, image: Path
) -> None:
    team = team_on(sqlite_hub, [up.url])
    wrong = Team(team.provider_guid, "rk_not_the_key", team.service_guid, team.signing_secret)
    code, output = recog(sqlite_hub, wrong, image)
    assert code == 1
    [line] = lines(output)
    assert "the hub refused the API key" in line and "RECOGHUB_API_KEY" in line


def test_a_text_file_is_not_sent(sqlite_hub: LiveServer, up: LiveServer, tmp_path: Path) -> None:
    team = team_on(sqlite_hub, [up.url])
    text = tmp_path / "notes.png"
    text.write_text("hello")
    code, output = recog(sqlite_hub, team, text)
    assert code == 1
    [line] = lines(output)
    assert "not a JPEG or PNG image (checked here, not sent)" in line


def test_a_broken_image_is_refused_by_the_hub(
    sqlite_hub: LiveServer, up: LiveServer, tmp_path: Path
) -> None:
    team = team_on(sqlite_hub, [up.url])
    broken = tmp_path / "broken.png"
    broken.write_bytes(png_bytes()[:40])
    code, output = recog(sqlite_hub, team, broken)
    assert code == 1
    [line] = lines(output)
    assert "not_an_image" in line and "the hub says this is not an image" in line


def test_an_image_over_the_hubs_limit(tmp_path: Path, up: LiveServer) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes(400, 400))
    with hub_with(tmp_path, max_image_bytes=200) as hub:
        team = team_on(hub, [up.url])
        code, output = recog(hub, team, big)
    assert code == 1
    assert "image_too_large" in output and "send a smaller image" in output


def test_a_missing_file_fails_before_anything_is_sent(
    tmp_path: Path, refused_url: Callable[[], str]
) -> None:
    missing = tmp_path / "nope.jpg"
    code, output = cli(
        "recog", "--hub", refused_url(), "--service", "s", "--provider", "p", "--key", "k",
        str(missing),
    )  # fmt: skip
    assert code == 1
    assert lines(output) == [f"error: no such file or directory: {missing} — check the path"]


def test_a_mixed_directory_fails_only_its_bad_images(
    sqlite_hub: LiveServer, up: LiveServer, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.png").write_bytes(png_bytes())
    (folder / "fake.jpg").write_text("not really")
    team = team_on(sqlite_hub, [up.url])
    code, output = recog(sqlite_hub, team, folder, extra=("--json",))
    assert code == 1
    documents = {d.get("file"): d for d in map(json.loads, lines(output))}
    assert documents[str(folder / "good.png")]["ok"] is True
    assert documents[str(folder / "fake.jpg")]["outcome"] == "not_an_image"
    summary = documents[None]
    assert summary["sent"] == 1 and summary["outcomes"] == {"ok": 1, "not_an_image": 1}


def test_another_teams_service_is_refused_with_what_to_do(
    sqlite_hub: LiveServer, up: LiveServer, image: Path
) -> None:
    mine, theirs = team_on(sqlite_hub, [up.url]), team_on(sqlite_hub, [up.url])
    borrowed = Team(mine.provider_guid, mine.api_key, theirs.service_guid, mine.signing_secret)
    code, output = recog(sqlite_hub, borrowed, image)
    assert code == 1
    [line] = lines(output)
    assert line.startswith("error: the hub refused this to your API key")
    assert "the provider that owns the service" in line


def test_check_of_a_provider_guid_names_the_kind(sqlite_hub: LiveServer, up: LiveServer) -> None:
    team = team_on(sqlite_hub, [up.url])
    code, output = cli(
        "check", "--hub", sqlite_hub.url, "--service", team.provider_guid, "--key", team.api_key
    )
    assert code == 1
    assert lines(output) == [
        f"error: {team.provider_guid} is a provider GUID, not a service GUID — "
        "give --service your service's GUID; the organizer can tell you"
    ]


def test_recog_waits_for_the_hubs_rate_limit_and_sends_every_image(
    tmp_path: Path, up: LiveServer
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for n in range(5):
        (folder / f"p{n}.png").write_bytes(png_bytes(color=(n * 40, 10, 10)))
    # Two at once, then one a second: a batch of five must wait at least once.
    with hub_with(tmp_path, relay_rate=1.0, relay_burst=2) as hub:
        team = team_on(hub, [up.url])
        result = CliRunner().invoke(
            app,
            ["recog", *as_team(hub, team), "--concurrency", "2", "--json", str(folder)],
            env=CLEAN_ENV,
        )
    assert result.exit_code == 0, result.output
    documents = [json.loads(line) for line in lines(result.stdout)]
    assert all(d["ok"] for d in documents[:-1]) and len(documents) == 6
    assert documents[-1]["ok"] == 5 and documents[-1]["failed"] == 0
    waits = [line for line in lines(result.stderr) if "rate limit" in line]
    assert waits and all("waiting 1 s" in line for line in waits), result.stderr
    assert len(waits) < 5  # one line a pause, not one an image


def test_check_past_the_rate_limit_says_when_to_try_again(tmp_path: Path, up: LiveServer) -> None:
    with hub_with(tmp_path, check_rate=0.01, check_burst=1) as hub:
        team = team_on(hub, [up.url])
        args = ["--hub", hub.url, "--service", team.service_guid, "--key", team.api_key]
        assert cli("check", *args)[0] == 0
        code, output = cli("check", *args)
    assert code == 1
    assert "limits how often your key may do this" in output
    assert re.search(r"wait \d+ s and try again", output), output
