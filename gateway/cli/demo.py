"""`recoghub demo`: the whole main job on the embedded default, in under a minute.

It makes a labelled dataset whose labels follow from the pixels (the dominant colour),
starts a hub on SQLite in a temporary folder and four sample recognizers: three behind
HTTP endpoints (accurate, slow, and one that answers badly now and then) and a fourth
team's that connects out to the hub (a team behind a firewall, SPEC §10), registers them, runs a dry
run through the real API, and prints the leaderboard; with --keep it keeps the hub, its database and
the per-request logs, and says where they are.
"""

import base64
import io
import random
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from PIL import Image
from rich.console import Console

from gateway.cli.background import BackgroundServer
from gateway.cli.run_tables import leaderboard_table, progress_table
from gateway.scoring.display import board_notes
from sample_recognizer.dialout import BackgroundDialout

console = Console()


def register(app: typer.Typer) -> None:
    app.command()(demo)


def write_demo_dataset(path: Path, *, per_label: int, seed: int) -> int:
    """A Clickture TSV (`label \\t key \\t base64 JPEG`) of colour images; returns its size."""
    from sample_recognizer.backends.demo import PALETTE, make_demo_image

    rng = random.Random(seed)
    labels = [label for label in PALETTE for _ in range(per_label)]
    rng.shuffle(labels)
    with path.open("w") as out:
        for number, label in enumerate(labels):
            with Image.open(io.BytesIO(make_demo_image(label, rng))) as img:
                jpeg = io.BytesIO()
                img.convert("RGB").save(jpeg, format="JPEG", quality=92)
            data = base64.b64encode(jpeg.getvalue()).decode()
            out.write(f"{label}\tdemo-{number:05d}\t{data}\n")
    return len(labels)


# (team, knobs of its sample recognizer): accurate, slow, and wrong-format now and then.
TEAMS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("Accurate Team", {}),
    ("Slow Team", {"delay_ms": 40.0}),
    ("Flaky Team", {"bad_rate": 0.08}),
)
# A team behind a firewall: its recognizer opens no port and connects out to the hub.
FIREWALLED_TEAM = "Firewalled Team"
CONNECT_WAIT_S = 30.0


def demo(
    keep: bool = typer.Option(False, "--keep", help="Leave hub and recognizers running."),
    per_label: int = typer.Option(24, help="Images per label in the generated dataset."),
    seed: int = typer.Option(2016, help="Seed of the dataset and the run order."),
) -> None:
    """Run a complete dry run on a generated dataset and print the leaderboard."""
    from gateway.app import create_app
    from gateway.config import Settings
    from sample_recognizer.app import RecognizerConfig, create_recognizer_app

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="recoghub-demo-"))
    token = "ra_demo_" + secrets.token_urlsafe(16)
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'hub.db'}",
        data_dir=workdir / "data",
        admin_token=token,
        request_timeout_s=5.0,
        retry_backoff_s=0.05,
        # The demo's recognizers listen on loopback, which the endpoint policy refuses
        # unless allowed (SPEC §9).
        endpoint_allow="127.0.0.0/8,::1/128",
    )
    dataset_file = workdir / "demo-colours.tsv"
    images = write_demo_dataset(dataset_file, per_label=per_label, seed=seed)
    console.print(f"[bold]RecogHub demo[/bold] in {workdir}")
    console.print(f"generated {images} labelled images -> {dataset_file.name}")

    servers: list[BackgroundServer] = []
    dialout: BackgroundDialout | None = None
    try:
        recognizers = []
        for _, knobs in TEAMS:
            config = RecognizerConfig(backend="demo", seed=seed, **knobs)
            recognizers.append(BackgroundServer(create_recognizer_app(config)).start())
        servers.extend(recognizers)
        hub = BackgroundServer(create_app(settings), settings=settings).start()
        servers.append(hub)
        console.print(
            f"hub at {hub.url}; {len(recognizers) + 1} recognizers: {len(recognizers)} at "
            f"{', '.join(r.url for r in recognizers)}, and 1 that connects out to the hub"
        )

        with httpx.Client(
            base_url=hub.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            for (team, _), recognizer in zip(TEAMS, recognizers, strict=True):
                provider = _ok(client.post("/api/v1/providers", json={"name": team}))
                _ok(
                    client.post(
                        "/api/v1/services",
                        json={
                            "provider_guid": provider["guid"],
                            "name": f"{team.split()[0].lower()}-colours",
                            "endpoints": [recognizer.url],
                        },
                    )
                )
            dialout = _connect_out(client, hub.url, seed)
            dataset = _ok(
                client.post(
                    "/api/v1/datasets",
                    json={"name": "demo-colours", "format": "clickture", "path": str(dataset_file)},
                )
            )
            console.print(
                f"imported dataset {dataset['name']}: {dataset['images']} images, "
                f"{dataset['labels']} labels"
            )
            run = _ok(
                client.post(
                    "/api/v1/runs",
                    json={"dataset": dataset["id"], "phase": "dryrun", "seed": seed},
                )
            )
            run = _watch(client, run["id"])
            rows = _ok(client.get(f"/api/v1/runs/{run['id']}/leaderboard"))
            console.print()
            console.print(leaderboard_table(rows, title=f"Dry run {run['id']}: leaderboard"))
            if rows:
                console.print(board_notes(rows[0]), highlight=False)
            if keep:
                logs = workdir / "results"
                logs.mkdir()
                for row in rows:
                    target = logs / f"{row['service_name']}.jsonl"
                    response = client.get(
                        f"/api/v1/runs/{run['id']}/results",
                        params={"service": row["service_guid"], "format": "jsonl"},
                    )
                    target.write_bytes(response.content)
                console.print(
                    f"per-request logs: {logs}/<service>.jsonl; database: {workdir / 'hub.db'}"
                )
        console.print(f"demo finished in {time.monotonic() - started:.1f}s")
        if not keep:
            console.print(f"removed {workdir} (--keep keeps the database and per-request logs)")
        else:
            console.print(
                f"\n[bold]--keep:[/bold] hub at {hub.url} (dashboard at {hub.url}/), admin token "
                f"{token}\nexport RECOGHUB_HUB={hub.url} RECOGHUB_ADMIN_TOKEN={token}\n"
                "Press Ctrl-C to stop."
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if dialout is not None:
            dialout.stop()
        for server in reversed(servers):
            server.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _connect_out(client: httpx.Client, hub_url: str, seed: int) -> BackgroundDialout:
    """Register the firewalled team's service with no endpoint, and start its recognizer
    connected out to the hub (`recoghub-recognizer --connect`, in a thread here)."""
    from sample_recognizer.app import Recognizer, RecognizerConfig
    from sample_recognizer.backends import make_backend
    from sample_recognizer.dialout import DialoutClient

    provider = _ok(client.post("/api/v1/providers", json={"name": FIREWALLED_TEAM}))
    service = _ok(
        client.post(
            "/api/v1/services",
            json={"provider_guid": provider["guid"], "name": "firewalled-colours"},
        )
    )
    config = RecognizerConfig(backend="demo", seed=seed, secret=service["signing_secret"])
    dialout = BackgroundDialout(
        DialoutClient(
            hub=hub_url,
            service_guid=service["guid"],
            api_key=provider["api_key"],
            recognizer=Recognizer(config, make_backend(config)),
            instance="firewalled-demo",
        )
    ).start()
    deadline = time.monotonic() + CONNECT_WAIT_S
    while dialout.client.connected < 1:
        if dialout.error is not None or time.monotonic() > deadline:
            console.print(
                f"[red]demo failed:[/red] the recognizer did not connect: {dialout.error}"
            )
            raise typer.Exit(1)
        time.sleep(0.02)
    console.print(f"{FIREWALLED_TEAM}'s recognizer opened no port: it connected out to the hub")
    return dialout


def _ok(response: httpx.Response) -> Any:
    if not response.is_success:
        console.print(
            f"[red]demo failed:[/red] {response.request.method} {response.request.url} "
            f"-> {response.status_code} {response.text}"
        )
        raise typer.Exit(1)
    return response.json()


def _watch(client: httpx.Client, run_id: int) -> dict[str, Any]:
    from rich.live import Live

    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            run: dict[str, Any] = _ok(client.get(f"/api/v1/runs/{run_id}"))
            live.update(progress_table(run))
            if run["state"] in ("completed", "cancelled", "failed"):
                return run
            time.sleep(0.25)
