"""What a sample recognizer runs: its backend and the knobs that make it slow or flaky."""

from dataclasses import dataclass

DEFAULT_ANSWER = "cat:0.9;dog:0.1"


class ConfigError(ValueError):
    """A recognizer that cannot be set up (a bad option, a function that cannot be
    imported, ...); the message is one line that says what to change."""


@dataclass(frozen=True)
class RecognizerConfig:
    """Settings of one sample recognizer.

    `backend` is one of `dummy`, `command`, `python`, `demo`; `answer`, `command` and
    `function` are the options of the dummy, command and python backends. When `secret`
    is set, requests must carry a valid `X-Recog-Signature` (SPEC §2).

    The last knobs make the recognizer misbehave on purpose, for tests and the demo:
    `delay_ms` sleeps before every answer, `bad_rate` is the fraction of answers
    replaced by a malformed result string, `error_status_rate` the fraction answered
    with HTTP 500; `seed` makes those choices repeatable.

    Raises ConfigError for values out of range.
    """

    backend: str = "dummy"
    secret: str | None = None
    max_concurrency: int = 4
    answer: str = DEFAULT_ANSWER
    command: str | None = None
    function: str | None = None
    command_timeout_s: float = 30.0
    max_skew_s: float = 300.0
    delay_ms: float = 0.0
    bad_rate: float = 0.0
    error_status_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, not {self.max_concurrency}")
        for name in ("bad_rate", "error_status_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, not {value}")
        if self.delay_ms < 0:
            raise ConfigError(f"delay_ms must not be negative, not {self.delay_ms}")
        if self.command_timeout_s <= 0:
            raise ConfigError(f"command_timeout_s must be positive, not {self.command_timeout_s}")
