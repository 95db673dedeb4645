"""`recoghub dataset ...` against a live hub."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.builders import ADMIN_TOKEN
from tests.datasets.sources import clickture_lines, folder_tree, matching_source, write_lines
from tests.servers import LiveServer

# Imports and the dataset commands: no test here dispatches a run.
pytestmark = pytest.mark.api_only

Invoke = Callable[..., Result]


@pytest.fixture
def run(sqlite_hub: LiveServer) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(
            app,
            ["dataset", *args, "--hub", sqlite_hub.url, "--token", ADMIN_TOKEN],
            env={"COLUMNS": "200"},
        )

    return invoke


def test_import_by_path_then_list_and_show(run: Invoke, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "dogs.tsv", clickture_lines(4))
    result = run("import", "dogs", str(source), "--format", "clickture")
    assert result.exit_code == 0, result.output
    assert "dogs" in result.output and "clickture" in result.output

    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    [listed] = json.loads(result.stdout)
    assert (listed["name"], listed["images"], listed["labels"]) == ("dogs", 4, 3)

    result = run("show", str(listed["id"]), "--json")
    assert json.loads(result.stdout)["name"] == "dogs"


def test_upload_of_a_folder_and_of_a_matching_set(run: Invoke, tmp_path: Path) -> None:
    root = folder_tree(tmp_path / "inet", {"cat": 2, "dog": 1})
    result = run("import", "inet", str(root), "--format", "folder", "--upload", "--json")
    assert result.exit_code == 0, result.output
    assert (json.loads(result.stdout)["images"], json.loads(result.stdout)["labels"]) == (3, 2)

    queries, truth = matching_source(tmp_path / "isc")
    result = run(
        "import", "isc", str(queries), "-f", "matching", "--truth", str(truth), "--upload", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "matching"


def test_skip_bad_lists_the_skipped_lines(run: Invoke, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "dogs.tsv", [*clickture_lines(2), "broken"])
    result = run("import", "dogs", str(source), "--format", "clickture", "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "1 bad lines skipped" in result.output
    assert "line 3" in result.output


def test_a_bad_line_fails_with_one_clear_line(run: Invoke, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "dogs.tsv", [*clickture_lines(2), "broken"])
    result = run("import", "dogs", str(source), "--format", "clickture", "--upload")
    assert result.exit_code == 1
    assert "422" in result.stderr
    assert "line 3: expected 3 tab-separated columns" in result.stderr
    assert "Traceback" not in result.output


def test_an_unreachable_hub_is_one_clear_line(
    tmp_path: Path, refused_url: Callable[[], str]
) -> None:
    source = write_lines(tmp_path / "dogs.tsv", clickture_lines(1))
    result = CliRunner().invoke(
        app, ["dataset", "import", "d", str(source), "-f", "clickture", "--hub", refused_url()]
    )
    assert result.exit_code == 1
    assert "cannot reach the hub" in result.stderr


def test_rename_open_close_and_delete(run: Invoke, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "dogs.tsv", clickture_lines(2))
    assert run("import", "dogs", str(source), "-f", "clickture").exit_code == 0
    assert run("import", "cats", str(source), "-f", "clickture").exit_code == 0

    result = run("rename", "dogs", "dogs-dev")
    assert result.exit_code == 0 and "'dogs-dev'" in result.output
    result = run("rename", "dogs-dev", "cats")
    assert result.exit_code == 1 and "409" in result.output and "cats" in result.output
    result = run("open", "dogs-dev", "--json")
    assert json.loads(result.stdout)["open_to_teams"] is True
    assert "open" in run("list").output
    result = run("close", "1", "--json")
    assert json.loads(result.stdout)["open_to_teams"] is False

    result = run("delete", "cats", "--yes")
    assert result.exit_code == 0, result.output
    assert run("delete", "cats", "--yes").exit_code == 1  # no dataset named cats any more
    assert run("delete", "dogs-dev").exit_code == 1  # not confirmed (no terminal)
    assert [d["name"] for d in json.loads(run("list", "--json").stdout)] == ["dogs-dev"]


def test_a_folder_import_names_the_files_it_did_not_import(run: Invoke, tmp_path: Path) -> None:
    root = folder_tree(tmp_path / "test", {"cat": 1})
    (root / "cat" / "a.webp").write_bytes(b"RIFF....WEBP")
    (root / "cat" / "b.bmp").write_bytes(b"BM")
    result = run("import", "test", str(root), "--format", "folder")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "ignored 2 files that are not .jpg, .jpeg or .png: cat/a.webp, cat/b.bmp" in said

    result = run("import", "again", str(root), "--format", "folder", "--json")
    body = json.loads(result.stdout)
    assert (body["images"], body["ignored_total"]) == (1, 2)
    assert body["ignored_files"] == ["cat/a.webp", "cat/b.bmp"]
    # An upload packs only the images: the CLI says which files stay behind.
    result = run("import", "sent", str(root), "--format", "folder", "--upload")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert "ignored 2 files that are not .jpg, .jpeg or .png: cat/a.webp, cat/b.bmp" in said

    only_webp = tmp_path / "webp"
    (only_webp / "cat").mkdir(parents=True)
    (only_webp / "cat" / "a.webp").write_bytes(b"RIFF....WEBP")
    result = run("import", "none", str(only_webp), "--format", "folder")
    assert result.exit_code == 1
    assert "1 files are not .jpg, .jpeg or .png (e.g. cat/a.webp)" in " ".join(
        result.stderr.split()
    )
