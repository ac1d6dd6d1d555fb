"""The ingest API's key ring and failed-authentication limiter, on a fake clock."""

from __future__ import annotations

from pydantic import SecretStr

from ingest_api.auth import FailureLimiter, KeyRing, Scope, client_key
from sdk.settings import WdpSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(
    clock: Clock, *, limit: int = 3, window_s: float = 60, clients: int = 100
) -> FailureLimiter:
    return FailureLimiter(limit=limit, window_s=window_s, max_clients=clients, clock=clock)


def test_a_client_is_blocked_after_limit_failures_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    lim = limiter(clock)
    for _ in range(3):
        assert lim.retry_after("a") is None
        lim.record_failure("a")
        clock.now += 10
    # Failures at 1000, 1010, 1020; now 1030: the first leaves the window at 1060.
    assert lim.retry_after("a") == 30
    assert lim.retry_after("b") is None  # another client is not affected
    clock.now = 1060.5
    assert lim.retry_after("a") is None  # a sliding window: one slot is free again
    lim.record_failure("a")
    assert lim.retry_after("a") == 10  # the one at 1010 leaves at 1070


def test_retry_after_is_at_least_one_second() -> None:
    clock = Clock()
    lim = limiter(clock, limit=1, window_s=0.2)
    lim.record_failure("a")
    assert lim.retry_after("a") == 1


def test_memory_is_bounded_by_forgetting_the_least_recently_failing_client() -> None:
    clock = Clock()
    lim = limiter(clock, limit=2, clients=3)
    for client in ("a", "b", "c", "b", "c", "a"):  # all blocked; "b" failed least recently
        lim.record_failure(client)
    lim.record_failure("d")
    assert len(lim) == 3
    assert lim.retry_after("b") is None  # forgotten
    assert lim.retry_after("a") == 60
    assert lim.retry_after("c") == 60
    for i in range(1000):
        lim.record_failure(f"new-{i}")
    assert len(lim) == 3


def test_expired_clients_are_dropped_when_looked_up() -> None:
    clock = Clock()
    lim = limiter(clock)
    lim.record_failure("a")
    clock.now += 61
    assert lim.retry_after("a") is None
    assert len(lim) == 0


def test_a_limit_of_zero_turns_the_limiter_off() -> None:
    lim = limiter(Clock(), limit=0)
    for _ in range(10):
        lim.record_failure("a")
    assert lim.retry_after("a") is None
    assert len(lim) == 0


def test_client_keys_group_ipv6_by_64_and_unmap_ipv4() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key(None) == "unknown"
    assert client_key("testclient") == "testclient"


def test_keys_grant_their_scopes_only() -> None:
    settings = WdpSettings(
        ingest_api_keys=SecretStr("in-1, in-2"), metrics_api_key=SecretStr(" scrape ")
    )
    ring = KeyRing.from_settings(settings)
    assert ring.scopes_of(b"in-1") == {Scope.INGEST}
    assert ring.scopes_of(b"in-2") == {Scope.INGEST}
    assert ring.scopes_of(b"scrape") == {Scope.METRICS}
    assert ring.scopes_of(b"in-") == frozenset()
    assert ring.scopes_of(b"") == frozenset()
    shared = KeyRing.from_settings(
        WdpSettings(ingest_api_keys=SecretStr("k"), metrics_api_key=SecretStr("k"))
    )
    assert shared.scopes_of(b"k") == {Scope.INGEST, Scope.METRICS}


def test_read_keys_grant_reading_only() -> None:
    ring = KeyRing.from_settings(
        WdpSettings(ingest_api_keys=SecretStr("in"), read_api_keys=SecretStr(" r1 ,r2,"))
    )
    assert ring.scopes_of(b"r1") == ring.scopes_of(b"r2") == {Scope.READ}
    assert ring.scopes_of(b"in") == {Scope.INGEST}
    assert ring.scopes_of(b"") == frozenset()


def test_disabled_auth_opens_reads_only_while_no_read_key_is_set() -> None:
    from ingest_api.auth import Authenticator
    from ingest_api.metrics import Metrics

    def open_scopes(**settings: object) -> frozenset[Scope]:
        return Authenticator.from_settings(WdpSettings(**settings), Metrics()).open_scopes  # type: ignore[arg-type]

    assert open_scopes(ingest_auth_disabled=True) == {Scope.INGEST, Scope.READ, Scope.METRICS}
    assert Scope.READ not in open_scopes(ingest_auth_disabled=True, read_api_keys=SecretStr("r"))
    assert Scope.READ not in open_scopes(ingest_api_keys=SecretStr("k"))
