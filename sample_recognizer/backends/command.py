"""The command backend: any program that prints a result string for an image file."""

import asyncio
import os
import shlex
import shutil
import signal
import tempfile
from pathlib import Path

from sample_recognizer.backends.base import BackendError
from sample_recognizer.config import ConfigError

IMAGE_PLACEHOLDER = "{image}"


def _suffix(image: bytes) -> str:
    # Many models pick their decoder from the file name.
    if image.startswith(b"\x89PNG"):
        return ".png"
    if image.startswith(b"\xff\xd8"):
        return ".jpg"
    return ".img"


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    last = next((line for line in reversed(lines) if line), "(nothing on stderr)")
    return last if len(last) <= 200 else last[:199] + "…"


def _kill(process: asyncio.subprocess.Process) -> None:
    # The program runs in its own session, so a shell wrapper's children go with it.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class CommandBackend:
    """Runs `command` once per image, `{image}` replaced by the image's temporary path
    (appended as the last argument when the command has no `{image}`); its stdout is
    the answer. A non-zero exit or a timeout fails the request with stderr's last line."""

    name = "command"

    def __init__(self, command: str, *, timeout_s: float) -> None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"--command {command!r} cannot be split: {exc}") from None
        if not argv:
            raise ConfigError("--command is empty")
        if shutil.which(argv[0]) is None:
            raise ConfigError(f"--command: program {argv[0]!r} not found or not executable")
        if not any(IMAGE_PLACEHOLDER in arg for arg in argv):
            argv.append(IMAGE_PLACEHOLDER)
        self.argv = argv
        self.timeout_s = timeout_s

    async def recognize(self, image: bytes) -> bytes:
        with tempfile.TemporaryDirectory(prefix="recoghub-recognizer-") as folder:
            path = Path(folder) / f"image{_suffix(image)}"
            path.write_bytes(image)
            argv = [arg.replace(IMAGE_PLACEHOLDER, str(path)) for arg in self.argv]
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            try:
                stdout, stderr = await asyncio.wait_for(process.communicate(), self.timeout_s)
            except TimeoutError:
                raise BackendError(
                    f"command timed out after {self.timeout_s:g}s",
                    todo="make the command faster, or give it more time with --command-timeout",
                ) from None
            finally:
                if process.returncode is None:
                    _kill(process)
                    await process.wait()
        if process.returncode != 0:
            raise BackendError(
                f"command exited with status {process.returncode}: {_last_line(stderr)}",
                todo="run the command by hand on an image: it must print a result string "
                "and exit 0",
            )
        return stdout
