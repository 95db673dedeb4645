"""A live model server (OIP v2 and TorchServe) that recognizes the run tests' dataset."""

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.protocols.model_servers import ModelServer
from tests.servers import live_server

# What the model sees in each image of tests.runs.api_builders.LABELS, by position (the
# dataset's images are 8 + position pixels wide). With the top 2 kept: img-a right at
# rank 1, img-b at rank 2, img-c wrong, img-d at rank 1 -> top-1 2/4, top-5 3/4.
GUESSES = [
    [("cat", 0.9), ("dog", 0.5)],
    [("dog", 0.8), ("cat", 0.6)],
    [("bird", 0.7)],
    [("bird", 0.95), ("cow", 0.25)],
]
CLASSES = ["cat", "dog", "bird", "cow"]


def guess(image: bytes) -> list[tuple[str, float]]:
    width = Image.open(io.BytesIO(image)).width
    return GUESSES[(width - 8) % len(GUESSES)]


@pytest.fixture
def models() -> Iterator[tuple[ModelServer, str]]:
    """The model server with four models, one per way of answering, and its URL:
    oip-v2 `classify` (output `top`), `strings` (output `answer`, a result string),
    `probs` (output `probs`, FP32 over CLASSES) and torchserve `resnet`."""
    server = ModelServer(guess)
    server.add_oip("classify", output="top", labels=CLASSES)
    server.add_oip("strings", output="answer", output_format="result_string")
    server.add_oip("probs", output="probs", output_format="probabilities", labels=CLASSES)
    server.add_torchserve("resnet")
    with live_server(server.app) as live:
        yield server, live.url


# The protocol and options a team gives for each model above.
SERVICES: dict[str, dict[str, object]] = {
    "classify": {
        "protocol": "oip-v2",
        "protocol_options": {"model": "classify", "output": "top", "top_k": 2},
    },
    "strings": {
        "protocol": "oip-v2",
        "protocol_options": {
            "model": "strings",
            "output": "answer",
            "output_format": "result_string",
        },
    },
    "probs": {
        "protocol": "oip-v2",
        "protocol_options": {
            "model": "probs",
            "output_format": "probabilities",
            "labels": CLASSES,
            # Every class: its zeros must not fill the top-k (img-c's "dog" is one).
            "top_k": 5,
        },
    },
    "resnet": {"protocol": "torchserve", "protocol_options": {"model": "resnet", "top_k": 2}},
}
