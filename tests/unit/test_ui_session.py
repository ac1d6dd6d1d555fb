"""The UI's session cookie and its login redirect: signed by the key, checked statelessly."""

from __future__ import annotations

import hashlib

import pytest

from ingest_api.ui.access import safe_next
from ingest_api.ui.session import SessionSigner

KEY_A, KEY_B = hashlib.sha256(b"read-a").digest(), hashlib.sha256(b"read-b").digest()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_accepted_by_another_worker_with_the_same_keys() -> None:
    clock = Clock()
    value = SessionSigner((KEY_A, KEY_B), lifetime_s=60, clock=clock).issue(KEY_B)
    other = SessionSigner((KEY_B, KEY_A), lifetime_s=60, clock=clock)  # built separately
    session = other.verify(value)
    assert session is not None
    assert session.key_id == SessionSigner.key_id(KEY_B)
    assert session.csrf
    assert session.csrf not in value
    assert "read-b" not in value
    assert KEY_B.hex() not in value


def test_expiry_forgery_and_removed_keys_end_a_session() -> None:
    clock = Clock()
    signer = SessionSigner((KEY_A,), lifetime_s=60, clock=clock)
    value = signer.issue(KEY_A)
    version, expires, nonce, key_id, mac = value.split(".")
    assert signer.verify(f"{version}.{int(expires) + 3600}.{nonce}.{key_id}.{mac}") is None
    assert signer.verify(f"{version}.{expires}.{nonce}x.{key_id}.{mac}") is None
    assert signer.verify(value[:-2] + ("AA" if not value.endswith("AA") else "BB")) is None
    assert SessionSigner((KEY_B,), lifetime_s=60, clock=clock).verify(value) is None
    clock.now += 59
    assert signer.verify(value) is not None
    clock.now += 1
    assert signer.verify(value) is None


@pytest.mark.parametrize(
    "value", [None, "", "v1", "v1.x.n.k.m", "v2.1.n.k.m", "." * 4, "v1." + "9" * 300, "ä.1.2.3.4"]
)
def test_malformed_cookies_are_no_session(value: str | None) -> None:
    assert SessionSigner((KEY_A,), lifetime_s=60).verify(value) is None


def test_two_logins_have_different_csrf_tokens() -> None:
    signer = SessionSigner((KEY_A,), lifetime_s=60)
    first, second = (signer.verify(signer.issue(KEY_A)) for _ in range(2))
    assert first is not None
    assert second is not None
    assert first.csrf != second.csrf


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/ui/runs/r1?x=1", "/ui/runs/r1?x=1"),
        ("/ui/usage", "/ui/usage"),
        ("https://evil.example/ui/runs", "/ui/runs"),
        ("//evil.example/ui/runs", "/ui/runs"),
        ("/\\evil.example", "/ui/runs"),
        ("/ui\\..\\x", "/ui/runs"),
        ("/telemetry/runs", "/ui/runs"),
        ("javascript:alert(1)", "/ui/runs"),
        ("", "/ui/runs"),
        (None, "/ui/runs"),
    ],
)
def test_after_login_only_ui_paths_are_followed(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected
