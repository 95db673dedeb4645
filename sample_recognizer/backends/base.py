"""What every backend is, and how it fails."""

from typing import Protocol


class Backend(Protocol):
    """Turns image bytes into a result string (not yet validated)."""

    name: str

    async def recognize(self, image: bytes) -> str | bytes: ...


class BackendError(Exception):
    """A request the backend could not answer; `status` is the HTTP status to answer with,
    `todo` what the team should do about it (logged with the detail)."""

    def __init__(self, detail: str, *, status: int = 500, todo: str = "check the backend") -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.todo = todo
