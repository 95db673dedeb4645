"""Prediction files through the route (SPEC §13): each format accepted and scored on
hand-checked examples, the download's content, refusals that name their line and do not
count, the byte cap, and a live run beside a file on one leaderboard."""

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.builders import admin_headers, bearer, descriptors_file, register_team
from tests.challenges.builders import API, board, create_challenge, phase_body, submit
from tests.challenges.offline_builders import download, image_ids, scores_of, seed, upload
from tests.runs.api_builders import CAT_DOG, recognizers
from tests.servers import LiveServer

PETS = {"img-a": ["cat"], "img-b": ["cat"], "img-c": ["dog"], "img-d": ["bird"]}
# Queries and the references they were copied from (q3 from none).
COPIES = {"q1": ["r1"], "q2": ["r2"], "q3": []}


def _offline(**fields: object) -> dict[str, object]:
    return phase_body(kind="offline", **fields)


def test_download_holds_opaque_ids_images_csv_and_labels_never_keys(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", _offline())
        archive = download(c, alpha.api_key)
        names = archive.namelist()
        ids = image_ids(archive)
        assert len(ids) == 4 and len(set(ids)) == 4
        assert sorted(names) == sorted(
            ["images.csv", "labels.txt", *(f"images/{i}.png" for i in ids)]
        )
        assert archive.read("labels.txt").decode() == "bird\ncat\ndog\n"
        everything = b"".join(archive.read(name) for name in names if name != "labels.txt")
        for secret in (b"img-a", b"img-b", b"img-c", b"img-d", b"cat", b"dog", b"public"):
            assert secret not in everything
        # Stable for the phase: a second download names the images alike, the
        # organizer's too.
        assert image_ids(download(c, alpha.api_key)) == ids
        r = c.get(f"{API}/pets-cup/phases/final/images", headers=admin_headers())
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"


def test_a_live_only_phase_has_no_download_and_takes_no_file(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", phase_body(kind="live"))
        r = c.get(f"{API}/pets-cup/phases/final/images", headers=bearer(alpha.api_key))
        assert r.status_code == 403 and r.json()["code"] == "live_only_phase"
        r = upload(c, alpha.api_key, b"x\n", "ilsvrc")
        assert r.status_code == 403 and r.json()["code"] == "live_only_phase"


def test_ilsvrc_file_by_labels_and_indices_is_scored_and_stored_as_a_run(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", _offline(submission_limit={"total": 2}))
        download(c, alpha.api_key)
        # labels.txt: 1 bird, 2 cat, 3 dog. a: cat first (top-1); b: cat second (top-5);
        # c: "2" is cat, wrong; d left out: missed.
        r = upload(c, alpha.api_key, b"cat dog\n3 2\n2\n", "ilsvrc")
        assert r.status_code == 201, r.text
        answer = r.json()
        scores = scores_of(answer)
        assert scores["top1"] == pytest.approx(0.25)
        assert scores["top5"] == pytest.approx(0.5)
        # An order of labels has no confidence: no coverage, no µAP.
        assert scores["micro_ap"] is None and scores["coverage_at_95"] is None
        assert {k: v for k, v in scores["outcomes"].items() if v} == {"ok": 3, "missed": 1}
        assert answer["kind"] == "file" and answer["format"] == "ilsvrc"
        # Its per-image results are a run's: the organizer reads them as any run's.
        results = c.get(f"/api/v1/runs/{answer['run_id']}/results", headers=admin_headers())
        assert results.status_code == 200, results.text
        lines = [line for line in results.text.splitlines() if line.strip()]
        assert len(lines) == 4
        failures = c.get(f"/api/v1/runs/{answer['run_id']}/failures", headers=admin_headers())
        assert failures.status_code == 200, failures.text
        phase = c.get(f"{API}/pets-cup/phases/final", headers=bearer(alpha.api_key)).json()
        assert phase["yours"]["made"] == 1 and phase["yours"]["left"] == 1


def test_recoghub_tsv_file_is_scored(hub: LiveServer, database_url: str, tmp_path: Path) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", _offline())
        a, b, c_, d = image_ids(download(c, alpha.api_key))
        text = f"{a}\tcat:0.9;dog:0.5\n{b}\tdog:0.9\n{c_}\tdog:0.8\n{d}\t\n"
        r = upload(c, alpha.api_key, text.encode(), "recoghub-tsv", raw=True)
        assert r.status_code == 201, r.text
        scores = scores_of(r.json())
        assert scores["top1"] == pytest.approx(0.5)  # a and c
        assert {k: v for k, v in scores["outcomes"].items() if v} == {"ok": 4}


def test_isc_matching_file_is_scored_by_micro_ap(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", COPIES, name="copies", kind="matching")
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", _offline(dataset="copies", metric="micro_ap"))
        archive = download(c, alpha.api_key)
        assert archive.read("references.txt").decode() == "r1\nr2\n"
        q1, q2, _q3 = image_ids(archive)
        # Ranked: q1-r1 0.9 (true), q2-r1 0.8 (false), q2-r2 0.7 (true); 2 true pairs:
        # µAP = (1/1 + 2/3) / 2.
        text = f"query_id,reference_id,score\n{q1},r1,0.9\n{q2},r1,0.8\n{q2},r2,0.7\n"
        r = upload(c, alpha.api_key, text.encode(), "isc-matching")
        assert r.status_code == 201, r.text
        assert scores_of(r.json())["micro_ap"] == pytest.approx((1 + 2 / 3) / 2)


@pytest.mark.parametrize("container", ["npz", "hdf5"])
def test_isc_descriptors_file_is_searched_with_the_phase_k_and_scored(
    hub: LiveServer, database_url: str, tmp_path: Path, container: str
) -> None:
    seed(database_url, tmp_path / "data", COPIES, name="copies", kind="matching")
    with httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [], name="alpha")
        create_challenge(c, "pets-cup", _offline(dataset="copies", metric="micro_ap", k=1))
        q1, q2, q3 = image_ids(download(c, alpha.api_key))
        # Nearest (k=1): q1 -> r1 at 0.1 (true), q2 -> r2 at 0.2 (true), q3 -> r2 at 5.5
        # (false, q3 copies nothing): µAP 1. With k=2 q1 would also list r2.
        data = descriptors_file(
            {
                "query_ids": np.array([q1, q2, q3], dtype="S"),
                "query": np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], dtype=np.float32),
                "reference_ids": np.array(["r1", "r2"], dtype="S"),
                "reference": np.array([[0.0, 0.1], [1.0, 1.2]], dtype=np.float32),
            },
            container=container,
        ).getvalue()
        r = upload(c, alpha.api_key, data, "isc-descriptors")
        assert r.status_code == 201, r.text
        answer = r.json()
        assert scores_of(answer)["micro_ap"] == pytest.approx(1.0)
        results = c.get(f"/api/v1/runs/{answer['run_id']}/results", headers=admin_headers())
        assert results.status_code == 200
        rows = [json.loads(line) for line in results.text.splitlines() if line.strip()]
        assert sorted(len(row["tags"]) for row in rows) == [1, 1, 1]  # k = 1 each


def test_a_live_run_and_a_file_of_one_team_share_the_phase_leaderboard(
    hub: LiveServer, database_url: str, tmp_path: Path
) -> None:
    seed(database_url, tmp_path / "data", PETS)
    with recognizers(CAT_DOG) as (ra,), httpx.Client(base_url=hub.url, timeout=60) as c:
        alpha = register_team(c, [ra.url], name="alpha")
        beta = register_team(c, [], name="beta")
        create_challenge(c, "pets-cup", phase_body(kind="both"))
        live = submit(c, alpha.api_key, alpha.service_guid)
        assert live.status_code == 201, live.text
        ids = image_ids(download(c, alpha.api_key))
        # alpha's file: every image right (better than its live run's cat-for-all).
        good = "".join(
            f"{i}\t{t}:1\n" for i, t in zip(ids, ["cat", "cat", "dog", "bird"], strict=True)
        )
        r = upload(c, alpha.api_key, good.encode(), "recoghub-tsv")
        assert r.status_code == 201, r.text
        r = upload(c, beta.api_key, b"dog\n", "ilsvrc")
        assert r.status_code == 201, r.text
        rows = board(c, None).json()["rows"]
        by_name = {row["provider_name"]: row for row in rows}
        assert by_name["alpha"]["submissions"] == 2
        assert by_name["alpha"]["submission_id"] == r.json()["id"] - 1  # the file counts
        assert by_name["alpha"]["scores"]["top1"] == pytest.approx(1.0)
        assert by_name["alpha"]["rank"] == 1 and by_name["beta"]["rank"] == 2
