"""A team's key rotated and a team deleted (issue 20), through `recoghub provider ...`
against a live hub on SQLite and PostgreSQL."""

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.builders import ADMIN_TOKEN, admin_headers, bearer, register_team
from tests.runs.api_builders import LABELS, seed_dataset, start_run
from tests.servers import LiveServer

runner = CliRunner()


def recoghub(hub: LiveServer, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["provider", *args, "--hub", hub.url, "--token", ADMIN_TOKEN])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_a_rotated_key_replaces_the_old_one_at_once(hub: LiveServer) -> None:
    with httpx.Client(base_url=hub.url, timeout=30) as c:
        team = register_team(c, ["https://recog.example.org"], name="Owls")
        assert c.get("/api/v1/whoami", headers=bearer(team.api_key)).status_code == 200

        code, out = recoghub(hub, "rotate-key", team.provider_guid, "--json")
        assert code == 0, out
        new_key = json.loads(out)["api_key"]
        assert new_key != team.api_key
        assert c.get("/api/v1/whoami", headers=bearer(team.api_key)).status_code == 401
        me = c.get("/api/v1/whoami", headers=bearer(new_key))
        assert me.status_code == 200 and me.json()["provider"]["guid"] == team.provider_guid
        # Only the organizer rotates keys.
        refused = c.post(
            f"/api/v1/providers/{team.provider_guid}/rotate-key", headers=bearer(new_key)
        )
        assert refused.status_code == 403, refused.text

    code, out = recoghub(hub, "rotate-key", team.provider_guid)
    assert code == 0 and "The old key no longer works" in " ".join(out.split())


def test_a_provider_is_deleted_unless_a_run_holds_its_results(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    with httpx.Client(base_url=hub.url, headers=admin_headers(), timeout=30) as c:
        ran = register_team(c, ["http://127.0.0.1:9"], name="Ran")
        idle = register_team(c, ["http://127.0.0.1:9"], name="Idle")
        start_run(c, dataset_id, "dryrun", services=[ran.service_guid])

        code, out = recoghub(hub, "delete", ran.provider_guid, "--yes")
        assert code == 1
        said = " ".join(out.split())
        assert "409" in said and "took part in runs" in said and "disable its services" in said
        assert c.get(f"/api/v1/providers/{ran.provider_guid}").status_code == 200

        code, out = recoghub(hub, "delete", idle.provider_guid, "--yes")
        assert code == 0 and f"deleted provider Idle ({idle.provider_guid})" in out
        assert c.get(f"/api/v1/providers/{idle.provider_guid}").status_code == 404
        assert c.get(f"/api/v1/services/{idle.service_guid}").status_code == 404
        assert c.get("/api/v1/whoami", headers=bearer(idle.api_key)).status_code == 401
