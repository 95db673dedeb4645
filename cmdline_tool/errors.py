"""What went wrong, said once: which side failed, what happened and what to do.

Every failure the team tool reports is a `CliError`; the commands print it as one line
(`error: <message> — <hint>`) or, with `--json`, as one JSON object. Its `side` names
who has to act:

    side          meaning                                codes
    "local"       this machine: arguments, files         usage, file_not_found, no_images,
                                                         not_an_image, unreadable, not_a_team,
                                                         not_supported
    "hub"         the hub, or the way to it              hub_unreachable, hub_timeout,
                                                         hub_error, hub_not_ok, not_a_hub,
                                                         unauthorized, forbidden, hidden_results,
                                                         not_found, wrong_guid_kind,
                                                         image_too_large,
                                                         not_an_image, invalid_input,
                                                         service_disabled, no_instances,
                                                         rate_limited, quota_exceeded,
                                                         phase_not_open, phase_closed
    "recognizer"  the team's recognizer, seen by the     connect_error, timeout, http_error,
                  hub (or its webhook receiver)          bad_format, too_large, ping_failed,
                                                         notification_not_delivered
    "cli"         this tool itself                       internal (a bug), interrupted
"""

from dataclasses import dataclass
from typing import Literal

Side = Literal["local", "hub", "recognizer", "cli"]


@dataclass(eq=False)
class CliError(Exception):
    """A failure with the side that failed, a machine `code`, a message and a hint."""

    side: Side
    code: str
    message: str
    hint: str | None = None
    raw: str | None = None

    def __str__(self) -> str:
        return self.line()

    def line(self) -> str:
        """The one line a person reads: what happened — what to do."""
        return self.message + (f" — {self.hint}" if self.hint else "")

    def as_json(self) -> dict[str, object]:
        return {
            "side": self.side,
            "code": self.code,
            "error": self.message,
            "hint": self.hint,
            "raw": self.raw,
        }
