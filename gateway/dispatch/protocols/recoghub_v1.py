"""The recoghub-v1 protocol (SPEC §2), the base of the other adapters.

An adapter knows three things about its protocol: which routes say the server (and the
model) are ready, how to shape the recognize request for one instance, and how to turn
an answer's already-read bytes into the ranked tag list of SPEC §2. Everything else —
signing, timeouts, retries, latency, bounded reads, outcomes — is the dispatcher's and
the same for every protocol.

Errors are those of the dispatch tree: `parse_answer` raises RecognizerBadFormat with the
reason in the protocol's own words (which output, which datatype, which element), or
RecognizerTooLarge.
"""

from dataclasses import dataclass
from typing import ClassVar

from yarl import URL

from gateway.dispatch.protocols.options import RECOGHUB_V1
from gateway.errors import RecognizerBadFormat, RecognizerTooLarge
from gateway.protocol.result_string import (
    MAX_RESULT_BYTES,
    ResultStringError,
    ResultTooLargeError,
    Tag,
    parse_result,
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


RECOGHUB = Adapter()


def _failed(step: PingStep) -> str:
    return f"{step.failure}: " if step.failure else ""


def no_answer(step: PingStep, timeout_s: float) -> str:
    """The detail of a health step that got no answer in time."""
    where = f"{_failed(step)}{step.path}: " if step.failure else ""
    return f"{where}no answer within {timeout_s:g}s"
