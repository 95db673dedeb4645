"""README.md's "The organizer's day" block, run with bash as pasted against a live hub,
from registration to a published evaluation, on SQLite and PostgreSQL.

The commands come from README.md itself, so the README and this test cannot drift. Only
what must differ here is substituted, each substitution checked to still apply: the venv
activation (the test's venv is on PATH), the hub's port (one the OS gives), the team's
URL (a live sample recognizer), `/data` (this test's folder) and, for PostgreSQL, the
database URL. Endpoints on loopback are allowed by the block's own
RECOGHUB_ENDPOINT_ALLOW, as SPEC §9 asks: nothing is set from outside.
"""

import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

from gateway.cli.demo import write_demo_dataset
from gateway.db import is_sqlite
from sample_recognizer.app import RecognizerConfig, create_recognizer_app
from sample_recognizer.backends.demo import PALETTE, make_demo_image
from tests.servers import live_server

README = Path(__file__).resolve().parent.parent / "README.md"
STEP = "@@step"
# Bounds that only stop a hung test; nothing asserts on time.
SCRIPT_TIMEOUT_S = 300.0


def organizer_block() -> list[str]:
    """The shell lines of the organizer's section (the first sh block after its heading)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The organizer's day") :]
    block = re.search(r"^```sh\n(.*?)^```", section, re.M | re.S)
    assert block, "the organizer's section has no sh block"
    return [line for line in block[1].splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_datasets(data: Path) -> int:
    """`data/dev.tsv` (Clickture) and `data/test/<label>/<file>`; returns the test size."""
    data.mkdir(parents=True)
    write_demo_dataset(data / "dev.tsv", per_label=2, seed=7)
    rng = random.Random(11)
    images = 0
    for label in PALETTE:
        folder = data / "test" / label
        folder.mkdir(parents=True)
        for n in range(2):
            with Image.open(io.BytesIO(make_demo_image(label, rng))) as img:
                img.convert("RGB").save(folder / f"{n}.jpg", format="JPEG", quality=92)
            images += 1
    return images


def script(lines: list[str], substitutions: dict[str, str]) -> str:
    """The block with each line followed by a marker carrying its exit status."""
    text = "\n".join(lines)
    for old, new in substitutions.items():
        assert old in text, f"README's organizer block no longer has {old!r}"
        text = text.replace(old, new)
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        out.append(line)
        # On a line of its own: the command's last line may lack its newline.
        out.append(f'rc=$?; printf "\\n{STEP} {n} rc=%d\\n" "$rc"')
    # Read the final state back as JSON, with the block's own settings.
    out.append("recoghub run show 2 --json > final-run.json")
    out.append("recoghub run leaderboard 2 --json > final-board.json")
    return "\n".join(out) + "\n"


def stop_group(pgid: int) -> None:
    """Stop the process group this test started (bash and the hub it left running)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    bound = time.monotonic() + 30
    while time.monotonic() < bound:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(pgid, signal.SIGKILL)


def test_the_organizers_day_runs_as_pasted(database_url: str, tmp_path: Path) -> None:
    lines = organizer_block()
    test_images = write_datasets(tmp_path / "data")
    port = free_port()
    venv_bin = Path(sys.executable).parent
    with live_server(create_recognizer_app(RecognizerConfig(backend="demo"))) as team_a:
        substitutions = {
            "make venv && . .venv/bin/activate": f'export PATH="{venv_bin}:$PATH"',
            "--host 0.0.0.0 --port 8000": f"--host 127.0.0.1 --port {port}",
            "http://127.0.0.1:8000": f"http://127.0.0.1:{port}",
            "http://team-a:8080": team_a.url,
            " /data/": f" {tmp_path / 'data'}/",
        }
        if not is_sqlite(database_url):
            substitutions["sqlite:///./recoghub.db"] = database_url
        # No RECOGHUB_* from outside: the block's own exports (RECOGHUB_ENDPOINT_ALLOW for
        # the local team too) must be enough, as on a fresh clone.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECOGHUB_")}
        log = tmp_path / "organizer.log"
        with log.open("wb") as out:
            bash = subprocess.Popen(
                ["bash", "-c", script(lines, substitutions)],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            bash.wait(timeout=SCRIPT_TIMEOUT_S)
            output = log.read_text(encoding="utf-8", errors="replace")
            statuses = dict(re.findall(rf"^{STEP} (\d+) rc=(\d+)$", output, re.M))
            assert len(statuses) == len(lines), output
            for n, line in enumerate(lines, start=1):
                assert statuses[str(n)] == "0", f"step {n} failed: {line}\n{output}"
            run: dict[str, Any] = json.loads((tmp_path / "final-run.json").read_text())
            board: list[dict[str, Any]] = json.loads((tmp_path / "final-board.json").read_text())
        finally:
            stop_group(bash.pid)

    # Registration -> dry run -> published evaluation, as the block promises.
    assert (run["phase"], run["state"], run["published"]) == ("evaluation", "completed", True)
    assert run["deadline"] is not None and run["stopped_at_deadline"] is False
    assert run["metric"] == "top1" and run["dataset"] == "test"
    (row,) = board
    assert (row["provider_name"], row["service_name"], row["status"]) == (
        "Team A",
        "dogs",
        "passed",
    )
    assert row["images"] == test_images and row["outcomes"]["ok"] == test_images
    assert row["top1"] == 1.0  # the demo recognizer knows every colour
    # The dry run's exports landed where the block said.
    assert len((tmp_path / "a.csv").read_text().splitlines()) > 1
    assert "labels" in (tmp_path / "all.csv").read_text().splitlines()[0]
    assert "Team A / dogs" in output  # the leaderboards printed as tables
