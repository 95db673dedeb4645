"""The python backend: a team's function `recognize(image_bytes)` in an importable module."""

import asyncio
import importlib
import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gateway.protocol.result_string import format_result
from sample_recognizer.backends.base import BackendError
from sample_recognizer.config import ConfigError


def load_function(spec: str) -> Callable[[bytes], Any]:
    """The callable named by `module:function` (`module:Class.method` works too).

    Raises ConfigError, in one line, when the spec is malformed, the module
    cannot be imported or the name is missing or not callable.
    """
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ConfigError(f"--function {spec!r} should be module:function, e.g. my_model:recognize")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"--function {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc})"
        ) from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(
                f"--function {spec!r}: {module_name!r} has no {attribute!r}"
            ) from None
    if not callable(target):
        raise ConfigError(f"--function {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def as_result_string(value: object, *, source: str) -> str | bytes:
    """A function's answer as a result string: kept when it is one, else formatted from
    (tag, score) pairs or a {tag: score} mapping; BackendError when it is neither.

    What models return is taken as it comes: a score may be any real number (numpy's
    `float32`, `int64`, ...; anything with `__float__`), a tag anything `str()` names
    (a class index such as `np.int64(3)`); bytes tags are read as UTF-8.
    """
    if isinstance(value, str | bytes):
        return value
    try:
        return format_result(_pairs(value))
    except (TypeError, ValueError) as exc:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:59] + "…"
        raise BackendError(
            f"{source} returned {shown}, not a result string or (tag, score) pairs: {exc}",
            todo=f"make {source} return a result string, (tag, score) pairs or {{tag: score}}",
        ) from None


def _pairs(value: object) -> list[tuple[str, float]]:
    """(tag, score) pairs of plain str and float; TypeError or ValueError saying why not."""
    items = value.items() if isinstance(value, Mapping) else value
    if not isinstance(items, Iterable):
        raise TypeError(f"a value of type {type(value).__name__} is not a list of pairs")
    pairs: list[tuple[str, float]] = []
    for item in items:
        if isinstance(item, str | bytes) or not isinstance(item, Iterable):
            raise TypeError(f"{item!r} is not a (tag, score) pair")
        tag, score = item  # ValueError when it is not a pair
        pairs.append((_tag(tag), _score(tag, score)))
    return pairs


def _tag(tag: object) -> str:
    if isinstance(tag, bytes):  # numpy's bytes_ too; str() would give "b'...'"
        return tag.decode("utf-8")  # UnicodeDecodeError is a ValueError
    return str(tag)  # a plain str of numpy's str_, np.int64(3) or any class label


def _score(tag: object, score: object) -> float:
    # bool is a numbers.Real too, but True as a score is a bug in the team's code.
    if isinstance(score, bool) or not (
        isinstance(score, numbers.Real) or hasattr(type(score), "__float__")
    ):
        raise TypeError(f"score {score!r} of tag {tag!r} is not a number")
    return float(score)  # type: ignore[arg-type]


class PythonBackend:
    """Calls the function named by `spec` with the image bytes: in one of `workers`
    threads, so a blocking model does not stall the server, or awaited when it is a
    coroutine function."""

    name = "python"

    def __init__(self, spec: str, *, workers: int) -> None:
        self.spec = spec
        self.function = load_function(spec)
        # Its own pool: the loop's default one would cap --concurrency at cpu count + 4.
        self.threads = ThreadPoolExecutor(workers, thread_name_prefix="recognizer")

    async def recognize(self, image: bytes) -> str | bytes:
        try:
            if inspect.iscoroutinefunction(self.function):
                value = await self.function(image)
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(self.threads, self.function, image)
        except Exception as exc:
            raise BackendError(
                f"{self.spec} raised {type(exc).__name__}: {exc}",
                todo=f"fix {self.spec}: call it on this image by hand to see the traceback",
            ) from None
        return as_result_string(value, source=self.spec)
