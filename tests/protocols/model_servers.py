"""Model servers written for the tests from the public protocol documents.

`ModelServer` is one Starlette app that speaks both:

- KServe's Open Inference Protocol v2 (REST): `GET /v2/health/ready`,
  `GET /v2/models/{model}/ready`, `POST /v2/models/{model}/infer` taking a JSON request
  (`inputs`: name, shape, datatype, parameters, data; optional `outputs` with
  parameters such as Triton's `classification`) and answering
  `{"model_name", "outputs": [{"name", "shape", "datatype", "data"}]}`; errors are
  `{"error": "..."}` with status 400 (Triton's answer to a model that is not ready);
- TorchServe's inference API: `GET /ping` (`{"status": "Healthy"}`) and
  `POST /predictions/{model}` taking the raw image and answering its image classifier's
  `{label: probability}`.

A model is registered with `add_oip` / `add_torchserve`; what it recognizes in an image
is the test's `guess(image) -> [(label, score), ...]`. A model can instead answer a fixed
body (for malformed answers) or be not ready. Every request is recorded.
"""

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Guess = Callable[[bytes], list[tuple[str, float]]]


@dataclass
class Model:
    kind: str  # "oip" or "torchserve"
    output_format: str = "classification"
    output: str = "answer"
    input: str = "image"
    labels: list[str] = field(default_factory=list)
    ready: bool = True
    fixed: bytes | None = None  # answer exactly this body (a malformed answer)


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    image: bytes  # the image as the model got it (decoded from base64 for OIP)


class ModelServer:
    def __init__(self, guess: Guess) -> None:
        self.guess = guess
        self.models: dict[str, Model] = {}
        self.server_ready = True
        self.health = "Healthy"
        self.seen: list[Seen] = []
        self.app = Starlette(
            routes=[
                Route("/v2/health/ready", self.server_ready_route),
                Route("/v2/models/{model}/ready", self.model_ready_route),
                Route("/v2/models/{model}/infer", self.infer, methods=["POST"]),
                Route("/ping", self.ping),
                Route("/predictions/{model}", self.predictions, methods=["POST"]),
            ]
        )

    def add_oip(self, name: str, **options: Any) -> None:
        self.models[name] = Model("oip", **options)

    def add_torchserve(self, name: str, **options: Any) -> None:
        self.models[name] = Model("torchserve", **options)

    # Open Inference Protocol v2

    async def server_ready_route(self, request: Request) -> Response:
        if not self.server_ready:
            return JSONResponse({"error": "server is not ready"}, status_code=503)
        return Response(status_code=200)

    async def model_ready_route(self, request: Request) -> Response:
        model = self.models.get(request.path_params["model"])
        if model is None or model.kind != "oip":
            return _error("unknown model", 404)
        if not model.ready:
            return _error("model is not ready", 400)
        return Response(status_code=200)

    async def infer(self, request: Request) -> Response:
        name = request.path_params["model"]
        model = self.models.get(name)
        if model is None or model.kind != "oip":
            return _error(f"unknown model {name}", 404)
        if not model.ready:
            return _error("model is not ready", 400)
        body = await request.body()
        try:
            document = json.loads(body)
            [tensor] = document["inputs"]
            assert tensor["name"] == model.input, f"no input {model.input}"
            assert tensor["datatype"] == "BYTES" and tensor["shape"] == [1], "not BYTES [1]"
            assert tensor["parameters"] == {"content_type": "base64"}, "not base64"
            image = base64.b64decode(tensor["data"][0], validate=True)
        except (ValueError, KeyError, TypeError, AssertionError, binascii.Error) as exc:
            return _error(f"bad request: {exc}", 400)
        self.seen.append(Seen(request.url.path, dict(request.headers), body, image))
        if model.fixed is not None:
            return Response(model.fixed, media_type="application/json")
        guessed = self.guess(image)
        requested = {o["name"]: o.get("parameters", {}) for o in document.get("outputs", [])}
        if requested and model.output not in requested:
            return _error(f"unknown output {sorted(requested)}", 400)
        return JSONResponse(
            {
                "model_name": name,
                "model_version": "1",
                "outputs": [_output(model, guessed, requested.get(model.output, {}))],
            }
        )

    # TorchServe

    async def ping(self, request: Request) -> Response:
        code = 200 if self.health == "Healthy" else 500
        return JSONResponse({"status": self.health}, status_code=code)

    async def predictions(self, request: Request) -> Response:
        name = request.path_params["model"]
        model = self.models.get(name)
        if model is None or model.kind != "torchserve":
            return JSONResponse(
                {"code": 404, "type": "ModelNotFoundException", "message": f"no model {name}"},
                status_code=404,
            )
        image = await request.body()
        self.seen.append(Seen(request.url.path, dict(request.headers), image, image))
        if model.fixed is not None:
            return Response(model.fixed, media_type="application/json")
        return JSONResponse(dict(self.guess(image)))


def _error(message: str, status: int) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _output(
    model: Model, guessed: list[tuple[str, float]], parameters: dict[str, Any]
) -> dict[str, Any]:
    if model.output_format == "result_string":
        text = ";".join(f"{label}:{score}" for label, score in guessed)
        return {"name": model.output, "shape": [1], "datatype": "BYTES", "data": [text]}
    if model.output_format == "probabilities":
        scores = dict(guessed)
        vector = [scores.get(label, 0.0) for label in model.labels]
        return {
            "name": model.output,
            "shape": [1, len(vector)],
            "datatype": "FP32",
            "data": vector,
        }
    # Triton's classification extension: the top k as "score:index:label".
    k = int(parameters.get("classification", len(guessed)))
    ranked = sorted(guessed, key=lambda pair: -pair[1])[:k]
    data = [f"{score}:{model.labels.index(label)}:{label}" for label, score in ranked]
    return {"name": model.output, "shape": [1, len(data)], "datatype": "BYTES", "data": data}
