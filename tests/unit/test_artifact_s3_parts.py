"""How the s3 store cuts a stream into multipart parts (no network needed)."""

from __future__ import annotations

import pytest

from sdk.artifacts.stores.s3 import GiB, MiB, S3Store


@pytest.fixture
def store() -> S3Store:
    return S3Store(bucket="unit", endpoint_url="http://127.0.0.1:9", part_size=4)


def test_parts_are_exact_slices_of_the_stream_whatever_the_chunks(store: S3Store) -> None:
    head = bytearray(b"abcdef")  # the buffer that crossed the threshold
    rest = iter([b"g", b"hijklmnop", b"", b"qr"])
    parts = [bytes(p) for p in store._parts(head, rest)]
    assert parts == [b"abcd", b"efgh", b"ijkl", b"mnop", b"qr"]
    assert head == bytearray()  # released once copied into parts


def test_an_exact_multiple_has_no_empty_last_part(store: S3Store) -> None:
    assert [bytes(p) for p in store._parts(bytearray(b"abcd"), iter([b"efgh"]))] == [
        b"abcd",
        b"efgh",
    ]


def test_part_size_doubles_every_thousand_parts_to_fit_any_size() -> None:
    store = S3Store(bucket="unit", endpoint_url="http://127.0.0.1:9", part_size=8 * MiB)
    assert [store._part_size_for(n) for n in (1, 1000, 1001, 2001, 9001)] == [
        8 * MiB,
        8 * MiB,
        16 * MiB,
        32 * MiB,
        8 * MiB * 2**9,
    ]
    total = sum(store._part_size_for(n) for n in range(1, 10_001))
    assert total > 5 * 1024 * GiB  # S3's largest object: 5 TiB
    assert max(store._part_size_for(n) for n in range(1, 10_001)) <= 5 * GiB
