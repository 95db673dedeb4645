"""Pluggable backends: what actually looks at the image. `make_backend` picks one by name."""

from sample_recognizer.backends.base import Backend, BackendError
from sample_recognizer.config import ConfigError, RecognizerConfig

BACKENDS = ("dummy", "command", "python", "demo")

__all__ = ["BACKENDS", "Backend", "BackendError", "make_backend"]


def make_backend(config: RecognizerConfig) -> Backend:
    """The backend `config.backend` names, set up from its options.

    Raises ConfigError for an unknown backend or a missing or unusable option
    (a command that is not found, a function that cannot be imported, ...).
    """
    # Imported here so that a recognizer pays only for the backend it runs.
    if config.backend == "dummy":
        from sample_recognizer.backends.dummy import DummyBackend

        return DummyBackend(config.answer)
    if config.backend == "command":
        from sample_recognizer.backends.command import CommandBackend

        if not config.command:
            raise ConfigError(
                '--backend command needs --command, e.g. --command "python my_model.py {image}"'
            )
        return CommandBackend(config.command, timeout_s=config.command_timeout_s)
    if config.backend == "python":
        from sample_recognizer.backends.python import PythonBackend

        if not config.function:
            raise ConfigError(
                "--backend python needs --function module:function, e.g. my_model:recognize"
            )
        return PythonBackend(config.function, workers=config.max_concurrency)
    if config.backend == "demo":
        from sample_recognizer.backends.demo import DemoBackend

        return DemoBackend()
    raise ConfigError(f"unknown backend {config.backend!r}; choose one of {', '.join(BACKENDS)}")
