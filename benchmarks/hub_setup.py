"""A hub to benchmark, built through the hub's own service functions.

A migrated database (SQLite in the benchmark's temp dir, or a PostgreSQL database of its
own), a dataset of tiny distinct PNGs imported with `import_records`, one provider and
service per recognizer, `recoghub worker` processes, and the run's timing and check
read back from the database. Every process and database made here is removed by the
context manager that made it.
"""

import io
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from PIL import Image
from processes import recoghub_command, start_profilers, stop_processes
from sqlalchemy import Table, create_engine, func, insert, make_url, select, text
from sqlalchemy.orm import Session

from gateway.auth import ADMIN
from gateway.config import Settings
from gateway.datasets.importers import ImageRecord
from gateway.datasets.models import DatasetImage
from gateway.datasets.service import import_records
from gateway.datasets.storage import image_path
from gateway.db import make_engine, make_session_factory, utcnow
from gateway.dispatch.policy import endpoint_policy
from gateway.migrate import upgrade
from gateway.registry.protocols import ProtocolOptionsIn
from gateway.registry.schemas import ProviderCreate, ServiceCreate
from gateway.registry.service import create_provider, create_service
from gateway.runs.engine import store
from gateway.runs.engine.surveyor import survey_runs
from gateway.runs.models import Run, Worker, WorkItem
from gateway.runs.service import create_run, leaderboard

LABELS = ("red", "green", "blue", "cyan", "gray")


def tiny_png(number: int, *, side: int = 8) -> bytes:
    """A `side` x `side` RGB PNG whose pixels spell `number`: distinct for every number."""
    seed = number.to_bytes(8, "little")
    pixels = bytes((seed[i % 8] + i * 7) % 256 for i in range(3 * side * side))
    # The first pixels hold the number itself, so no two images collide.
    pixels = seed[:6] + pixels[6:]
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def image_records(count: int, *, side: int = 8, start: int = 0) -> Iterator[ImageRecord]:
    for number in range(start, start + count):
        yield ImageRecord(
            f"img-{number:07d}", [LABELS[number % len(LABELS)]], tiny_png(number, side=side)
        )


@contextmanager
def bench_database(workdir: Path, postgres_url: str | None) -> Iterator[str]:
    """A fresh database URL: SQLite in `workdir`, or `recoghub_bench_<random>` created on
    the PostgreSQL server of `postgres_url` and dropped (that one only) at the end."""
    if postgres_url is None:
        yield f"sqlite:///{workdir / 'hub.db'}"
        return
    server = make_url(postgres_url)
    name = f"recoghub_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# The benchmark's recognizers run on this machine: the endpoint policy must allow loopback.
LOOPBACK_ALLOWED = "127.0.0.0/8,::1/128"


def hub_settings(database_url: str, workdir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": workdir / "data",
        "admin_token": "ra_bench_" + uuid.uuid4().hex,
        "endpoint_allow": LOOPBACK_ALLOWED,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a hub process (worker or server) with these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOGHUB_")}
    env.update(
        RECOGHUB_DATABASE_URL=settings.database_url,
        RECOGHUB_DATA_DIR=str(settings.data_dir),
        RECOGHUB_ADMIN_TOKEN=settings.admin_token or "",
        RECOGHUB_ENDPOINT_ALLOW=settings.endpoint_allow,
    )
    return env


@contextmanager
def bench_hub(
    prefix: str, *, recognizers: int, sleep_ms: float = 0.0, postgres_url: str | None = None
) -> Iterator[tuple["BenchHub", list[str], Path]]:
    """A temp dir, `recognizers` fast recognizer processes and a hub database; yields the
    hub, the recognizer URLs and the temp dir, and removes them all afterwards."""
    from recognizers import fast_recognizers

    workdir = Path(tempfile.mkdtemp(prefix=f"recoghub-bench-{prefix}-"))
    try:
        with (
            fast_recognizers(recognizers, sleep_ms=sleep_ms) as urls,
            bench_database(workdir, postgres_url) as database_url,
        ):
            hub = BenchHub(hub_settings(database_url, workdir))
            try:
                yield hub, urls, workdir
            finally:
                hub.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class BenchHub:
    """The benchmark's handle on the hub's database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.sessions = make_session_factory(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        upgrade(self.engine)

    def import_images(self, name: str, count: int, *, side: int = 8) -> int:
        """Import `count` distinct tiny PNGs as dataset `name`; returns its id."""
        with self.sessions() as session:
            dataset = import_records(
                session=session,
                settings=self.settings,
                name=name,
                format="benchmark",
                kind="classification",
                records=image_records(count, side=side),
            )
            return dataset.id

    def image_files(self, dataset_id: int) -> list[Path]:
        """The stored files of the dataset's images, in dataset order."""
        with self.sessions() as session:
            shas = session.scalars(
                select(DatasetImage.sha256)
                .where(DatasetImage.dataset_id == dataset_id)
                .order_by(DatasetImage.position)
            ).all()
        return [image_path(self.settings.data_dir, sha) for sha in shas]

    def register(
        self,
        urls: Sequence[str],
        *,
        concurrency: int | None = None,
        protocol: str = "recoghub-v1",
        options: dict[str, Any] | None = None,
    ) -> list[str]:
        """One provider and one service per recognizer URL; returns the service GUIDs."""
        guids = []
        with self.sessions() as session:
            for number, url in enumerate(urls):
                provider, _ = create_provider(session, data=ProviderCreate(name=f"team-{number}"))
                service = create_service(
                    session,
                    principal=ADMIN,
                    data=ServiceCreate(
                        provider_guid=provider.guid,
                        name=f"recognizer-{number}",
                        endpoints=[url],
                        max_concurrency=concurrency,
                        protocol=protocol,  # type: ignore[arg-type]
                        protocol_options=ProtocolOptionsIn(**options) if options else None,
                    ),
                    policy=endpoint_policy(self.settings.endpoint_allow),
                )
                guids.append(service.guid)
        return guids

    def lanes_of(self, run_id: int, worker_id: str) -> list[int]:
        """Register `worker_id` as a worker and survey as it would: the run's run service
        ids, for benchmarks that call the worker's statements themselves."""
        now = utcnow()
        with self.engine.begin() as conn:
            store.register_worker(
                conn, worker_id=worker_id, host="bench", pid=0, now=now, forget_before=now
            )
            survey = survey_runs(conn, now=now, live_since=now - timedelta(seconds=30))
        return [plan.run_service_id for plan in survey.lanes if plan.run_id == run_id]

    def start_run(
        self, dataset_id: int, guids: list[str], *, concurrency: int | None = None
    ) -> int:
        with self.sessions() as session:
            run = create_run(
                session,
                settings=self.settings,
                dataset=dataset_id,
                phase="dryrun",
                service_guids=guids,
                concurrency=concurrency,
                seed=2016,
            )
            return run.id

    def live_workers(self) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Worker)) or 0)

    def run_state(self, run_id: int) -> Run:
        with self.sessions() as session:
            run = session.get(Run, run_id)
            assert run is not None
            return run

    def wait_run(
        self, run_id: int, *, workers: Sequence[subprocess.Popen[bytes]], timeout_s: float
    ) -> Run:
        """Poll (cheaply: one row, every 0.1 s) until the run is over; raises RuntimeError
        if it fails, a worker dies or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.run_state(run_id)
            if run.state == "completed":
                return run
            if run.state in ("failed", "cancelled"):
                raise RuntimeError(f"run {run_id} ended {run.state}: {run.error}")
            for proc in workers:
                if proc.poll() is not None:
                    raise RuntimeError(f"worker pid {proc.pid} exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} still {run.state} after {timeout_s:.0f}s")
            time.sleep(0.1)

    def timing(self, run_id: int) -> "RunTiming":
        """The run's span from the database: started (first claim) to the last result and
        to completed (every result committed, services scored)."""
        with self.sessions() as session:
            run = session.get(Run, run_id)
            assert run is not None and run.started_at and run.finished_at
            items, last = session.execute(
                select(func.count(), func.max(WorkItem.finished_at)).where(
                    WorkItem.run_id == run_id
                )
            ).one()
        return RunTiming(int(items), run.started_at, last, run.finished_at)

    def check_exactly_once(self, run_id: int, *, expected: int) -> str:
        """'ok' when the run holds exactly `expected` work items, each done once with
        outcome ok; otherwise what is wrong."""
        with self.sessions() as session:
            counts = session.execute(
                select(WorkItem.state, WorkItem.outcome, WorkItem.attempts, func.count())
                .where(WorkItem.run_id == run_id)
                .group_by(WorkItem.state, WorkItem.outcome, WorkItem.attempts)
            ).all()
        total = sum(c for *_, c in counts)
        good = sum(c for s, o, a, c in counts if s == "done" and o == "ok" and a == 1)
        if total == expected and good == expected:
            return f"ok ({expected} work items, each done once, outcome ok, 1 attempt)"
        rows = ", ".join(f"{s}/{o}/attempts={a}: {c}" for s, o, a, c in counts)
        return f"MISMATCH: expected {expected} done ok, found {rows}"

    def leaderboard(self, run_id: int) -> list[dict[str, object]]:
        with self.sessions() as session:
            return leaderboard(session, run_id=run_id)

    def timing_uncertainty_ms(self, run_id: int) -> float | None:
        """How late the worker's event loop ran while sending the run (SPEC §8)."""
        with self.sessions() as session:
            run = session.get(Run, run_id)
            return run.timing_uncertainty_ms if run is not None else None


@dataclass(frozen=True, slots=True)
class RunTiming:
    items: int
    started_at: datetime
    last_result_at: datetime
    finished_at: datetime

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def to_last_result(self) -> float:
        """Images/s from the first claim to the last result (the recording rate)."""
        return self.items / (self.last_result_at - self.started_at).total_seconds()

    @property
    def to_completed(self) -> float:
        """Images/s from the first claim to the run marked completed (all durable)."""
        return self.items / (self.finished_at - self.started_at).total_seconds()


@contextmanager
def worker_processes(
    hub: BenchHub,
    count: int,
    *,
    log_dir: Path,
    timeout_s: float = 60.0,
    profile_dir: Path | None = None,
    switch_interval_s: float | None = None,
    gc_freeze: bool = False,
    gc_trace: bool = False,
    profile_gil: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` `recoghub worker` processes on the hub's database, registered before this
    yields; SIGTERM (then SIGKILL) at the end. Their logs go to `log_dir/worker-N.log`.

    With `profile_dir`, py-spy (`$PY_SPY` or on PATH) samples each worker until it exits,
    writing collapsed stacks to `profile_dir/pid-<pid>.txt`."""
    env = worker_env(hub.settings) | (extra_env or {})
    procs: list[subprocess.Popen[bytes]] = []
    profilers: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for number in range(count):
            log = (log_dir / f"worker-{number}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        *recoghub_command(
                            switch_interval_s=switch_interval_s,
                            gc_freeze=gc_freeze,
                            gc_trace=gc_trace,
                        ),
                        "worker",
                        "--log-level",
                        "warning",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + timeout_s
        while hub.live_workers() < count:
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"worker exited with {proc.returncode}; see {log_dir}/worker-*.log"
                    )
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not register in time")
            time.sleep(0.05)
        if profile_dir is not None:
            profilers.extend(start_profilers(procs, profile_dir, gil=profile_gil))
        yield procs
    finally:
        stop_processes(procs)
        stop_processes(profilers, signal_first=signal.SIGINT)
        for log in logs:
            log.close()


def insert_image_rows(
    session: Session, *, dataset_id: int, count: int, labels: Sequence[str], chunk: int = 20_000
) -> None:
    """`count` image rows of `dataset_id` (no files), image i labelled labels[i % len]."""
    images = cast(Table, DatasetImage.__table__)
    for start in range(0, count, chunk):
        session.execute(
            insert(images),
            [
                {
                    "dataset_id": dataset_id,
                    "position": i,
                    "key": f"img-{i:07d}",
                    "truth": [labels[i % len(labels)]],
                    "sha256": f"{i:064x}",
                    "content_type": "image/png",
                    "size": 100,
                }
                for i in range(start, min(count, start + chunk))
            ],
        )
