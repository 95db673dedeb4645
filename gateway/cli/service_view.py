"""How a service's instances read in both CLIs' `service show` (`recoghub`, `recoghub-cli`):
its endpoints, or "none (dial-out)" when its recognizers connect out to the hub (SPEC §10),
and whether one is connected now."""

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
