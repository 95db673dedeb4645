"""KServe's Open Inference Protocol v2 (KServe, Triton, MLServer; SPEC §11)."""

import base64
import json
from typing import Any

from yarl import URL

from gateway.dispatch.protocols.json_answers import (
    JsonAdapter,
    bytes_text,
    finite,
    flat,
    json_field,
    number,
    required_model,
    shown,
    shown_text,
    shown_value,
)
from gateway.dispatch.protocols.options import (
    CLASSIFICATION,
    OIP_V2,
    PROBABILITIES,
    RESULT_STRING,
    ProtocolOptions,
)
from gateway.dispatch.protocols.recoghub_v1 import PingStep
from gateway.errors import RecognizerBadFormat, RecognizerTooLarge
from gateway.protocol.result_string import (
    ResultStringError,
    ResultTooLargeError,
    Tag,
    parse_result,
)

_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})


class OipV2Adapter(JsonAdapter):
    """KServe's Open Inference Protocol v2 (KServe, Triton, MLServer)."""

    name = OIP_V2

    def __init__(self, options: ProtocolOptions) -> None:
        super().__init__(options, f"/v2/models/{required_model(options)}/infer")
        # The request is the same JSON around each image: build its two ends once
        # ("data" is the last key, so the last "IMAGE" is the placeholder, whatever the
        # input's name).
        request_input = {
            "name": options.input,
            "shape": [1],
            "datatype": "BYTES",
            "parameters": {"content_type": "base64"},
            "data": ["IMAGE"],
        }
        head, _, tail = json.dumps({"inputs": [request_input]}).rpartition('"IMAGE"')
        if options.output:
            output: dict[str, Any] = {"name": options.output}
            if options.output_format == CLASSIFICATION:
                output["parameters"] = {"classification": options.top_k}
            tail = tail[:-1] + ', "outputs": ' + json.dumps([output]) + "}"
        self._head, self._tail = (head + '"').encode(), ('"' + tail).encode()

    def ping_steps(self, base: str) -> tuple[PingStep, ...]:
        root = base.rstrip("/")
        ready = f"/v2/models/{self.model}/ready"
        return (
            PingStep(root + "/v2/health/ready", "/v2/health/ready", "server not ready"),
            PingStep(root + ready, ready, f"model {self.model} not ready"),
        )

    def ping_problem(self, step: PingStep, status: int, body: bytes) -> str | None:
        problem = super().ping_problem(step, status, body)
        # KServe also answers 200 with {"ready": false} while a model loads.
        if problem is None and json_field(body, "ready") is False:
            return f'{step.failure}: {step.path} says "ready": false'
        return problem

    def build_request(
        self, base: str, image: bytes, content_type: str
    ) -> tuple[URL, bytes, dict[str, str]]:
        body = self._head + base64.b64encode(image) + self._tail
        return (
            self._recognize_url(base),
            body,
            {"Content-Type": "application/json"},
        )

    def parse_answer(self, body: bytes) -> list[Tag]:
        document = self._document(body)
        outputs = document.get("outputs") if isinstance(document, dict) else None
        if not isinstance(outputs, list) or not outputs:
            raise RecognizerBadFormat(
                f'output missing: the answer has no "outputs" list: {shown(body)}'
            )
        output = self._output(outputs)
        name = output.get("name", "?")
        datatype = output.get("datatype")
        data = flat(output.get("data"))
        if data is None:
            raise RecognizerBadFormat(f'output "{name}" has no "data" array')
        fmt = self.options.output_format
        if fmt == PROBABILITIES:
            if datatype not in _FLOAT_TYPES:
                raise RecognizerBadFormat(
                    f'output "{name}" has datatype {datatype}; probabilities need FP32 or FP64'
                )
            return self._probabilities(name, data)
        if datatype != "BYTES":
            raise RecognizerBadFormat(f'output "{name}" has datatype {datatype}; {fmt} needs BYTES')
        if fmt == RESULT_STRING:
            return self._result_string(name, data)
        return self._classification(name, data)

    def _output(self, outputs: list[Any]) -> dict[str, Any]:
        named = [o for o in outputs if isinstance(o, dict)]
        names = ", ".join(f'"{o.get("name")}"' for o in named) or "none"
        wanted = self.options.output
        if wanted is None:
            if len(named) != 1:
                raise RecognizerBadFormat(
                    f"the answer has {len(named)} outputs ({names}); "
                    "set protocol_options.output to the one holding the answer"
                )
            return named[0]
        for output in named:
            if output.get("name") == wanted:
                return output
        raise RecognizerBadFormat(
            f'output "{wanted}" missing (wrong output name?): the answer has outputs {names}'
        )

    def _classification(self, name: str, data: list[Any]) -> list[Tag]:
        # Triton's classification extension: "score:index" or "score:index:label".
        labels = self.options.labels
        tags = []
        for position, element in enumerate(data, start=1):
            text = bytes_text(element)
            parts = text.split(":", 2) if text is not None else []
            index_text = parts[1].strip() if len(parts) >= 2 else ""
            # ASCII digits, and few: int() refuses strings past 4300 digits.
            if (
                text is None
                or finite(parts[0]) is None
                or not (index_text.isascii() and index_text.isdigit() and len(index_text) <= 9)
            ):
                shown = f'"{shown_text(text)}"' if text is not None else shown_value(element)
                raise RecognizerBadFormat(
                    f'output "{name}" element {position} {shown} is not "score:index:label"'
                )
            score = float(parts[0])
            index = int(index_text)
            label = parts[2].strip() if len(parts) == 3 else ""
            if not label:
                label = labels[index] if labels and index < len(labels) else str(index)
            tags.append(Tag(label, score))
        # Triton's classification may rank logits, negative as well: every entry stays.
        return self._ranked(tags)

    def _result_string(self, name: str, data: list[Any]) -> list[Tag]:
        if len(data) != 1 or bytes_text(data[0]) is None:
            raise RecognizerBadFormat(
                f'output "{name}" must hold one string (a result string), '
                f"it holds {len(data)} element(s)"
            )
        try:
            return parse_result(str(bytes_text(data[0])))
        except ResultTooLargeError as exc:
            raise RecognizerTooLarge(f'output "{name}": {exc}') from None
        except ResultStringError as exc:
            raise RecognizerBadFormat(f'output "{name}": {exc}') from None

    def _probabilities(self, name: str, data: list[Any]) -> list[Tag]:
        labels = self.options.labels or ()
        if len(data) != len(labels):
            raise RecognizerBadFormat(
                f'output "{name}" has {len(data)} values but protocol_options.labels '
                f"has {len(labels)} labels"
            )
        tags = []
        for position, (label, value) in enumerate(zip(labels, data, strict=True), start=1):
            score = number(value)
            if score is None:
                raise RecognizerBadFormat(
                    f'output "{name}" value {position} {shown_value(value)} is not a finite number'
                )
            tags.append(Tag(label, score))
        return self._ranked_scores(tags)
