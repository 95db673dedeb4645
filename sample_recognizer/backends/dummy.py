"""The dummy backend: the same answer to every image."""

from gateway.protocol.result_string import ResultStringError, parse_result
from sample_recognizer.config import ConfigError


class DummyBackend:
    name = "dummy"

    def __init__(self, answer: str) -> None:
        try:
            parse_result(answer)
        except ResultStringError as exc:
            raise ConfigError(f"--answer {answer!r} is not a result string: {exc}") from None
        self.answer = answer

    async def recognize(self, image: bytes) -> str:
        return self.answer
