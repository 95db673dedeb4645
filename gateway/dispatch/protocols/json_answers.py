"""What the JSON protocols share (OIP v2, TorchServe): a bounded parse of the answer,
ranking, and how a bad answer's values are shown in its error."""

import base64
import binascii
import json
import math
from typing import Any

from gateway.dispatch.protocols.options import ProtocolOptions
from gateway.dispatch.protocols.recoghub_v1 import Adapter
from gateway.errors import RecognizerBadFormat, RecognizerTooLarge
from gateway.protocol.result_string import Tag, rank

# JSON answers spend bytes on quoting and names; a result string's 64 KiB would cut off
# a plain 1000-class probability vector.
MAX_JSON_ANSWER_BYTES = 1024 * 1024
SHOWN_CHARS = 60


class JsonAdapter(Adapter):
    max_answer_bytes = MAX_JSON_ANSWER_BYTES

    def __init__(self, options: ProtocolOptions, recognize_path: str) -> None:
        super().__init__(recognize_path)
        self.options = options
        self.model = required_model(options)

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
                f"answer is not parseable: not JSON ({exc}): {shown(body)}"
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


def required_model(options: ProtocolOptions) -> str:
    if not options.model:
        raise ValueError("protocol_options.model is missing")
    return options.model


def flat(data: Any) -> list[Any] | None:
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


def bytes_text(element: Any) -> str | None:
    """A BYTES element: a JSON string, or base64 bytes some servers send."""
    if isinstance(element, str):
        return element
    if isinstance(element, dict) and isinstance(element.get("b64"), str):
        try:
            return base64.b64decode(element["b64"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def json_field(body: bytes, name: str) -> Any:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return document.get(name) if isinstance(document, dict) else None


def shown_text(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def shown_value(value: Any) -> str:
    return shown_text(json.dumps(value))


def shown(body: bytes) -> str:
    return shown_text(body[:200].decode("utf-8", "replace").strip()) or "(empty body)"
