"""Prediction files refused through the route (SPEC §13): every refusal a 422 naming the
line or array and what was expected, nothing counted, nothing kept; and the byte cap
(RECOGHUB_SUBMISSION_MAX_BYTES) applied before a file is read whole."""

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from tests.builders import bearer, hub_settings, register_team
from tests.challenges.builders import API, create_challenge, phase_body
from tests.challenges.offline_builders import download, image_ids, seed, upload
from tests.servers import LiveServer, live_server

PETS = {"img-a": ["cat"], "img-b": ["cat"], "img-c": ["dog"], "img-d": ["bird"]}


def _made(c: httpx.Client, key: str) -> int:
    phase = c.get(f"{API}/pets-cup/phases/final", headers=bearer(key)).json()
    return int(phase["yours"]["made"])


def test_malformed_files_are_refused_with_their_line_and_not_counted(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", phase_body(kind="offline", submission_limit={"total": 1}))
        a, b, _, _ = image_ids(download(c, alpha.api_key))
        cases: list[tuple[str, bytes, str, int | None, str | None]] = [
            ("recoghub-tsv", b"nope\tcat:1\n", "unknown_id", 1, None),
            ("recoghub-tsv", f"{a}\tcat:1\n{a}\tdog:1\n".encode(), "repeated_id", 2, None),
            ("recoghub-tsv", f"{a}\tcat:1\n{b}\tcat:x\n".encode(), "bad_result", 2, None),
            ("recoghub-tsv", b"\xff\xfe\xfa\n", "not_utf8", 1, None),
            ("ilsvrc", b"cat\nzebra\n", "unknown_label", 2, None),
            ("ilsvrc", b"9\n", "index_out_of_range", 1, None),
            ("ilsvrc", b"cat dog bird cat dog bird\n", "too_many_predictions", 1, None),
            ("ilsvrc", b"cat\ncat\ncat\ncat\ncat\n", "too_many_lines", 5, None),
            ("isc-matching", b"query,reference,score\n", "bad_header", 1, None),
            (
                "isc-matching",
                f"query_id,reference_id,score\n{a},x\n".encode(),
                "column_count",
                2,
                None,
            ),
            ("isc-descriptors", b"not an archive at all", "not_a_container", None, None),
            ("tsv", b"x\n", "unknown_format", None, None),
        ]
        for format, data, kind, line, array in cases:
            r = upload(c, alpha.api_key, data, format)
            assert r.status_code == 422, (format, data, r.text)
            body = r.json()
            assert body["code"] == "file_rejected", body
            assert body["rejection"]["kind"] == kind, (data, body)
            assert body["rejection"]["line"] == line, (data, body)
            assert body["rejection"]["array"] == array
            if line is not None:
                assert f"line {line}" in body["detail"]
            assert body["rejection"]["expected"]
        assert _made(c, alpha.api_key) == 0
        listed = c.get(f"{API}/pets-cup/phases/final/submissions", headers=bearer(alpha.api_key))
        assert listed.json() == []
        # The limit (total 1) is whole: a good file still counts.
        r = upload(c, alpha.api_key, b"cat\n", "ilsvrc")
        assert r.status_code == 201, r.text
    kept = list((tmp_path / "data" / "submissions").iterdir())
    assert kept == []  # refused uploads are deleted, the scored one too


@pytest.fixture
def small_cap_hub(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = hub_settings(database_url, tmp_path / "data", submission_max_bytes=1000)
    with live_server(create_app(settings)) as server:
        yield server


def test_a_file_of_cap_plus_one_bytes_is_refused_before_it_is_read_whole(
    small_cap_hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=small_cap_hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", phase_body(kind="offline"))
        # Declared: refused on the Content-Length.
        r = upload(c, alpha.api_key, b"c" * 1001, "ilsvrc", raw=True)
        assert r.status_code == 413 and "1000 bytes" in r.json()["detail"], r.text
        # Multipart of the same: refused on its length too.
        r = upload(c, alpha.api_key, b"c" * 1001, "ilsvrc")
        assert r.status_code == 413, r.text

        # Not declared (chunked): counted as it comes, refused at the byte past the cap.
        def chunks() -> Iterator[bytes]:
            yield b"cat\n" * 200
            yield b"cat\n" * 200

        r = c.post(
            f"{API}/pets-cup/phases/final/submissions",
            content=chunks(),
            params={"format": "ilsvrc"},
            headers={**bearer(alpha.api_key), "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 413, r.text
        assert "RECOGHUB_SUBMISSION_MAX_BYTES" in r.json()["detail"]
        assert _made(c, alpha.api_key) == 0
        # Exactly the cap is taken.
        r = upload(c, alpha.api_key, b"cat\n" + b"\n" * 996, "ilsvrc", raw=True)
        assert r.status_code == 201, r.text
    assert list((tmp_path / "data" / "submissions").iterdir()) == []


def test_the_default_cap_refuses_a_declared_1_gib_plus_one_without_reading_it(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", phase_body(kind="offline"))
    host, port = hub.url.removeprefix("http://").split(":")
    head = (
        f"POST {API}/pets-cup/phases/final/submissions?format=ilsvrc HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {alpha.api_key}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {1024**3 + 1}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())  # and not one byte of the body
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"1073741824 bytes" in answer


def test_a_descriptor_file_not_read_within_the_time_limit_is_refused_and_not_counted(
    database_url: str, tmp_path: Path
) -> None:
    """The child reading a descriptor file is killed at the limit (here far below a
    child's start-up, so every descriptor file is past it)."""
    settings = hub_settings(database_url, tmp_path / "data", submission_check_timeout_s=0.01)
    with live_server(create_app(settings)) as hub:
        seed(database_url, tmp_path / "data", PETS)
        with httpx.Client(base_url=hub.url, timeout=60) as c:
            alpha = register_team(c, [], name="alpha")
            create_challenge(c, "pets-cup", phase_body(kind="offline"))
            r = upload(c, alpha.api_key, b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "isc-descriptors")
            assert r.status_code == 422, r.text
            assert r.json()["rejection"]["kind"] == "timed_out"
            assert "RECOGHUB_SUBMISSION_CHECK_TIMEOUT_S" in r.json()["detail"]
            assert _made(c, alpha.api_key) == 0
