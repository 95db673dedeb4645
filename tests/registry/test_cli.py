"""`recoghub provider …` and `recoghub service …` against a live hub."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from gateway.cli import registry
from tests.builders import ADMIN_TOKEN
from tests.servers import LiveServer

# The registry's commands: no test here dispatches a run.
pytestmark = pytest.mark.api_only

app = typer.Typer()
app.add_typer(registry.providers, name="provider")
app.add_typer(registry.services, name="service")


Recoghub = Callable[..., Result]


@pytest.fixture
def recoghub(sqlite_hub: LiveServer) -> Recoghub:
    """Run a command against the live hub, as the organizer unless `token` says otherwise."""
    runner = CliRunner()

    def run(*args: str, token: str = ADMIN_TOKEN) -> Result:
        return runner.invoke(app, [*args, "--hub", sqlite_hub.url, "--token", token])

    return run


def test_the_organizer_adds_and_lists_providers_and_services(recoghub: Recoghub) -> None:
    added = recoghub("provider", "add", "Dog Team", "--contact", "dogs@example.org")
    assert added.exit_code == 0, added.output
    assert "shown only now" in added.stdout

    as_json = recoghub("provider", "add", "Cat Team", "--json")
    assert as_json.exit_code == 0, as_json.output
    cat = json.loads(as_json.stdout)
    assert cat["api_key"].startswith("rk_")
    assert cat["api_key"] not in recoghub("provider", "list", "--json").stdout

    providers = json.loads(recoghub("provider", "list", "--json").stdout)
    assert [p["name"] for p in providers] == ["Dog Team", "Cat Team"]
    dog = providers[0]
    assert dog["guid"] in added.stdout
    assert "Dog Team" in recoghub("provider", "list").stdout

    service = recoghub(
        "service", "add", "--provider", dog["guid"], "--name", "breeds",
        "--endpoint", "http://recog-1.example.org:8080", "--endpoint", "http://recog-2.example.org:8080",
        "--max-concurrency", "8", "--json",
    )  # fmt: skip
    assert service.exit_code == 0, service.output
    created = json.loads(service.stdout)
    assert created["signing_secret"]
    assert created["endpoints"] == [
        "http://recog-1.example.org:8080",
        "http://recog-2.example.org:8080",
    ]
    assert created["max_concurrency"] == 8

    human = recoghub(
        "service", "add", "--provider", cat["guid"], "--name", "whiskers",
        "--endpoint", "http://recog-3.example.org:8080",
    )  # fmt: skip
    assert human.exit_code == 0, human.output
    assert "signing secret" in human.stdout

    listed = json.loads(recoghub("service", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["breeds", "whiskers"]
    assert "signing_secret" not in listed[0]
    only_cat = json.loads(recoghub("service", "list", "--provider", cat["guid"], "--json").stdout)
    assert [s["name"] for s in only_cat] == ["whiskers"]
    table = recoghub("service", "list")
    assert "breeds" in table.stdout and "whiskers" in table.stdout


def test_failures_are_one_clear_error_not_a_traceback(recoghub: Recoghub) -> None:
    bad_token = recoghub("provider", "list", token="ra_wrong")
    provider = json.loads(recoghub("provider", "add", "Team", "--json").stdout)
    bad_endpoint = recoghub(
        "service", "add", "--provider", provider["guid"], "--name", "x", "--endpoint", "ftp://x"
    )
    wrong_kind = recoghub(
        "service", "add", "--provider", "not-a-guid", "--name", "x", "--endpoint", "http://x:1"
    )

    for result, says in [
        (bad_token, "hub answered 401 unauthorized: unknown token"),
        (bad_endpoint, "endpoint 'ftp://x' must start with http:// or https://"),
        (wrong_kind, "no provider with GUID not-a-guid"),
    ]:
        assert result.exit_code == 1
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
        text = " ".join(result.stderr.split())
        assert text.startswith("error:"), text
        assert says in text


def test_the_organizer_points_a_service_at_a_model_server(
    recoghub: Recoghub, tmp_path: Path
) -> None:
    provider = json.loads(recoghub("provider", "add", "Triton Team", "--json").stdout)
    added = recoghub(
        "service", "add", "--provider", provider["guid"], "--name", "densenet",
        "--endpoint", "http://127.0.0.1:8000", "--protocol", "oip-v2",
        "--option", "model=densenet_onnx", "--option", "output=fc6_1", "-o", "top_k=3",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "oip-v2 (densenet_onnx)" in added.stdout
    guid = next(s["guid"] for s in json.loads(recoghub("service", "list", "--json").stdout))

    shown = recoghub("service", "show", guid)
    assert shown.exit_code == 0, shown.output
    assert "model=densenet_onnx output=fc6_1 top_k=3" in shown.stdout

    labels = tmp_path / "labels.txt"
    labels.write_text("tabby\ntiger cat\n\nlynx\n", encoding="utf-8")
    changed = recoghub(
        "service", "update", guid, "-o", "model=densenet_onnx",
        "-o", "output_format=probabilities", "--labels-file", str(labels), "--json",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.stdout)["protocol_options"] == {
        "model": "densenet_onnx",
        "output_format": "probabilities",
        "labels": ["tabby", "tiger cat", "lynx"],
    }

    refused = recoghub("service", "update", guid, "--protocol", "torchserve")
    assert refused.exit_code == 1
    assert "does not use protocol_options labels, output_format" in refused.output
    torch = recoghub("service", "update", guid, "--protocol", "torchserve", "-o", "model=resnet")
    assert torch.exit_code == 0, torch.output
    assert "torchserve (resnet)" in recoghub("service", "list").stdout
    back = recoghub("service", "update", guid, "--protocol", "v1", "--json")
    assert json.loads(back.stdout)["protocol_options"] == {}
    bad = recoghub("service", "update", guid, "-o", "top_k=three")
    assert bad.exit_code == 1 and "top_k=three is not a whole number" in bad.output
