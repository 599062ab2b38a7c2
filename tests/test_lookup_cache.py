"""The lookup cache: bounded LRU, time-to-live by time bucket, failures never stored."""

from __future__ import annotations

from functions.lookups.cache import LookupCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_get_returns_what_was_put_and_none_otherwise() -> None:
    cache = LookupCache(10)
    assert cache.get("a") is None
    cache.put("a", {"x": 1.0})
    assert cache.get("a") == {"x": 1.0}
    assert cache.get("b") is None
    assert cache.size() == 1  # a miss leaves nothing behind


def test_size_is_bounded_least_recently_used_first() -> None:
    cache = LookupCache(2)
    cache.put("a", {"x": 1.0})
    cache.put("b", {"x": 2.0})
    cache.get("a")  # a is now more recent than b
    cache.put("c", {"x": 3.0})
    assert cache.get("b") is None
    assert cache.get("a") == {"x": 1.0} and cache.get("c") == {"x": 3.0}


def test_entries_expire_with_their_time_bucket() -> None:
    clock = Clock()
    cache = LookupCache(10, ttl=60, clock=clock)
    cache.put("a", {"x": 1.0})
    clock.now += 59.9 - clock.now % 60  # still the same bucket
    assert cache.get("a") == {"x": 1.0}
    clock.now += 0.2  # next bucket: the entry is never asked for again
    assert cache.get("a") is None


def test_no_ttl_keeps_entries_across_time() -> None:
    clock = Clock()
    cache = LookupCache(10, ttl=0, clock=clock)
    cache.put("a", {"x": 1.0})
    clock.now += 1e9
    assert cache.get("a") == {"x": 1.0}
