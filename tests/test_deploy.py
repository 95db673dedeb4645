"""The files in deploy/ are what an operator runs as they are: they use only commands and
settings that exist, compose.yaml follows the Compose Specification, and the Dockerfile,
compose services and systemd units keep the rules deploy/README.md promises (non-root
image with a writable state directory, healthchecks, restart policies, grace periods,
secrets from files, migrations once, sandboxed units). Docker cannot run here; systemd's
own checker runs when `systemd-analyze` is installed, Caddy's when `caddy` is."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from gateway.cli.main import app
from gateway.config import Settings
from gateway.file_limit import fit_caps

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
# Variables read outside Settings: the sample recognizer's secret, and the CLIs' defaults.
OTHER_VARIABLES = {"RECOGHUB_RECOGNIZER_SECRET", "RECOGHUB_HUB", "RECOGHUB_API_KEY"}
HUB_IMAGE = "recoghub:latest"
PING = "/api/v1/ping"


def deploy_text() -> str:
    paths = [p for p in DEPLOY.rglob("*") if p.is_file()]
    assert len(paths) >= 7, f"deploy/ looks incomplete: {paths}"
    return "\n".join(p.read_text() for p in paths)


def known_variables() -> set[str]:
    return {f"RECOGHUB_{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES


def recoghub_commands() -> set[str]:
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", None)
    assert commands, "recoghub has no sub-commands"
    return set(commands)


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def hub_services() -> dict[str, dict[str, Any]]:
    """The services that run `recoghub` (the hub image's entrypoint) itself."""
    return {
        name: s
        for name, s in services().items()
        if s.get("image") == HUB_IMAGE and "entrypoint" not in s
    }


def seconds(duration: str) -> float:
    """A Compose duration ("40s", "1m30s") in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert parts and duration, f"not a duration: {duration!r}"
    hours, minutes, secs = (float(p) if p else 0.0 for p in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def volume_mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{container path: (source, options)} of a service's short-syntax volumes."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *options = entry.split(":")
        mounts[target] = (source, ",".join(options))
    return mounts


# --- commands and settings exist ---------------------------------------------------------


def test_every_variable_in_deploy_exists() -> None:
    used = set(re.findall(r"RECOGHUB_[A-Z_]+", deploy_text()))
    assert used, "deploy/ sets no RECOGHUB_ variables"
    assert used <= known_variables(), f"unknown settings: {sorted(used - known_variables())}"


def test_every_recoghub_command_in_deploy_exists() -> None:
    text = deploy_text()
    used = set(re.findall(r"bin/recoghub ([a-z-]+)", text))
    used |= {s["command"][0] for s in hub_services().values()}
    used.add(json.loads(only("CMD").args)[0])
    assert {"serve", "worker", "migrate"} <= used
    assert used <= recoghub_commands(), f"unknown commands: {sorted(used - recoghub_commands())}"


def test_recognizer_options_in_deploy_exist() -> None:
    from sample_recognizer.main import app as recognizer_app

    command = typer.main.get_command(recognizer_app)
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    recognizer = services()["recognizer"]
    assert recognizer["entrypoint"] == ["recoghub-recognizer"]
    used = {arg for arg in recognizer["command"] if arg.startswith("--")}
    assert used <= options, f"unknown recognizer options: {sorted(used - options)}"


# --- compose.yaml ------------------------------------------------------------------------


def compose_spec_schema() -> dict[str, Any]:
    # The Compose Specification's own JSON schema (Apache-2.0, licence beside it in the
    # package), as check-jsonschema vendors it from compose-spec/compose-spec.
    vendor = files("check_jsonschema.builtin_schemas.vendor")
    assert vendor.joinpath("licenses/LICENSE.compose-spec").is_file()
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    assert schema["title"] == "Compose Specification"
    return dict(schema)


def compose_errors(document: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_follows_the_compose_specification() -> None:
    assert compose_errors(compose()) == []
    # The schema is strict enough to notice a misspelt key or a bare number duration.
    broken = compose()
    broken["services"]["worker"]["stop_grace_periode"] = "40s"
    broken["services"]["api"]["restart"] = ["always"]
    assert len(compose_errors(broken)) >= 2


def test_compose_v2_is_what_the_files_say_they_need() -> None:
    # The top-level `name:` and `service_completed_successfully` need Compose v2.
    assert "name" in compose()
    assert "Compose v2" in (DEPLOY / "compose.yaml").read_text()
    assert "Compose v2" in (DEPLOY / "README.md").read_text()


def test_every_service_is_built_or_named_and_restarts() -> None:
    assert (DEPLOY / "Dockerfile").is_file()
    for name, service in services().items():
        assert "image" in service, f"{name} names no image"
        if service["image"] == HUB_IMAGE:
            # Any service may be the first to need the hub image: each can build it.
            assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["logging"]["options"]["max-size"], f"{name}: logs grow unbounded"
        one_shot = name == "migrate"
        expected = {"on-failure"} if one_shot else {"always", "unless-stopped"}
        assert service.get("restart") in expected, f"{name}: restart {service.get('restart')}"


def test_compose_healthchecks_probe_the_database_and_the_api() -> None:
    postgres = services()["postgres"]["healthcheck"]["test"]
    assert postgres[0] == "CMD" and postgres[1] == "pg_isready"
    for name, port, path in (("api", 8000, PING), ("recognizer", 8080, "/ping")):
        check = services()[name]["healthcheck"]
        assert check["test"][:3] == ["CMD", "python", "-c"], f"{name}: {check}"
        assert f"http://127.0.0.1:{port}{path}" in check["test"][3]
        command = " ".join(services()[name]["command"])
        assert f"--port {port}" in command, f"{name} does not listen where it is probed"
        assert seconds(check["timeout"]) < seconds(check["interval"])
    # A worker serves no HTTP: the image's API probe would mark it unhealthy forever.
    assert services()["worker"]["healthcheck"] == {"disable": True}


def test_workers_get_time_to_flush_before_they_are_killed() -> None:
    worker = services()["worker"]
    lease_s = float(worker["environment"]["RECOGHUB_LEASE_S"])
    assert seconds(worker["stop_grace_period"]) >= lease_s + 10


def test_hub_containers_set_a_file_limit_the_default_caps_fit_below() -> None:
    """Docker's default file limit may be 1,024: the containers that serve or dispatch
    set their own, high enough that the hub keeps its default caps (SPEC §9)."""
    for name in ("api", "worker"):
        nofile = services()[name]["ulimits"]["nofile"]
        assert nofile["soft"] == nofile["hard"], name
        defaults = Settings()
        assert fit_caps(defaults, file_limit=nofile["hard"], listening=True) is defaults, name


def test_migrations_run_once_before_the_api_and_the_workers() -> None:
    migrate = services()["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = services()[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name


def test_secrets_come_from_files_and_reach_the_settings(tmp_path: Path) -> None:
    secrets = compose()["secrets"]
    assert secrets and all(set(s) == {"file"} for s in secrets.values()), secrets
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text()
    assert "deploy/secrets" in (ROOT / ".dockerignore").read_text().splitlines()
    for name, service in services().items():
        for key, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|TOKEN|DATABASE_URL", key):
                # Never the value itself: a file path under /run/secrets it is given.
                assert key.endswith("_FILE"), f"{name}: {key} holds a secret in the environment"
                secret = value.removeprefix("/run/secrets/")
                assert value == f"/run/secrets/{secret}" and secret in service["secrets"], key
                assert secret in secrets, f"{name}: {secret} is not a declared secret"

    # The API's environment, with its secrets where Docker would mount them, is a
    # working configuration of the hub.
    url = "postgresql+psycopg://recoghub:pw@postgres:5432/recoghub"
    (tmp_path / "database_url").write_text(url + "\n")
    (tmp_path / "admin_token").write_text("a-token\n")
    api_env = {
        # Compose's `${NAME:-default}` with NAME unset is the default.
        key: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value)).replace("/run/secrets", str(tmp_path))
        for key, value in services()["api"]["environment"].items()
    }
    settings = Settings(**{k.removeprefix("RECOGHUB_").lower(): v for k, v in api_env.items()})
    assert (settings.database_url, settings.admin_token) == (url, "a-token")
    assert settings.embedded_worker is False
    postgres = services()["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in postgres


def test_api_and_workers_share_the_images_and_the_import_folder_is_mounted() -> None:
    data_dir = Path(services()["worker"]["environment"]["RECOGHUB_DATA_DIR"])
    sources = set()
    for name in ("api", "worker"):
        mounts = volume_mounts(services()[name])
        holding = [t for t in mounts if data_dir.is_relative_to(t)]
        assert holding, f"{name}: {data_dir} is on no volume"
        sources.add(mounts[holding[0]][0])
    assert len(sources) == 1, f"api and workers see different image folders: {sources}"

    # A path import names a folder the API reads: mounted read-only, at the same path as
    # on the host, so the organizer's command works from either side.
    imports = [
        (source, target)
        for target, (source, options) in volume_mounts(services()["api"]).items()
        if options == "ro" and source.startswith("/")
    ]
    assert [source == target for source, target in imports] == [True], imports
    example = re.search(r"dataset import \S+ --format folder (\S+)", deploy_readme())
    assert example and Path(example[1]).is_relative_to(imports[0][1]), example


def deploy_readme() -> str:
    return (DEPLOY / "README.md").read_text()


def test_readme_commands_exist() -> None:
    """The organizer's commands in deploy/README.md (`hub …` runs `recoghub …` in the
    API container) name existing command groups and commands."""
    group = typer.main.get_command(app)
    code = "\n".join(re.findall(r"^ *```sh\n(.*?)^ *```", deploy_readme(), re.M | re.S))
    used = re.findall(r"(?:^|\s)(?:hub|recoghub) ([a-z]+) ([a-z]+)", code, re.M)
    assert len(used) >= 4
    for name, sub in used:
        command = getattr(group, "commands", {}).get(name)
        assert command is not None, f"recoghub {name}"
        subcommands = getattr(command, "commands", None)
        if subcommands is not None:
            assert sub in subcommands, f"recoghub {name} {sub}"


# --- Dockerfile and .dockerignore --------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    name: str
    args: str


def dockerfile() -> list[Instruction]:
    """The instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    instructions = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, args = line.strip().partition(" ")
            instructions.append(Instruction(name.upper(), " ".join(args.split())))
    return instructions


def only(name: str) -> Instruction:
    found = [i for i in dockerfile() if i.name == name]
    assert len(found) == 1, f"expected one {name}: {found}"
    return found[0]


def env_of_image() -> dict[str, str]:
    pairs = re.findall(r"(\w+)=(\S+)", " ".join(i.args for i in dockerfile() if i.name == "ENV"))
    return dict(pairs)


def test_image_runs_as_a_pinned_non_root_user() -> None:
    user = only("USER").args
    assert re.fullmatch(r"\d+:\d+", user), f"USER {user}: numeric UID:GID, so it is pinned"
    uid, gid = (int(n) for n in user.split(":"))
    assert uid >= 1000 and gid >= 1000
    setup = " ".join(i.args for i in dockerfile() if i.name == "RUN")
    assert f"groupadd --system --gid {gid} " in setup
    assert f"useradd --system --uid {uid} --gid {gid} " in setup
    steps = [i.name for i in dockerfile()]
    assert steps.index("USER") > max(i for i, s in enumerate(steps) if s == "RUN")


def test_image_default_database_and_data_are_in_a_directory_the_user_owns() -> None:
    env = env_of_image()
    database = Path(env["RECOGHUB_DATABASE_URL"].removeprefix("sqlite:///"))
    data = Path(env["RECOGHUB_DATA_DIR"])
    assert env["RECOGHUB_DATABASE_URL"].startswith("sqlite:////"), "an absolute path"
    state = database.parent
    assert data.is_relative_to(state)
    uid, gid = only("USER").args.split(":")
    made = re.search(rf"install -d -o {uid} -g {gid} -m 07[57]0 ((?:/\S+ ?)+)", dockerfile_run())
    assert made and {str(state), str(data)} <= set(made[1].split()), made
    assert json.loads(only("VOLUME").args) == [str(state)]
    assert [i.args for i in dockerfile() if i.name == "WORKDIR"][-1] == str(state)


def dockerfile_run() -> str:
    return " ".join(i.args for i in dockerfile() if i.name == "RUN")


def test_image_healthcheck_pings_the_api_without_curl() -> None:
    check = only("HEALTHCHECK").args
    assert "--interval=" in check and "--timeout=" in check
    command = json.loads(check.partition("CMD ")[2])
    assert command[:2] == ["python", "-c"]
    assert f"http://127.0.0.1:8000{PING}" in command[2]
    assert json.loads(only("CMD").args)[-2:] == ["--port", "8000"]


def run_probe(
    command: list[str], port_from: str, base_url: str, path: str | None = None
) -> tuple[int, str]:
    """Run a healthcheck's `python -c` probe against `base_url` instead of the
    container's own port (and, if given, `path` instead of the probed one)."""
    code = command[-1].replace(port_from, base_url)
    if path is not None:
        code = re.sub(r"(http://[^/']+)/[^']*", rf"\g<1>{path}", code)
    assert command[-3:-1] == ["python", "-c"]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr


def test_healthchecks_pass_on_a_live_hub_and_fail_on_an_error_answer(sqlite_hub: Any) -> None:
    probes = {
        "image": json.loads(only("HEALTHCHECK").args.partition("CMD ")[2]),
        "compose api": services()["api"]["healthcheck"]["test"],
    }
    for name, command in probes.items():
        assert run_probe(command, "http://127.0.0.1:8000", sqlite_hub.url) == (0, ""), name
        # A hub that answers an error status is unhealthy (urllib raises on >= 400).
        code, err = run_probe(command, "http://127.0.0.1:8000", sqlite_hub.url, "/nope")
        assert code != 0 and "HTTP Error 404" in err, (name, err)


def test_image_installs_dependencies_before_copying_the_source(tmp_path: Path) -> None:
    steps = dockerfile()
    copies = [(n, i) for n, i in enumerate(steps) if i.name == "COPY"]
    first_copy, source_copy = copies[0], next(c for c in copies if "gateway" in c[1].args)
    assert first_copy[1].args == "pyproject.toml ./", "only the dependency list comes first"
    install = next(n for n, i in enumerate(steps) if i.name == "RUN" and "pip install -r" in i.args)
    assert first_copy[0] < install < source_copy[0]
    assert any(
        i.name == "RUN" and "pip install --no-deps ." in i.args for i in steps[source_copy[0] :]
    )

    # The extraction really writes the runtime dependencies (shell quoting included).
    extract = steps[install].args.split(" && ")[0]
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run(
        ["sh", "-c", extract], cwd=tmp_path, env={**os.environ, "PATH": path}, check=True
    )
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert (tmp_path / "requirements.txt").read_text().splitlines() == declared


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: `**` spans folders, `*` and `?` do
    not cross `/`, `[...]` is a character class, the whole path must match."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Left out of the build context: the path or a folder holding it matches."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    regexes = [dockerignore_regex(p) for p in patterns]
    return any(r.fullmatch(prefix) for r in regexes for prefix in prefixes)


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "re-inclusions need a real matcher"
    left_out = [
        ".git/HEAD",
        ".venv/bin/python",
        "recoghub.db",
        "recoghub.db-wal",
        "hub/nested.db",
        "recoghub-data/images/ab/abcdef",
        "gateway/__pycache__/app.cpython-311.pyc",
        "gateway/runs/stale.pyc",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        ".hypothesis/examples/x",
        "deploy/secrets/database_url",
        "recoghub.egg-info/PKG-INFO",
        "tests/conftest.py",
    ]
    sent = ["pyproject.toml", "README.md", "gateway/app.py", "gateway/web/static/app.js"]
    sent += ["sample_recognizer/main.py", "cmdline_tool/main.py", "deploy/Dockerfile"]
    assert [p for p in left_out if not dockerignore_excludes(p, patterns)] == []
    assert [p for p in sent if dockerignore_excludes(p, patterns)] == []
    copied = re.findall(r"^COPY (\S+)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert all(not dockerignore_excludes(c, patterns) for c in copied), copied


# --- systemd units -----------------------------------------------------------------------


def unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """{section: [(key, value), ...]}; systemd allows a key more than once."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key.strip(), value.strip()))
    return sections


def values(name: str, key: str, section: str = "Service") -> list[str]:
    return [v for k, v in unit(name)[section] if k == key]


def one(name: str, key: str, section: str = "Service") -> str:
    found = values(name, key, section)
    assert len(found) == 1, f"{name}: {key}= {found}"
    return found[0]


UNIT_NAMES = ["recoghub-api.service", "recoghub-migrate.service", "recoghub-worker@.service"]
HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0027",
    "StateDirectory": "recoghub",
    "WorkingDirectory": "/var/lib/recoghub",
    "User": "recoghub",
}


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_units_are_sandboxed_and_keep_state_in_their_state_directory(name: str) -> None:
    assert {k: one(name, k) for k in HARDENING} == HARDENING
    assert "@system-service" in values(name, "SystemCallFilter")
    env = dict(v.split("=", 1) for v in values(name, "Environment"))
    credentials = dict(v.split(":", 1) for v in values(name, "LoadCredential"))
    # Secrets arrive as credentials the hub reads through RECOGHUB_*_FILE.
    for key, path in env.items():
        if key.endswith("_FILE"):
            assert path.startswith("%d/") and path.removeprefix("%d/") in credentials, key
    assert env["RECOGHUB_DATABASE_URL_FILE"] == "%d/database_url"
    assert one(name, "EnvironmentFile") == "/etc/recoghub/recoghub.env"
    exec_start = one(name, "ExecStart").split()
    assert exec_start[0] == "/opt/recoghub/.venv/bin/recoghub"
    assert exec_start[1] in recoghub_commands()


def test_migrate_runs_once_retries_and_gates_the_others() -> None:
    name = "recoghub-migrate.service"
    assert one(name, "Type") == "oneshot"
    assert one(name, "RemainAfterExit") == "yes"
    assert one(name, "Restart") == "on-failure"
    assert float(one(name, "RestartSec")) > 0
    for other in ("recoghub-api.service", "recoghub-worker@.service"):
        assert name in values(other, "Requires", "Unit"), other
        assert name in " ".join(values(other, "After", "Unit")), other


@pytest.mark.parametrize("name", ["recoghub-api.service", "recoghub-worker@.service"])
def test_long_running_units_restart_without_tripping_the_start_limit(name: str) -> None:
    assert one(name, "Restart") in {"always", "on-failure"}
    # systemd's default start limit is 5 starts in 10 s; past it the unit stays down.
    assert float(one(name, "RestartSec")) * 5 > 10


@pytest.mark.parametrize("name", ["recoghub-api.service", "recoghub-worker@.service"])
def test_long_running_units_set_a_file_limit_the_default_caps_fit_below(name: str) -> None:
    """systemd's default soft file limit is 1,024: the units set theirs (`N` or
    `SOFT:HARD`); the hub raises its soft limit to the hard one and keeps its default
    caps below it (SPEC §9)."""
    soft, _, hard = one(name, "LimitNOFILE").partition(":")
    defaults = Settings()
    assert fit_caps(defaults, file_limit=int(hard or soft), listening=True) is defaults


def test_workers_get_time_to_flush_when_stopped() -> None:
    name = "recoghub-worker@.service"
    assert one(name, "KillSignal") == "SIGTERM"
    lease_s = Settings.model_fields["lease_s"].default
    assert float(one(name, "TimeoutStopSec")) >= lease_s + 10


def test_the_api_listens_only_for_the_local_reverse_proxy() -> None:
    exec_start = one("recoghub-api.service", "ExecStart")
    assert "--host 127.0.0.1" in exec_start


def test_env_file_example_is_a_valid_configuration_and_says_its_mode(tmp_path: Path) -> None:
    example = (UNITS / "recoghub.env.example").read_text()
    assert "0600" in example and "0600" in deploy_readme()
    pairs = dict(
        line.split("=", 1)
        for line in example.splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert not {"RECOGHUB_DATABASE_URL", "RECOGHUB_ADMIN_TOKEN"} & set(pairs), (
        "secrets go to the credential files, not the environment"
    )
    settings = Settings(**{k.removeprefix("RECOGHUB_").lower(): v for k, v in pairs.items()})
    assert settings.data_dir == Path("/var/lib/recoghub/data")


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return tool


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    """`systemd-analyze verify` in a scratch root holding the host's stock units, the
    three units and a stand-in for the recoghub executable (it checks that ExecStart
    exists); any warning (an unknown key, a bad value) fails."""
    tool = systemd_analyze()
    stock = next(
        (
            p
            for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
            if (p / "sysinit.target").is_file()
        ),
        None,
    )
    if stock is None:
        pytest.skip("no stock systemd units on this host to verify against")
    shutil.copytree(stock, tmp_path / "usr/lib/systemd/system", symlinks=True)
    target = tmp_path / "etc/systemd/system"
    target.mkdir(parents=True)
    for name in UNIT_NAMES:
        shutil.copy(UNITS / name, target)
    executable = tmp_path / "opt/recoghub/.venv/bin/recoghub"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)

    done = subprocess.run(
        [tool, "verify", f"--root={tmp_path}", *UNIT_NAMES],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_systemd_analyze_security_rates_the_units_below_5(name: str) -> None:
    tool = systemd_analyze()
    done = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(UNITS / name)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "--offline" in done.stderr:
        pytest.skip(f"this systemd-analyze has no --offline: {done.stderr.strip()}")
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert score, done.stdout + done.stderr
    assert float(score[1]) < 5, done.stdout


# --- TLS reverse proxy -------------------------------------------------------------------


def test_caddyfile_proxies_to_the_api_and_hides_metrics() -> None:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed (apt-get install caddy)")
    env = {**os.environ, "HUB_DOMAIN": "hub.example.org"}
    env.pop("HUB_UPSTREAM", None)
    done = subprocess.run(
        [caddy, "adapt", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    (server,) = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]
    (site,) = server["routes"]
    assert site["match"] == [{"host": ["hub.example.org"]}]
    routes = site["handle"][0]["routes"]
    hidden = [r for r in routes if r.get("match") == [{"path": ["/metrics"]}]]
    assert hidden and hidden[0]["handle"][0]["status_code"] == 404
    proxy = [h for r in routes for h in r["handle"] if h["handler"] == "reverse_proxy"]
    # The upstream is the compose service the API runs as, on the port it listens on.
    assert proxy[0]["upstreams"] == [{"dial": "api:8000"}]
    assert "api" in services() and "--port 8000" in " ".join(services()["api"]["command"])
