"""Issue 10: the organizer's whole-run results export streams in flat memory.

    .venv/bin/python benchmarks/bench_export.py [--small 100000] [--large 1000000]
        [--format csv] [--postgres URL]

For each size a database is filled straight through SQL with a completed run of one
service whose N items are recorded (no recognizer, no dispatch: only the export is
measured), a fresh `recoghub serve` is started on it and `GET /api/v1/runs/1/results`
(no `service`: every column) is read to the end. The server's peak RSS is its VmHWM
(/proc/<pid>/status) read after the export. Target: large / small <= 1.2.
"""

import argparse
import json
import subprocess
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import cast

import httpx
from hub_setup import bench_database, hub_settings, insert_image_rows, worker_env
from processes import free_port, recoghub_command
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from gateway.datasets.models import Dataset, DatasetImage
from gateway.db import make_engine, utcnow
from gateway.migrate import upgrade
from gateway.registry.models import Provider, Service
from gateway.runs.models import Run, RunService, WorkItem

CHUNK = 10_000
LABELS = ("red", "green", "blue", "cyan", "gray")


def fill(database_url: str, n: int) -> None:
    """A dataset of `n` images (rows only) and a completed run with all `n` recorded."""
    engine = make_engine(database_url)
    upgrade(engine)
    now = utcnow()
    try:
        with Session(engine) as session, session.begin():
            provider = Provider(guid=str(uuid.uuid4()), name="bench", api_key_hash=uuid.uuid4().hex)
            session.add(provider)
            session.flush()
            svc = Service(
                guid=str(uuid.uuid4()), provider_id=provider.id, name="svc", signing_secret="x"
            )
            dataset = Dataset(name="bench", format="folder", images=n, labels=len(LABELS))
            session.add_all([svc, dataset])
            session.flush()
            run = Run(
                dataset_id=dataset.id,
                phase="evaluation",
                metric="top5",
                state="completed",
                seed=1,
                timeout_s=10.0,
                max_attempts=1,
                started_at=now,
                finished_at=now,
            )
            session.add(run)
            session.flush()
            member = RunService(
                run_id=run.id, service_id=svc.id, position=0, max_concurrency=1, status="passed"
            )
            session.add(member)
            session.flush()
            items = cast(Table, WorkItem.__table__)
            insert_image_rows(session, dataset_id=dataset.id, count=n, labels=LABELS, chunk=CHUNK)
            first_image = session.query(DatasetImage.id).order_by(DatasetImage.id).first()
            assert first_image is not None
            for start in range(0, n, CHUNK):
                stop = min(n, start + CHUNK)
                session.execute(
                    insert(items),
                    [
                        {
                            "run_id": run.id,
                            "run_service_id": member.id,
                            "image_id": first_image.id + i,
                            "seq": i,
                            "state": "done",
                            "outcome": "ok",
                            "attempts": 1,
                            "latency_ms": 1.0 + i % 50,
                            "request_id": f"{i:032x}",
                            "raw": "red:0.9;green:0.5",
                            "tags": [["red", 0.9], ["green", 0.5]],
                            "finished_at": now + timedelta(milliseconds=i),
                        }
                        for i in range(start, stop)
                    ],
                )
    finally:
        engine.dispose()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def export_peak(n: int, fmt: str, postgres_url: str | None) -> tuple[float, int, float]:
    """Peak RSS (MiB) of a server that exported `n` rows, the rows read, seconds."""
    with tempfile.TemporaryDirectory(prefix="recoghub-bench-export-") as tmp:
        workdir = Path(tmp)
        with bench_database(workdir, postgres_url) as database_url:
            fill(database_url, n)
            settings = hub_settings(database_url, workdir)
            port = free_port()
            server = subprocess.Popen(
                [*recoghub_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env={**worker_env(settings), "RECOGHUB_EMBEDDED_WORKER": "false"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                headers = {"Authorization": f"Bearer {settings.admin_token}"}
                deadline = time.monotonic() + 60
                while True:
                    try:
                        httpx.get(f"{url}/api/v1/ping", timeout=1).raise_for_status()
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            raise
                        time.sleep(0.2)
                rows, began = 0, time.monotonic()
                with httpx.stream(
                    "GET",
                    f"{url}/api/v1/runs/1/results",
                    params={"format": fmt},
                    headers=headers,
                    timeout=600,
                ) as response:
                    response.raise_for_status()
                    for _ in response.iter_lines():
                        rows += 1
                seconds = time.monotonic() - began
                return peak_rss_mib(server.pid), rows, seconds
            finally:
                server.terminate()
                server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument("--postgres", metavar="URL", help="use this PostgreSQL server")
    args = parser.parse_args()
    results = {}
    for n in (args.small, args.large):
        peak, rows, seconds = export_peak(n, args.format, args.postgres)
        results[n] = peak
        print(f"{n:>9} rows: {rows} lines in {seconds:.1f} s, server peak RSS {peak:.1f} MiB")
    ratio = results[args.large] / results[args.small]
    print(json.dumps({"small_mib": results[args.small], "large_mib": results[args.large]}))
    print(f"large / small = {ratio:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
