"""How the hub talks to a service's endpoints: one adapter per protocol (SPEC §11).

An adapter knows three things about its protocol: which routes say the server (and the
model) are ready, how to shape the recognize request for one instance, and how to turn
an answer's already-read bytes into the ranked tag list of SPEC §2. Everything else —
signing, timeouts, retries, latency, bounded reads, outcomes — is the dispatcher's and
the same for every protocol.

Errors are those of the dispatch tree: `parse_answer` raises RecognizerBadFormat with the
reason in the protocol's own words (which output, which datatype, which element), or
RecognizerTooLarge.
"""

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from yarl import URL

from gateway.errors import RecognizerBadFormat, RecognizerTooLarge
from gateway.protocol.result_string import (
    MAX_RESULT_BYTES,
    ResultStringError,
    ResultTooLargeError,
    Tag,
    parse_result,
    rank,
)

RECOGHUB_V1 = "recoghub-v1"
OIP_V2 = "oip-v2"
TORCHSERVE = "torchserve"
PROTOCOLS = (RECOGHUB_V1, OIP_V2, TORCHSERVE)
# Services registered before SPEC §11 say "v1".
ALIASES = {"v1": RECOGHUB_V1}

CLASSIFICATION = "classification"
RESULT_STRING = "result_string"
PROBABILITIES = "probabilities"
OUTPUT_FORMATS = (CLASSIFICATION, RESULT_STRING, PROBABILITIES)

DEFAULT_INPUT = "image"
DEFAULT_TOP_K = 5
# JSON answers spend bytes on quoting and names; a result string's 64 KiB would cut off
# a plain 1000-class probability vector.
MAX_JSON_ANSWER_BYTES = 1024 * 1024
_SHOWN = 60
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})


def normalize_protocol(name: str) -> str:
    return ALIASES.get(name, name)


@dataclass(frozen=True, slots=True)
class ProtocolOptions:
    """A service's `protocol_options`, as stored (checked by the registry)."""

    model: str | None = None
    input: str = DEFAULT_INPUT
    output: str | None = None
    output_format: str = CLASSIFICATION
    labels: tuple[str, ...] | None = None
    top_k: int = DEFAULT_TOP_K

    @classmethod
    def of(cls, stored: Mapping[str, Any] | None) -> "ProtocolOptions":
        stored = stored or {}
        labels = stored.get("labels")
        return cls(
            model=stored.get("model"),
            input=stored.get("input") or DEFAULT_INPUT,
            output=stored.get("output"),
            output_format=stored.get("output_format") or CLASSIFICATION,
            labels=tuple(labels) if labels is not None else None,
            top_k=int(stored.get("top_k") or DEFAULT_TOP_K),
        )


@dataclass(frozen=True, slots=True)
class PingStep:
    """One GET that must answer 200; `failure` names what is wrong when it does not
    (empty for recoghub-v1, whose one step speaks for itself)."""

    url: str
    path: str
    failure: str


class Adapter:
    """The recoghub-v1 protocol (SPEC §2); the base of the others."""

    name: ClassVar[str] = RECOGHUB_V1
    max_answer_bytes: ClassVar[int] = MAX_RESULT_BYTES

    def __init__(self, recognize_path: str = "/recognize") -> None:
        self._recognize_path = recognize_path
        # Parsing a URL on every request would cost the dispatch loop more than the
        # rest of the hub's own work for it.
        self._urls: dict[str, URL] = {}

    def _recognize_url(self, base: str) -> URL:
        url = self._urls.get(base)
        if url is None:
            if len(self._urls) > 4096:
                self._urls.clear()
            url = self._urls[base] = URL(base.rstrip("/") + self._recognize_path)
        return url

    def ping_steps(self, base: str) -> tuple[PingStep, ...]:
        return (PingStep(base.rstrip("/") + "/ping", "/ping", ""),)

    def ping_problem(self, step: PingStep, status: int, body: bytes) -> str | None:
        """What a step's answer says is wrong, or None when it is fine."""
        if status != 200:
            return f"{_failed(step)}{step.path} answered HTTP {status}"
        return None

    def build_request(
        self, base: str, image: bytes, content_type: str
    ) -> tuple[URL, bytes, dict[str, str]]:
        """URL, body and headers of the recognize request to instance `base`."""
        return self._recognize_url(base), image, {"Content-Type": content_type}

    def parse_answer(self, body: bytes) -> list[Tag]:
        """The ranked tags of a 200 answer; raises RecognizerBadFormat/RecognizerTooLarge."""
        try:
            return parse_result(body)
        except ResultTooLargeError as exc:
            raise RecognizerTooLarge(str(exc)) from None
        except ResultStringError as exc:
            raise RecognizerBadFormat(str(exc)) from None


class _JsonAdapter(Adapter):
    max_answer_bytes = MAX_JSON_ANSWER_BYTES

    def __init__(self, options: ProtocolOptions, recognize_path: str) -> None:
        super().__init__(recognize_path)
        self.options = options
        self.model = _required_model(options)

    def _document(self, body: bytes) -> Any:
        if len(body) > self.max_answer_bytes:
            raise RecognizerTooLarge(
                f"answer is {len(body)} bytes, over the {self.max_answer_bytes}-byte limit"
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecognizerBadFormat(
                f"answer is not parseable: not UTF-8 (byte {exc.start})"
            ) from None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise RecognizerBadFormat(
                f"answer is not parseable: not JSON ({exc}): {_shown(body)}"
            ) from None
        except RecursionError:  # a hostile "[[[[..." nests deeper than the parser goes
            raise RecognizerBadFormat("answer is not parseable: JSON nested too deep") from None

    def _ranked(self, tags: list[Tag]) -> list[Tag]:
        return rank(tags)[: self.options.top_k]

    def _ranked_scores(self, tags: list[Tag]) -> list[Tag]:
        """The top_k of a score per class (a probability vector, TorchServe's object).

        Only classes scored above 0 are predictions: a k-NN or a softmax that underflows
        answers 0 for most classes, and those zeros, ranked in label order, would fill
        the top-k with arbitrary places that earn top-5 credit (SPEC §11).
        """
        return self._ranked([tag for tag in tags if tag.score > 0])


class OipV2Adapter(_JsonAdapter):
    """KServe's Open Inference Protocol v2 (KServe, Triton, MLServer)."""

    name = OIP_V2

    def __init__(self, options: ProtocolOptions) -> None:
        super().__init__(options, f"/v2/models/{_required_model(options)}/infer")
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
        if problem is None and _json_field(body, "ready") is False:
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
                f'output missing: the answer has no "outputs" list: {_shown(body)}'
            )
        output = self._output(outputs)
        name = output.get("name", "?")
        datatype = output.get("datatype")
        data = _flat(output.get("data"))
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
            text = _text(element)
            parts = text.split(":", 2) if text is not None else []
            index_text = parts[1].strip() if len(parts) >= 2 else ""
            # ASCII digits, and few: int() refuses strings past 4300 digits.
            if (
                text is None
                or _finite(parts[0]) is None
                or not (index_text.isascii() and index_text.isdigit() and len(index_text) <= 9)
            ):
                shown = f'"{_shown_text(text)}"' if text is not None else _shown_value(element)
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
        if len(data) != 1 or _text(data[0]) is None:
            raise RecognizerBadFormat(
                f'output "{name}" must hold one string (a result string), '
                f"it holds {len(data)} element(s)"
            )
        try:
            return parse_result(str(_text(data[0])))
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
            score = _number(value)
            if score is None:
                raise RecognizerBadFormat(
                    f'output "{name}" value {position} {_shown_value(value)} is not a finite number'
                )
            tags.append(Tag(label, score))
        return self._ranked_scores(tags)


class TorchServeAdapter(_JsonAdapter):
    """TorchServe's inference API, answered as its image classifier answers."""

    name = TORCHSERVE

    def __init__(self, options: ProtocolOptions) -> None:
        super().__init__(options, f"/predictions/{_required_model(options)}")

    def ping_problem(self, step: PingStep, status: int, body: bytes) -> str | None:
        problem = super().ping_problem(step, status, body)
        health = _json_field(body, "status")
        if problem is None and isinstance(health, str) and health != "Healthy":
            return f'server not healthy: /ping says status "{_shown_text(health)}"'
        return problem

    def ping_steps(self, base: str) -> tuple[PingStep, ...]:
        return (PingStep(base.rstrip("/") + "/ping", "/ping", "server not healthy"),)

    def build_request(
        self, base: str, image: bytes, content_type: str
    ) -> tuple[URL, bytes, dict[str, str]]:
        return (
            self._recognize_url(base),
            image,
            {"Content-Type": content_type},
        )

    def parse_answer(self, body: bytes) -> list[Tag]:
        document = self._document(body)
        parts = document if isinstance(document, list) else [document]
        tags = []
        for part in parts:
            if not isinstance(part, dict):
                raise RecognizerBadFormat(
                    "answer is not a {label: probability} object or a list of them: " + _shown(body)
                )
            for label, value in part.items():
                score = _number(value)
                if score is None:
                    raise RecognizerBadFormat(
                        f'label "{_shown_text(label)}" has {_shown_value(value)}, '
                        "not a finite probability"
                    )
                if not label.strip():
                    raise RecognizerBadFormat("the answer has an empty label")
                tags.append(Tag(label.strip(), score))
        return self._ranked_scores(tags)


RECOGHUB = Adapter()
_ADAPTERS: dict[tuple[str, str], Adapter] = {}


def adapter_for(protocol: str, options: Mapping[str, Any] | None) -> Adapter:
    """The adapter of a service's `protocol` and stored `protocol_options`.

    Adapters are kept per distinct (protocol, options), so that each keeps its built
    URLs across the engine's surveys and the relay's cache misses. Raises ValueError for
    an unknown protocol or options the registry would have refused.
    """
    protocol = normalize_protocol(protocol)
    if protocol == RECOGHUB_V1:
        return RECOGHUB
    key = (protocol, json.dumps(options or {}, sort_keys=True))
    adapter = _ADAPTERS.get(key)
    if adapter is None:
        if protocol == OIP_V2:
            adapter = OipV2Adapter(ProtocolOptions.of(options))
        elif protocol == TORCHSERVE:
            adapter = TorchServeAdapter(ProtocolOptions.of(options))
        else:
            raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
        if len(_ADAPTERS) >= 1024:
            _ADAPTERS.clear()
        _ADAPTERS[key] = adapter
    return adapter


def _failed(step: PingStep) -> str:
    return f"{step.failure}: " if step.failure else ""


def no_answer(step: PingStep, timeout_s: float) -> str:
    """The detail of a health step that got no answer in time."""
    where = f"{_failed(step)}{step.path}: " if step.failure else ""
    return f"{where}no answer within {timeout_s:g}s"


def _required_model(options: ProtocolOptions) -> str:
    if not options.model:
        raise ValueError("protocol_options.model is missing")
    return options.model


def _flat(data: Any) -> list[Any] | None:
    """A tensor's data in row-major order: OIP allows it flat or nested."""
    if not isinstance(data, list):
        return None
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _text(element: Any) -> str | None:
    """A BYTES element: a JSON string, or base64 bytes some servers send."""
    if isinstance(element, str):
        return element
    if isinstance(element, dict) and isinstance(element.get("b64"), str):
        try:
            return base64.b64decode(element["b64"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _json_field(body: bytes, name: str) -> Any:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return document.get(name) if isinstance(document, dict) else None


def _shown_text(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _shown_value(value: Any) -> str:
    return _shown_text(json.dumps(value))


def _shown(body: bytes) -> str:
    return _shown_text(body[:200].decode("utf-8", "replace").strip()) or "(empty body)"
