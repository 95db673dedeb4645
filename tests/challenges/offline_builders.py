"""Builders for the offline submission tests (SPEC §13): datasets of either kind, the
phase's opaque ids from its download, and uploads."""

import csv
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import httpx

from tests.builders import bearer, png_bytes
from tests.challenges.builders import API


def seed(
    database_url: str,
    data_dir: Path,
    truth: dict[str, list[str]],
    *,
    name: str = "pets",
    kind: str = "classification",
) -> int:
    """A dataset as an import leaves it (rows and image files), each key with its tags."""
    from sqlalchemy.orm import Session

    from gateway.datasets.models import Dataset, DatasetImage
    from gateway.datasets.storage import image_path
    from gateway.db import make_engine

    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            dataset = Dataset(name=name, format="folder", kind=kind, images=len(truth), labels=0)
            session.add(dataset)
            session.flush()
            for position, (key, tags) in enumerate(truth.items()):
                data = png_bytes(8 + position, 8, (position * 7 % 256, 40, 90))
                sha = hashlib.sha256(data).hexdigest()
                path = image_path(data_dir, sha)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                session.add(
                    DatasetImage(
                        dataset_id=dataset.id,
                        position=position,
                        key=key,
                        truth=tags,
                        sha256=sha,
                        content_type="image/png",
                        size=len(data),
                    )
                )
            return dataset.id
    finally:
        engine.dispose()


def download(
    c: httpx.Client, key: str, slug: str = "pets-cup", phase: str = "final"
) -> zipfile.ZipFile:
    r = c.get(f"{API}/{slug}/phases/{phase}/images", headers=bearer(key))
    assert r.status_code == 200, r.text
    return zipfile.ZipFile(io.BytesIO(r.content))


def image_ids(archive: zipfile.ZipFile) -> list[str]:
    """The opaque ids of `images.csv`, in its order."""
    rows = list(csv.DictReader(io.StringIO(archive.read("images.csv").decode())))
    return [row["image_id"] for row in rows]


def upload(
    c: httpx.Client,
    key: str,
    data: bytes,
    format: str,
    *,
    slug: str = "pets-cup",
    phase: str = "final",
    raw: bool = False,
) -> httpx.Response:
    url = f"{API}/{slug}/phases/{phase}/submissions"
    if raw:
        return c.post(
            url,
            content=data,
            params={"format": format},
            headers={**bearer(key), "Content-Type": "application/octet-stream"},
        )
    return c.post(
        url,
        files={"file": ("predictions", data)},
        data={"format": format},
        headers=bearer(key),
    )


def scores_of(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["state"] == "scored", answer
    return dict(answer["scores"])
