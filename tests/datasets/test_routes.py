"""The datasets API on a live hub: path imports, uploads, errors and who may call."""

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.auth import hash_token
from gateway.db import make_engine, make_session_factory, transaction
from gateway.registry.models import Provider
from tests.builders import admin_headers, bearer
from tests.datasets.sources import (
    b64,
    clickture_lines,
    distinct_png,
    folder_tree,
    matching_source,
    tar_of,
    write_lines,
    zip_of,
)
from tests.servers import LiveServer

# Imports and the dataset API: no test here dispatches a run.
pytestmark = pytest.mark.api_only

API = "/api/v1/datasets"


@pytest.fixture
def client(hub: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url, headers=admin_headers(), timeout=30) as c:
        yield c


@pytest.fixture
def sqlite_client(sqlite_hub: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sqlite_hub.url, headers=admin_headers(), timeout=30) as c:
        yield c


def test_path_import_then_list_and_show(client: httpx.Client, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "dogs.tsv", clickture_lines(5))
    r = client.post(API, json={"name": "dogs", "format": "clickture", "path": str(source)})
    assert r.status_code == 201, r.text
    created = r.json()
    assert {k: created[k] for k in ("name", "format", "kind", "images", "labels", "skipped")} == {
        "name": "dogs",
        "format": "clickture",
        "kind": "classification",
        "images": 5,
        "labels": 3,
        "skipped": [],
    }
    listed = client.get(API).json()
    assert [(d["id"], d["name"], d["images"]) for d in listed] == [(created["id"], "dogs", 5)]
    shown = client.get(f"{API}/{created['id']}").json()
    assert (shown["name"], shown["labels"]) == ("dogs", 3)
    missing = client.get(f"{API}/{created['id'] + 100}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_upload_of_a_clickture_file(client: httpx.Client) -> None:
    body = "".join(line + "\n" for line in clickture_lines(4)).encode()
    r = client.post(
        API, data={"name": "dogs", "format": "clickture"}, files={"file": ("dogs.tsv", body)}
    )
    assert r.status_code == 201, r.text
    assert (r.json()["images"], r.json()["labels"]) == (4, 3)


def test_upload_of_a_zipped_folder(sqlite_client: httpx.Client, tmp_path: Path) -> None:
    root = folder_tree(tmp_path / "inet", {"cat": 2, "dog": 3})
    archive = zip_of(root, tmp_path / "inet.zip", prefix="inet/")
    with archive.open("rb") as f:
        r = sqlite_client.post(
            API, data={"name": "inet", "format": "folder"}, files={"file": ("inet.zip", f)}
        )
    assert r.status_code == 201, r.text
    assert (r.json()["images"], r.json()["labels"], r.json()["format"]) == (5, 2, "folder")


def test_upload_of_a_matching_tar_with_its_truth(
    sqlite_client: httpx.Client, tmp_path: Path
) -> None:
    queries, truth = matching_source(tmp_path)
    archive = tar_of(queries, tmp_path / "queries.tar.gz")
    with archive.open("rb") as images, truth.open("rb") as csv:
        r = sqlite_client.post(
            API,
            data={"name": "isc", "format": "matching"},
            files={"file": ("queries.tar.gz", images), "truth": ("truth.csv", csv)},
        )
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["images"], r.json()["labels"]) == ("matching", 4, 3)


def test_upload_of_a_tsv_with_its_column_map(sqlite_client: httpx.Client) -> None:
    body = "".join(
        f"{key}\t{b64(distinct_png(i))}\t{label}\textra-{i}\n"
        for i, (key, label) in enumerate([("a", "x|y"), ("b", "y")])
    ).encode()
    r = sqlite_client.post(
        API,
        data={
            "name": "faces",
            "format": "tsv",
            "key_column": "0",
            "label_column": ["2", "3"],
            "image_column": "1",
            "label_separator": "|",
        },
        files={"file": ("faces.tsv", body)},
    )
    assert r.status_code == 201, r.text
    # labels: x, y, extra-0, extra-1
    assert (r.json()["images"], r.json()["labels"]) == (2, 4)


def test_a_bad_line_is_422_naming_the_line(sqlite_client: httpx.Client, tmp_path: Path) -> None:
    lines = clickture_lines(3)
    lines[1] = "beagle\tkey-1\tno base64 here!"
    source = write_lines(tmp_path / "dogs.tsv", lines)
    r = sqlite_client.post(API, json={"name": "dogs", "format": "clickture", "path": str(source)})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_input"
    assert r.json()["detail"].startswith("line 2: column 3 is not valid base64")
    assert sqlite_client.get(API).json() == []

    r = sqlite_client.post(
        API,
        data={"name": "dogs", "format": "clickture", "skip_bad": "true"},
        files={"file": ("dogs.tsv", source.read_bytes())},
    )
    assert r.status_code == 201, r.text
    assert r.json()["images"] == 2
    assert r.json()["skipped_total"] == 1
    assert r.json()["skipped"] == [
        {"line": 2, "where": "line 2", "reason": "column 3 is not valid base64"}
    ]


def test_a_taken_name_is_409(sqlite_client: httpx.Client, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "dogs.tsv", clickture_lines(2))
    body = {"name": "dogs", "format": "clickture", "path": str(source)}
    assert sqlite_client.post(API, json=body).status_code == 201
    r = sqlite_client.post(API, json=body)
    assert r.status_code == 409
    assert r.json()["code"] == "conflict"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"name": "d", "format": "tsv", "path": "/x"}, "format tsv needs key_column"),
        ({"name": "d", "format": "clickture", "path": "/x", "key_column": 1}, "only apply"),
        ({"name": "d", "format": "gif", "path": "/x"}, "format:"),
        ({"name": "d", "format": "clickture"}, "path is required"),
        ({"name": "d", "format": "folder", "path": "/no/such/dir"}, "does not exist"),
        ({"name": "d", "format": "matching", "path": "/tmp"}, "needs the truth CSV"),
    ],
)
def test_a_bad_request_is_422_saying_why(
    sqlite_client: httpx.Client, body: dict[str, object], detail: str
) -> None:
    r = sqlite_client.post(API, json=body)
    assert r.status_code == 422
    assert detail in r.json()["detail"]


def add_provider(database_url: str) -> str:
    key = "rk_" + secrets.token_urlsafe(16)
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as session:
        session.add(Provider(guid=str(uuid.uuid4()), name="team", api_key_hash=hash_token(key)))
    engine.dispose()
    return key


def test_only_the_organizer_may_touch_datasets(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "dogs.tsv", clickture_lines(2))
    body = {"name": "dogs", "format": "clickture", "path": str(source)}
    provider = bearer(add_provider(database_url))
    with httpx.Client(base_url=hub.url, timeout=30) as c:
        created = c.post(API, json=body, headers=admin_headers())
        assert created.status_code == 201
        one = f"{API}/{created.json()['id']}"
        for headers, status in (({}, 401), (provider, 403)):
            assert c.post(API, json={**body, "name": "x"}, headers=headers).status_code == status
            assert c.get(one, headers=headers).status_code == status
        assert c.get(API).status_code == 401
        # A provider lists only the datasets open to team dry runs: none yet.
        assert c.get(API, headers=provider).json() == []
        upload = c.post(
            API,
            data={"name": "y", "format": "clickture"},
            files={"file": ("d.tsv", source.read_bytes())},
            headers=provider,
        )
        assert upload.status_code == 403
        assert [d["name"] for d in c.get(API, headers=admin_headers()).json()] == ["dogs"]
