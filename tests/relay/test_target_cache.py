"""The relay's per-process cache of (key, service) -> target."""

from gateway.dispatch.answers import Target
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
