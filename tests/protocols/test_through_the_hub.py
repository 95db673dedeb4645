"""Runs, relay and check through a live hub to live OIP v2 and TorchServe model servers."""

import base64
import json
from pathlib import Path

import httpx
import pytest

from gateway.protocol.signing import verify
from tests.builders import admin_headers, png_bytes, register_team
from tests.protocols.conftest import CLASSES, SERVICES
from tests.protocols.model_servers import ModelServer
from tests.runs.api_builders import LABELS, parse_jsonl, results_of, seed_dataset, start_run
from tests.runs.api_builders import wait_for as wait_for_run
from tests.servers import LiveServer

Models = tuple[ModelServer, str]


def check(client: httpx.Client, guid: str) -> dict[str, object]:
    r = client.post(f"/api/v1/services/{guid}/check", headers=admin_headers())
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def relay(client: httpx.Client, guid: str, image: bytes) -> httpx.Response:
    return client.post(f"/api/v1/services/{guid}/recognize", content=image, headers=admin_headers())


def test_a_dry_run_scores_every_protocol_exactly(
    hub: LiveServer, database_url: str, tmp_path: Path, models: Models
) -> None:
    server, url = models
    dataset_id = seed_dataset(database_url, tmp_path / "data", LABELS)
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        teams = {
            model: register_team(client, [url], name=model, **service)
            for model, service in SERVICES.items()
        }
        run = start_run(
            client, dataset_id, "dryrun", services=[t.service_guid for t in teams.values()]
        )
        done = wait_for_run(client, run["id"], {"completed"})
        assert [s["status"] for s in done["services"]] == ["passed"] * 4, done
        board = client.get(f"/api/v1/runs/{run['id']}/leaderboard", headers=admin_headers())
        results = {
            model: {
                row["key"]: row
                for row in parse_jsonl(results_of(client, run["id"], team.service_guid).text)
            }
            for model, team in teams.items()
        }

    assert board.status_code == 200, board.text
    for row in board.json():
        assert (row["images"], row["outcomes"]["ok"]) == (4, 4), row
        assert row["top1"] == pytest.approx(0.5), row
        assert row["top5"] == pytest.approx(0.75), row
    for model, rows in results.items():
        ranks = {key: row["true_rank"] for key, row in rows.items()}
        assert ranks == {"img-a": 1, "img-b": 2, "img-c": None, "img-d": 1}, model
        assert rows["img-b"]["tags"] == [
            {"tag": "dog", "score": 0.8},
            {"tag": "cat", "score": 0.6},
        ], model
    # The probability vector's zeros are not predictions: img-c's true "dog" scored 0
    # and earns no top-5 place (SPEC §11); the others answer what the model guessed.
    assert results["probs"]["img-c"]["tags"] == [{"tag": "bird", "score": 0.7}]
    assert results["resnet"]["img-c"]["tags"] == [{"tag": "bird", "score": 0.7}]
    assert len(server.seen) == 16


def test_relay_speaks_each_protocol_with_signed_headers(
    sqlite_hub: LiveServer, models: Models
) -> None:
    server, url = models
    image = png_bytes(9, 8)  # 9 pixels wide: GUESSES[1]
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        for model, service in SERVICES.items():
            team = register_team(client, [url], name=model, **service)
            r = relay(client, team.service_guid, image)

            assert r.status_code == 200, (model, r.text)
            assert r.json()["tags"] == [
                {"tag": "dog", "score": 0.8},
                {"tag": "cat", "score": 0.6},
            ], model
            seen = server.seen[-1]
            assert seen.image == image, model
            headers = seen.headers
            assert headers["x-recog-service-guid"] == team.service_guid
            assert headers["x-recog-provider-guid"] == team.provider_guid
            assert headers["x-recog-request-id"] == r.json()["request_id"]
            # The signature covers the body as sent: the JSON for oip-v2.
            problem = verify(
                team.signing_secret,
                timestamp=headers["x-recog-timestamp"],
                request_id=headers["x-recog-request-id"],
                body=seen.body,
                signature=headers["x-recog-signature"],
            )
            assert problem is None, (model, problem)

    oip = json.loads(server.seen[0].body)
    assert oip["inputs"][0]["name"] == "image"
    assert base64.b64decode(oip["inputs"][0]["data"][0]) == image
    assert oip["outputs"] == [{"name": "top", "parameters": {"classification": 2}}]
    assert server.seen[-1].path == "/predictions/resnet"


def test_check_of_healthy_model_servers_is_ok(sqlite_hub: LiveServer, models: Models) -> None:
    _, url = models
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        for model, service in SERVICES.items():
            team = register_team(client, [url], name=model, **service)
            result = check(client, team.service_guid)

            assert result["ok"] is True, result
            assert result["protocol"] == service["protocol"]
            [instance] = result["instances"]  # type: ignore[misc]
            assert instance["reachable"] and instance["format_ok"], instance
            assert instance["tags"], instance


def test_check_names_the_step_that_failed(sqlite_hub: LiveServer, models: Models) -> None:
    server, url = models
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        teams = {m: register_team(client, [url], name=m, **s) for m, s in SERVICES.items()}
        wrong_output = register_team(
            client,
            [url],
            protocol="oip-v2",
            protocol_options={"model": "missing-output"},
        )
        server.add_oip(
            "missing-output",
            fixed=b'{"outputs": [{"name": "logits", "datatype": "FP32", "shape": [1], '
            b'"data": [0.5]}, {"name": "extra", "datatype": "FP32", "shape": [1], '
            b'"data": [0.5]}]}',
        )

        server.models["probs"].ready = False
        model_down = check(client, teams["probs"].service_guid)
        server.models["probs"].ready = True
        server.server_ready = False
        server_down = check(client, teams["classify"].service_guid)
        server.server_ready = True
        server.health = "Unhealthy"
        torch_down = check(client, teams["resnet"].service_guid)
        server.health = "Healthy"
        outputs = check(client, wrong_output.service_guid)

    def only(result: dict[str, object]) -> dict[str, object]:
        assert result["ok"] is False, result
        [instance] = result["instances"]  # type: ignore[misc]
        return instance  # type: ignore[no-any-return]

    probs = only(model_down)
    assert probs["reachable"] is False
    assert str(probs["detail"]).startswith(
        "ping: model probs not ready: /v2/models/probs/ready answered HTTP 400"
    )
    assert probs["outcome"] == "http_error"  # the probe was refused too
    ready = only(server_down)
    assert ready["detail"] == "ping: server not ready: /v2/health/ready answered HTTP 503"
    assert ready["format_ok"] is True  # the model still answered the probe
    torch = only(torch_down)
    assert str(torch["detail"]).startswith("ping: server not healthy: /ping answered HTTP 500")
    missing = only(outputs)
    assert missing["reachable"] is True and missing["outcome"] == "bad_format"
    assert missing["detail"] == (
        'recognize: the answer has 2 outputs ("logits", "extra"); '
        "set protocol_options.output to the one holding the answer"
    )


# Each malformed answer, the options the service was registered with, and the reason
# the hub gives.
MALFORMED: list[tuple[str, dict[str, object], object, str]] = [
    ("oip-v2", {}, b"<html>oops</html>", "answer is not parseable: not JSON"),
    ("oip-v2", {}, {"model_name": "m"}, 'output missing: the answer has no "outputs" list'),
    (
        "oip-v2",
        {"output": "top"},
        {"outputs": [{"name": "logits", "datatype": "BYTES", "data": ["1:0:cat"]}]},
        'output "top" missing (wrong output name?): the answer has outputs "logits"',
    ),
    (
        "oip-v2",
        {"output": "top"},
        {"outputs": [{"name": "top", "datatype": "FP32", "data": [0.5]}]},
        'output "top" has datatype FP32; classification needs BYTES',
    ),
    (
        "oip-v2",
        {"output": "top"},
        {"outputs": [{"name": "top", "datatype": "BYTES", "data": ["cat"]}]},
        'output "top" element 1 "cat" is not "score:index:label"',
    ),
    (
        "oip-v2",
        {"output_format": "probabilities", "labels": CLASSES},
        {"outputs": [{"name": "p", "datatype": "INT64", "data": [1, 0, 0, 0]}]},
        'output "p" has datatype INT64; probabilities need FP32 or FP64',
    ),
    (
        "oip-v2",
        {"output_format": "probabilities", "labels": CLASSES},
        {"outputs": [{"name": "p", "datatype": "FP32", "data": [0.5, 0.5]}]},
        'output "p" has 2 values but protocol_options.labels has 4 labels',
    ),
    (
        "oip-v2",
        {"output_format": "result_string"},
        {"outputs": [{"name": "r", "datatype": "BYTES", "data": ["a:1;dog;b:2"]}]},
        'output "r": entry 2 "dog" has no ":score"',
    ),
    ("torchserve", {}, b"[1, 2]", "answer is not a {label: probability} object"),
    ("torchserve", {}, {"cat": "high"}, 'label "cat" has "high", not a finite probability'),
]


def test_each_malformed_answer_is_bad_format_with_its_reason(
    sqlite_hub: LiveServer, models: Models
) -> None:
    server, url = models
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        for n, (protocol, options, answer, reason) in enumerate(MALFORMED):
            model = f"bad{n}"
            body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            if protocol == "oip-v2":
                server.add_oip(model, fixed=body)
            else:
                server.add_torchserve(model, fixed=body)
            team = register_team(
                client, [url], protocol=protocol, protocol_options={"model": model, **options}
            )
            r = relay(client, team.service_guid, png_bytes())

            assert r.status_code == 502, (reason, r.text)
            assert r.json()["code"] == "bad_format", reason
            assert r.json()["detail"].startswith(reason), (reason, r.json()["detail"])
    # bad_format is final: one request each, no retry.
    assert len(server.seen) == len(MALFORMED)


def test_a_json_answer_over_a_mebibyte_is_too_large(sqlite_hub: LiveServer, models: Models) -> None:
    server, url = models
    labels = [f"class{i}" for i in range(70_000)]
    server.add_torchserve("huge", fixed=json.dumps(dict.fromkeys(labels, 0.1)).encode())
    # Over 64 KiB but under 1 MiB: fine for a JSON answer.
    server.add_torchserve("wide", fixed=json.dumps(dict.fromkeys(labels[:5000], 0.1)).encode())
    with httpx.Client(base_url=sqlite_hub.url, timeout=30) as client:
        huge, wide = (
            register_team(client, [url], protocol="torchserve", protocol_options={"model": model})
            for model in ("huge", "wide")
        )
        too_large = relay(client, huge.service_guid, png_bytes())
        fine = relay(client, wide.service_guid, png_bytes())

    assert too_large.status_code == 502 and too_large.json()["code"] == "too_large"
    assert fine.status_code == 200, fine.text
    assert len(fine.json()["tags"]) == 5
