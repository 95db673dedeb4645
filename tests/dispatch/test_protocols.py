"""The protocol adapters on their own: the requests they build, the answers they read."""

import base64
import json

import pytest

from gateway.dispatch.protocols import adapter_for
from gateway.dispatch.protocols.json_answers import MAX_JSON_ANSWER_BYTES
from gateway.dispatch.protocols.oip_v2 import OipV2Adapter
from gateway.dispatch.protocols.options import ProtocolOptions
from gateway.dispatch.protocols.recoghub_v1 import RECOGHUB
from gateway.dispatch.protocols.torchserve import TorchServeAdapter
from gateway.errors import RecognizerBadFormat, RecognizerTooLarge
from gateway.protocol.result_string import Tag


def oip(**options: object) -> OipV2Adapter:
    return OipV2Adapter(ProtocolOptions.of({"model": "m", **options}))


def answer(*outputs: dict[str, object]) -> bytes:
    return json.dumps({"model_name": "m", "outputs": list(outputs)}).encode()


def test_the_oip_request_is_one_base64_bytes_input() -> None:
    url, body, headers = oip(input="pixels", output="top", top_k=3).build_request(
        "http://127.0.0.1:8000/kserve/", b"\x89PNG...", "image/png"
    )

    assert str(url) == "http://127.0.0.1:8000/kserve/v2/models/m/infer"
    assert headers == {"Content-Type": "application/json"}
    assert json.loads(body) == {
        "inputs": [
            {
                "name": "pixels",
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"content_type": "base64"},
                "data": [base64.b64encode(b"\x89PNG...").decode()],
            }
        ],
        "outputs": [{"name": "top", "parameters": {"classification": 3}}],
    }
    _, plain, _ = oip(output="p", output_format="probabilities", labels=["a"]).build_request(
        "http://h", b"x", "image/png"
    )
    assert json.loads(plain)["outputs"] == [{"name": "p"}]
    _, bare, _ = oip().build_request("http://h", b"x", "image/png")
    assert "outputs" not in json.loads(bare)
    # Whatever the input is called, the image goes in its data.
    _, named, _ = oip(input="IMAGE").build_request("http://h", b"x", "image/png")
    [tensor] = json.loads(named)["inputs"]
    assert (tensor["name"], tensor["data"]) == ("IMAGE", [base64.b64encode(b"x").decode()])


def test_classification_reads_triton_strings_and_keeps_the_top_k() -> None:
    adapter = oip(output="top", top_k=2, labels=["zero", "one", "two"])
    data = ["0.25:2", "0.75:0:Tabby Cat: striped", "0.5:1:"]

    tags = adapter.parse_answer(answer({"name": "top", "datatype": "BYTES", "data": [data]}))

    # A label may hold ':'; an index without one takes the service's labels.
    assert tags == [Tag("Tabby Cat: striped", 0.75), Tag("one", 0.5)]


def test_probabilities_are_ranked_against_the_labels() -> None:
    adapter = oip(output_format="probabilities", labels=["a", "b", "c"], top_k=5)
    body = answer({"name": "p", "datatype": "FP64", "shape": [1, 3], "data": [[0.2, 0.7, 0.1]]})

    assert adapter.parse_answer(body) == [Tag("b", 0.7), Tag("a", 0.2), Tag("c", 0.1)]


def test_a_result_string_output_follows_the_grammar() -> None:
    adapter = oip(output="r", output_format="result_string")
    body = answer({"name": "r", "datatype": "BYTES", "data": ["dog:0.25;cat:0.75;"]})

    assert adapter.parse_answer(body) == [Tag("cat", 0.75), Tag("dog", 0.25)]
    empty = answer({"name": "r", "datatype": "BYTES", "data": [" "]})
    assert adapter.parse_answer(empty) == []


def test_torchserve_reads_an_object_or_a_list_of_them() -> None:
    adapter = TorchServeAdapter(ProtocolOptions.of({"model": "resnet", "top_k": 2}))
    url, body, headers = adapter.build_request("http://h:8080", b"img", "image/jpeg")

    assert (str(url), body, headers) == (
        "http://h:8080/predictions/resnet",
        b"img",
        {"Content-Type": "image/jpeg"},
    )
    assert adapter.parse_answer(b'{"tabby": 0.3, "tiger_cat": 0.6, "lynx": 0.1}') == [
        Tag("tiger_cat", 0.6),
        Tag("tabby", 0.3),
    ]
    assert adapter.parse_answer(b'[{"tabby": 0.3}, {"lynx": 0.5}]') == [
        Tag("lynx", 0.5),
        Tag("tabby", 0.3),
    ]
    assert adapter.parse_answer(b"{}") == []


@pytest.mark.parametrize(
    ("options", "body", "reason"),
    [
        ({}, b"\xff\xfe", "answer is not parseable: not UTF-8"),
        ({}, b'{"outputs": []}', 'output missing: the answer has no "outputs" list'),
        (
            {"output": "top"},
            answer({"name": "top", "datatype": "BYTES"}),
            'output "top" has no "data" array',
        ),
        (
            {"output": "top"},
            answer({"name": "top", "datatype": "BYTES", "data": ["nan:1:cat"]}),
            'output "top" element 1 "nan:1:cat" is not "score:index:label"',
        ),
        (
            {"output": "top"},
            answer({"name": "top", "datatype": "BYTES", "data": ["0.5:" + "9" * 5000]}),
            'output "top" element 1 "0.5:99999',
        ),
        (
            {"output": "top"},
            answer({"name": "top", "datatype": "BYTES", "data": [7]}),
            'output "top" element 1 7 is not "score:index:label"',
        ),
        (
            {"output_format": "result_string"},
            answer({"name": "r", "datatype": "BYTES", "data": ["a:1", "b:2"]}),
            'output "r" must hold one string (a result string), it holds 2 element(s)',
        ),
        (
            {"output_format": "probabilities", "labels": ["a", "b"]},
            answer({"name": "p", "datatype": "FP32", "data": [0.5, True]}),
            'output "p" value 2 true is not a finite number',
        ),
    ],
)
def test_malformed_oip_answers_say_what_is_wrong(
    options: dict[str, object], body: bytes, reason: str
) -> None:
    with pytest.raises(RecognizerBadFormat) as caught:
        oip(**options).parse_answer(body)
    assert caught.value.detail.startswith(reason), caught.value.detail


def test_json_answers_are_bounded_at_a_mebibyte() -> None:
    with pytest.raises(RecognizerTooLarge):
        oip().parse_answer(b" " * (MAX_JSON_ANSWER_BYTES + 1))
    assert oip().max_answer_bytes == MAX_JSON_ANSWER_BYTES > RECOGHUB.max_answer_bytes


def test_adapters_are_shared_per_protocol_and_options() -> None:
    assert adapter_for("v1", None) is adapter_for("recoghub-v1", {}) is RECOGHUB
    first = adapter_for("oip-v2", {"model": "m", "top_k": 3})
    assert adapter_for("oip-v2", {"top_k": 3, "model": "m"}) is first
    assert adapter_for("oip-v2", {"model": "m"}) is not first
    with pytest.raises(ValueError, match="unknown protocol"):
        adapter_for("grpc", {"model": "m"})


def test_hostile_json_is_bad_format() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    for body in (deep, b'{"outputs": [{"name": "x", "data": ' + deep + b"}]}"):
        with pytest.raises(RecognizerBadFormat, match="not parseable"):
            oip().parse_answer(body)
        with pytest.raises(RecognizerBadFormat, match="not parseable"):
            TorchServeAdapter(ProtocolOptions.of({"model": "m"})).parse_answer(body)


def test_health_answers_are_read_in_each_protocols_words() -> None:
    adapter = oip()
    server, model = adapter.ping_steps("http://h/")
    assert (server.url, model.url) == ("http://h/v2/health/ready", "http://h/v2/models/m/ready")
    assert adapter.ping_problem(server, 200, b"") is None
    assert adapter.ping_problem(model, 200, b'{"name": "m", "ready": true}') is None
    assert adapter.ping_problem(model, 200, b'{"ready": false}') == (
        'model m not ready: /v2/models/m/ready says "ready": false'
    )
    assert adapter.ping_problem(server, 200, b"[" * 1024) is None
    torch = TorchServeAdapter(ProtocolOptions.of({"model": "m"}))
    [ping] = torch.ping_steps("http://h")
    assert torch.ping_problem(ping, 200, b'{"status": "Healthy"}') is None
    assert torch.ping_problem(ping, 200, b'{"status": "Partial Healthy"}') == (
        'server not healthy: /ping says status "Partial Healthy"'
    )


def test_zero_scored_classes_are_not_predictions() -> None:
    """A k-NN (k = 3) answers 0 for most classes: the zeros are not ranked, so they
    cannot fill the top-5 in label order and earn credit."""
    labels = [str(digit) for digit in range(10)]
    adapter = oip(output_format="probabilities", labels=labels, top_k=5)
    vector = [0.0] * 10
    vector[7] = 1.0
    body = answer({"name": "p", "datatype": "FP32", "shape": [1, 10], "data": [vector]})

    assert adapter.parse_answer(body) == [Tag("7", 1.0)]

    two = [0.0, 0.0, 0.0, 2 / 3, 0.0, 0.0, 0.0, 0.0, 1 / 3, 0.0]
    body = answer({"name": "p", "datatype": "FP64", "shape": [1, 10], "data": [two]})
    assert [t.tag for t in adapter.parse_answer(body)] == ["3", "8"]
    nothing = answer({"name": "p", "datatype": "FP64", "shape": [1, 10], "data": [[0.0] * 10]})
    assert adapter.parse_answer(nothing) == []

    torchserve = TorchServeAdapter(ProtocolOptions.of({"model": "knn", "top_k": 5}))
    assert torchserve.parse_answer(b'{"0": 0.0, "1": 0.0, "5": 1.0, "2": 0}') == [Tag("5", 1.0)]
