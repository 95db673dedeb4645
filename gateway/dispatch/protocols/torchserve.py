"""TorchServe's inference API, answered as its image classifier answers (SPEC §11)."""

from yarl import URL

from gateway.dispatch.protocols.json_answers import (
    JsonAdapter,
    json_field,
    number,
    required_model,
    shown,
    shown_text,
    shown_value,
)
from gateway.dispatch.protocols.options import TORCHSERVE, ProtocolOptions
from gateway.dispatch.protocols.recoghub_v1 import PingStep
from gateway.errors import RecognizerBadFormat
from gateway.protocol.result_string import Tag


class TorchServeAdapter(JsonAdapter):
    """TorchServe's inference API, answered as its image classifier answers."""

    name = TORCHSERVE

    def __init__(self, options: ProtocolOptions) -> None:
        super().__init__(options, f"/predictions/{required_model(options)}")

    def ping_problem(self, step: PingStep, status: int, body: bytes) -> str | None:
        problem = super().ping_problem(step, status, body)
        health = json_field(body, "status")
        if problem is None and isinstance(health, str) and health != "Healthy":
            return f'server not healthy: /ping says status "{shown_text(health)}"'
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
                    "answer is not a {label: probability} object or a list of them: " + shown(body)
                )
            for label, value in part.items():
                score = number(value)
                if score is None:
                    raise RecognizerBadFormat(
                        f'label "{shown_text(label)}" has {shown_value(value)}, '
                        "not a finite probability"
                    )
                if not label.strip():
                    raise RecognizerBadFormat("the answer has an empty label")
                tags.append(Tag(label.strip(), score))
        return self._ranked_scores(tags)
