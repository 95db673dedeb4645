"""How a service reads in both CLIs (`recoghub`, `recoghub-cli`): its name beside its
team's in tables that must not cut a word at 80 columns, and in `service show` its
endpoints, or "none (dial-out)" when its recognizers connect out to the hub (SPEC §10),
and whether one is connected now."""

from collections.abc import Iterable
from typing import Any


def endpoints_text(service: dict[str, Any], *, separator: str = ", ") -> str:
    """The endpoints joined by `separator`, or "none (dial-out)"."""
    return separator.join(service.get("endpoints") or []) or "none (dial-out)"


def connected_text(service: dict[str, Any]) -> str | None:
    """Whether recognizers are connected out to the hub process that answered, e.g.
    "1 connected (svc/4f2a)" or "none connected: start one with `recoghub-recognizer
    --connect`"; None when the hub did not say (a list, or an older hub)."""
    connected = service.get("connected")
    if connected is None:
        return None
    if not connected:
        hint = (
            "" if service.get("endpoints") else ": start one with `recoghub-recognizer --connect`"
        )
        return f"none connected{hint}"
    return f"{len(connected)} connected ({', '.join(connected)})"


def team_service(provider: str, service: str) -> str:
    """A service named with its team, "Team A / digits-logreg": spaces around the slash
    let a narrow table wrap it between words, never inside one."""
    return f"{provider} / {service}"


def longest_word(texts: Iterable[str], *, at_most: int = 32) -> int:
    """The width of the longest word (white-space separated) in `texts`, capped at
    `at_most`: a column at least this wide wraps its cells between words only."""
    return min(at_most, max((len(w) for t in texts for w in t.split()), default=1))
