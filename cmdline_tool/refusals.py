"""What an error answer of the hub means for the team, as one CliError.

The hub answers errors as `{"detail", "code", ...}` (SPEC §3); a relayed request that
the recognizer failed is 502 (504 on timeout) with `code` = the outcome (SPEC §2) and
the recognizer's `raw` body. `refusal` names the side that has to act and what to do.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from cmdline_tool.errors import CliError
from cmdline_tool.times import local_time

RECOGNIZER_OUTCOMES = ("timeout", "connect_error", "http_error", "bad_format", "too_large")
RAW_SHOWN_CHARS = 120
# The dispatcher's detail of a connect_error: "cannot reach <instance>: <why>".
_CANNOT_REACH = re.compile(r"cannot reach (\S+?): (.+)", re.DOTALL)
GUID_HINT = "give --service your service's GUID and --provider your provider's GUID"
# How the hub's detail of a 401 starts (gateway/errors.py); the detail already says the fix.
SIGNATURE_REJECTED = "the recognizer rejected the hub's signature"
SECRET_HINT = (
    "its environment variable is RECOGHUB_RECOGNIZER_SECRET; the secret is shown when the "
    "service is created (ask the organizer); the recognizer's log names each request it refused"
)


# What to do when the hub refuses a run or dataset to a team.
SUBJECT_HINTS = {
    "run": "your key sees only the runs your services take part in: list them with "
    "`recoghub-cli runs`",
    "dataset": "list the datasets open to team dry runs with `recoghub-cli datasets`, "
    "or ask the organizer to open one",
    "challenge": "list the challenges you may enter with `recoghub-cli challenges` and "
    "their phases with `recoghub-cli phases SLUG`",
    "submission": "list your submissions with `recoghub-cli submissions SLUG PHASE`",
}
# A challenge phase's refusals (SPEC §12): its window, its submission limit.
WINDOW_CODES = ("phase_not_open", "phase_closed", "phase_not_closed")


@dataclass(frozen=True)
class Subject:
    """The GUID a request is about, and the option it came from, for error messages."""

    kind: str  # "service", "provider", "run" or "dataset"
    guid: str
    option: str


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_body(response: httpx.Response) -> dict[str, Any] | None:
    """The hub's `{"detail", "code", ...}`, or None when the answer is not the hub's."""
    body = json_body(response)
    if isinstance(body, dict) and "detail" in body:
        return body
    return None


def refusal(response: httpx.Response, hub_url: str, subject: Subject | None = None) -> CliError:
    """The CliError for an error answer of the hub (any status but the expected one)."""
    status = response.status_code
    body = error_body(response)
    if body is None:
        if status >= 500:
            return CliError(
                "hub",
                "hub_error",
                f"the hub at {hub_url} answered HTTP {status} without a RecogHub error",
                "is the hub running behind its proxy? try again or tell the organizer",
            )
        return CliError(
            "hub",
            "not_a_hub",
            f"the server at {hub_url} answered HTTP {status} to {response.request.url.path}, "
            "not as a RecogHub hub does",
            "check that --hub / RECOGHUB_HUB names the hub, not a recognizer",
        )
    detail = str(body.get("detail"))
    code = str(body.get("code") or "")
    if status in (502, 504) and code in RECOGNIZER_OUTCOMES:
        return recognizer_failure(body)
    if status == 401:
        return CliError(
            "hub",
            "unauthorized",
            f"the hub refused the API key ({detail})",
            "check --key / RECOGHUB_API_KEY: the key shown once when your provider was created",
        )
    if status == 429 and code == "quota_exceeded" and "next_allowed_at" in body:
        return phase_quota(body)
    if status == 409 and code in WINDOW_CODES and "opens_at" in body:
        return CliError(
            "hub",
            code,
            detail,
            f"the phase takes submissions from {local_time(body['opens_at'])} to "
            f"{local_time(body['closes_at'])}; see `recoghub-cli phases SLUG`",
        )
    if status == 429 and code == "quota_exceeded":
        return CliError(
            "hub",
            code,
            detail,
            "try again then; the organizer sets the daily quota of team dry runs",
        )
    if (
        status == 403
        and subject is not None
        and subject.kind == "challenge"
        and "publish" in detail
    ):
        # A phase that shows no score before the organizer publishes its ranking.
        return CliError(
            "hub",
            "forbidden",
            detail,
            "the phase shows its ranking once the organizer publishes it",
        )
    if (
        status == 403
        and subject is not None
        and (
            subject.kind in ("run", "challenge")
            or (subject.kind == "dataset" and "not open" in detail)
        )
    ):
        return CliError("hub", "forbidden", detail, SUBJECT_HINTS[subject.kind])
    if status == 403 and code == "hidden_results":
        # The team's own service: the key is right, the run is an evaluation.
        return CliError(
            "hub",
            code,
            detail,
            "an evaluation's per-image results and failures stay with the organizer; read "
            "its leaderboard once published (`recoghub-cli leaderboard RUN`), and start a dry "
            "run (`recoghub-cli dryrun`) to see your own per-image results",
        )
    if status == 403:
        if subject is not None and subject.kind == "provider":
            return CliError(
                "hub",
                "forbidden",
                f"your API key is not the key of provider {subject.guid} ({detail})",
                "pass your own provider GUID to --provider and its API key to --key",
            )
        return CliError(
            "hub",
            "forbidden",
            f"the hub refused this to your API key ({detail})",
            "use the API key of the provider that owns the service, or ask the organizer",
        )
    if status == 404 and code == "wrong_guid_kind":
        hint = GUID_HINT
        if subject is not None:
            hint = f"give {subject.option} your {subject.kind}'s GUID; the organizer can tell you"
        return CliError("hub", "wrong_guid_kind", detail, hint)
    if status == 404 and subject is not None and subject.kind in SUBJECT_HINTS:
        return CliError("hub", "not_found", detail, SUBJECT_HINTS[subject.kind])
    if status == 404 and subject is not None:
        return CliError(
            "hub",
            "not_found",
            f"the hub knows no {subject.kind} {subject.guid} ({detail})",
            f"check {subject.option}; the organizer can tell you your GUIDs",
        )
    if status == 409 and code in ("service_disabled", "no_instances"):
        return CliError(
            "hub",
            code,
            detail,
            "ask the organizer"
            + (" to enable the service" if code == "service_disabled" else " to add endpoints"),
        )
    if status == 413:
        return CliError(
            "hub",
            "image_too_large",
            f"the hub refused the image as too large ({detail})",
            "send a smaller image; the organizer sets the limit",
        )
    if status == 415:
        return CliError(
            "hub",
            "not_an_image",
            f"the hub says this is not an image it accepts ({detail})",
            "send a JPEG or PNG file",
        )
    if status == 429 and code == "rate_limited":
        wait = response.headers.get("retry-after", "a few")
        return CliError(
            "hub",
            code,
            f"the hub limits how often your key may do this ({detail})",
            f"wait {wait} s and try again",
        )
    if status >= 500:
        return CliError(
            "hub",
            "hub_error",
            f"the hub failed: HTTP {status} {code}: {detail}",
            "try again; if it keeps happening, tell the organizer",
        )
    return CliError("hub", code or "hub_error", f"the hub answered HTTP {status} {code}: {detail}")


def phase_quota(body: dict[str, Any]) -> CliError:
    """A phase's submission limit used up: when the next is allowed, in local time and
    UTC, or that none is left before the phase closes."""
    at = body.get("next_allowed_at")
    if at:
        hint = f"your next submission is allowed at {local_time(at)}"
    else:
        hint = "your team has no submission left in this phase before it closes"
    return CliError("hub", "quota_exceeded", str(body.get("detail")), hint)


def recognizer_failure(body: dict[str, Any]) -> CliError:
    """A 502/504 of the relay: what the team's recognizer did, as the hub saw it."""
    code = str(body.get("code"))
    detail = str(body.get("detail"))
    raw = body.get("raw")
    raw = raw if isinstance(raw, str) else None
    if code == "connect_error":
        where = _CANNOT_REACH.match(detail)
        at, why = (f" at {where[1]}", where[2]) if where else (_at(body), detail)
        return CliError(
            "recognizer",
            code,
            f"the hub cannot reach your recognizer{at} ({why})",
            "is it running and reachable from the hub host?",
        )
    if code == "timeout":
        return CliError(
            "recognizer",
            code,
            f"your recognizer did not answer the hub in time ({detail})",
            "make it answer faster or check that it is not stuck; the organizer sets the timeout",
        )
    if code == "http_error" and detail.startswith(SIGNATURE_REJECTED):
        return CliError("recognizer", code, detail, SECRET_HINT, raw)
    if code == "http_error":
        return CliError(
            "recognizer",
            code,
            f"your recognizer answered the hub with an error ({detail})",
            "check its log: it must answer 200 with a result string",
            raw,
        )
    if code == "bad_format":
        shown = f"; raw: {shown_raw(raw)}" if raw is not None else ""
        return CliError(
            "recognizer",
            code,
            f"your recognizer's answer breaks the result-string format: {detail}{shown}",
            'answer "tag:score" entries separated by ";", e.g. dog:0.95;cat:0.05',
            raw,
        )
    return CliError(
        "recognizer",
        code,
        f"your recognizer's answer is too large ({detail})",
        "answer at most 64 KiB: send fewer tags",
        raw,
    )


def shown_raw(raw: str) -> str:
    """A recognizer's body, quoted and cut short, for one line."""
    if len(raw) > RAW_SHOWN_CHARS:
        raw = raw[: RAW_SHOWN_CHARS - 1] + "…"
    return json.dumps(raw, ensure_ascii=False)


def _at(body: dict[str, Any]) -> str:
    attempts = body.get("attempts")
    if not isinstance(attempts, list):
        return ""
    instances = list(
        dict.fromkeys(
            str(a["instance"]) for a in attempts if isinstance(a, dict) and a.get("instance")
        )
    )
    return f" at {', '.join(instances)}" if instances else ""
