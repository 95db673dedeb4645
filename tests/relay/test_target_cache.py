"""The relay's per-process cache of (key, service) -> target."""

import asyncio
import time
from types import SimpleNamespace

import pytest

from gateway.auth import hash_token
from gateway.dispatch.answers import Target
from gateway.errors import Unauthorized
from gateway.relay import service as relay_service
from gateway.relay.target_cache import TargetCache

TARGET = Target("service-guid", "provider-guid", ("http://127.0.0.1:1",), "secret")


def test_a_cached_target_is_returned_for_the_same_key_and_service_only() -> None:
    cache = TargetCache(ttl_s=60)
    cache.put("key-a", "service-guid", TARGET)

    assert cache.get("key-a", "service-guid") is TARGET
    assert cache.get("key-b", "service-guid") is None
    assert cache.get("key-a", "other-guid") is None


def test_an_expired_target_is_gone() -> None:
    cache = TargetCache(ttl_s=0)
    cache.put("key-a", "service-guid", TARGET)

    assert cache.get("key-a", "service-guid") is None


def test_the_cache_stays_bounded_and_can_be_cleared() -> None:
    cache = TargetCache(ttl_s=60, max_entries=3)
    for n in range(10):
        cache.put(f"key-{n}", "service-guid", TARGET)

    assert cache.get("key-9", "service-guid") is TARGET
    assert sum(cache.get(f"key-{n}", "service-guid") is not None for n in range(10)) <= 3
    cache.clear()
    assert cache.get("key-9", "service-guid") is None


def test_a_look_up_that_started_before_a_clear_is_not_served_after_it() -> None:
    """A relay reading the database while the service is deleted must not cache it again."""
    cache = TargetCache(ttl_s=60)
    started_in = cache.generation
    cache.clear()  # the registry changed the service meanwhile
    cache.put("key-a", "service-guid", TARGET, generation=started_in)

    assert cache.get("key-a", "service-guid") is None
    cache.put("key-a", "service-guid", TARGET, generation=cache.generation)
    assert cache.get("key-a", "service-guid") is TARGET


class _Dispatcher:
    def instances(self, target: Target) -> tuple[str, ...]:
        return target.instances


def _state() -> SimpleNamespace:
    settings = SimpleNamespace(admin_token=None, relay_open_to_all_providers=False)
    return SimpleNamespace(
        relay_targets=None, settings=settings, sessions=None, dispatcher=_Dispatcher()
    )


def test_requests_that_miss_together_share_one_look_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy caller's entry expiring sends all its requests in flight to the database
    at once: one look-up serves them, and its answer is cached."""
    looked_up: list[str] = []

    def resolve(*_: object, token: str | None, **__: object) -> Target:
        looked_up.append(token or "")
        time.sleep(0.05)
        return TARGET

    monkeypatch.setattr(relay_service, "resolve_target", resolve)
    state = _state()

    async def burst() -> list[Target]:
        return await asyncio.gather(
            *(
                relay_service.relay_target(state, token="key", guid="service-guid")
                for _ in range(16)
            )  # type: ignore[arg-type]
        )

    assert asyncio.run(burst()) == [TARGET] * 16
    assert looked_up == ["key"]
    assert relay_service.target_cache(state).get(hash_token("key"), "service-guid") is TARGET  # type: ignore[arg-type]


def test_a_refused_look_up_is_refused_to_every_sharer_and_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked_up: list[str] = []

    def resolve(*_: object, token: str | None, **__: object) -> Target:
        looked_up.append(token or "")
        time.sleep(0.05)
        raise Unauthorized("unknown key")

    monkeypatch.setattr(relay_service, "resolve_target", resolve)
    state = _state()

    async def burst() -> list[object]:
        return await asyncio.gather(
            *(
                relay_service.relay_target(state, token="bad", guid="service-guid")
                for _ in range(4)
            ),  # type: ignore[arg-type]
            return_exceptions=True,
        )

    outcomes = asyncio.run(burst())
    assert all(isinstance(o, Unauthorized) for o in outcomes)
    assert looked_up == ["bad"]
    asyncio.run(burst())
    assert looked_up == ["bad", "bad"]  # refusals are not cached
