"""Builders for engine tests: datasets stored as an import leaves them, services, runs,
and a recognizer whose answers, pace and concurrency the test controls."""

import asyncio
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.datasets.models import Dataset, DatasetImage
from gateway.datasets.storage import store_image
from gateway.protocol.signing import HEADER_REQUEST_ID, HEADER_SERVICE_GUID, body_digest
from gateway.registry.models import Instance, Provider, Service
from gateway.runs.models import Run, RunService, WorkItem
from tests.builders import png_bytes


@dataclass
class StoredImage:
    key: str
    truth: list[str]
    data: bytes

    @property
    def digest(self) -> str:
        return body_digest(self.data)


def make_images(
    n: int, *, label: Callable[[int], str] = lambda i: f"label{i % 3}"
) -> list[StoredImage]:
    """`n` distinct PNGs (each its own colour) with keys img000... and a true label each."""
    return [
        StoredImage(f"img{i:03d}", [label(i)], png_bytes(8, 8, (i % 256, (i * 7) % 256, i // 256)))
        for i in range(n)
    ]


def add_dataset(
    engine: Engine, data_dir: Path, images: list[StoredImage], *, name: str | None = None
) -> int:
    """Rows and files of a classification dataset; returns its id."""
    with Session(engine) as session:
        dataset = Dataset(
            name=name or f"ds-{uuid.uuid4().hex[:6]}",
            format="folder",
            kind="classification",
            images=len(images),
            labels=len({t for image in images for t in image.truth}),
        )
        session.add(dataset)
        session.flush()
        for position, image in enumerate(images):
            sha256, _ = store_image(data_dir, image.data)
            session.add(
                DatasetImage(
                    dataset_id=dataset.id,
                    position=position,
                    key=image.key,
                    truth=image.truth,
                    sha256=sha256,
                    content_type="image/png",
                    size=len(image.data),
                )
            )
        session.commit()
        return dataset.id


def add_service(
    engine: Engine, endpoints: list[str], *, name: str | None = None, max_concurrency: int = 4
) -> str:
    """A provider with one enabled service at `endpoints`; returns the service GUID."""
    name = name or f"team-{uuid.uuid4().hex[:6]}"
    with Session(engine) as session:
        provider = Provider(
            guid=str(uuid.uuid4()), name=name, api_key_hash=uuid.uuid4().hex + uuid.uuid4().hex
        )
        service = Service(
            guid=str(uuid.uuid4()),
            provider=provider,
            name=f"{name}-svc",
            max_concurrency=max_concurrency,
            signing_secret="s3cret",
            instances=[Instance(position=i, url=url) for i, url in enumerate(endpoints)],
        )
        session.add_all([provider, service])
        session.commit()
        return service.guid


def run_state(engine: Engine, run_id: int) -> str:
    with Session(engine) as session:
        return session.scalars(select(Run.state).where(Run.id == run_id)).one()


def statuses(engine: Engine, run_id: int) -> dict[str, str]:
    """Service GUID -> run service status."""
    with Session(engine) as session:
        rows = session.execute(
            select(Service.guid, RunService.status)
            .join(Service, Service.id == RunService.service_id)
            .where(RunService.run_id == run_id)
        ).all()
        return {str(row[0]): str(row[1]) for row in rows}


def item_counts(engine: Engine, run_id: int) -> dict[str, int]:
    """Work items of a run by state."""
    with Session(engine) as session:
        rows = session.execute(
            select(WorkItem.state, func.count())
            .where(WorkItem.run_id == run_id)
            .group_by(WorkItem.state)
        ).all()
        return {str(row[0]): int(row[1]) for row in rows}


def work_items(engine: Engine, run_id: int) -> list[WorkItem]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(WorkItem).where(WorkItem.run_id == run_id).order_by(WorkItem.seq)
            )
        )


@dataclass
class RecognizerLog:
    """What a test recognizer saw, read by the test thread."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    request_ids: list[str] = field(default_factory=list)
    digests: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)


def recognizer_app(
    answer: Callable[[bytes], str],
    *,
    delay_s: float | Callable[[], float] = 0.0,
    gate: threading.Event | None = None,
    status: int = 200,
) -> tuple[Starlette, RecognizerLog]:
    """A recognizer answering `answer(image)`, after `delay_s` (or what `delay_s()` says
    at each request) and, if given, once `gate` is set; it counts requests and its
    in-flight maximum, and records per service the order in which images arrived."""
    seen = RecognizerLog()

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def recognize(request: Request) -> Response:
        body = await request.body()
        with seen.lock:
            seen.requests += 1
            seen.in_flight += 1
            seen.max_in_flight = max(seen.max_in_flight, seen.in_flight)
            seen.request_ids.append(request.headers.get(HEADER_REQUEST_ID, ""))
            seen.digests[request.headers.get(HEADER_SERVICE_GUID, "")].append(body_digest(body))
        try:
            if delay := delay_s() if callable(delay_s) else delay_s:
                await asyncio.sleep(delay)
            while gate is not None and not gate.is_set():
                await asyncio.sleep(0.01)
            return PlainTextResponse(answer(body), status_code=status)
        finally:
            with seen.lock:
                seen.in_flight -= 1

    app = Starlette(routes=[Route("/ping", ping), Route("/recognize", recognize, methods=["POST"])])
    return app, seen


def answers_by_image(
    images: list[StoredImage], answers: dict[str, str], default: str = ""
) -> Callable[[bytes], str]:
    """An answer function: the result string given for each image key."""
    by_digest = {image.digest: answers.get(image.key, default) for image in images}
    return lambda body: by_digest.get(body_digest(body), default)


def as_dicts(rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in rows]
