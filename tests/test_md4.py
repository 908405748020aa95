"""MD4 against the test suite of RFC 1320, appendix A.5."""

from __future__ import annotations

import pytest

from harness.ntlm.md4 import md4

# RFC 1320 appendix A.5 ("Test suite"): MD4 ("...") = digest.
RFC1320_A5 = [
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
    (b"message digest", "d9130a8164549fe818874806e1c7014b"),
    (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
    (
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        "043f8582f241db351ce627e153e7f0e4",
    ),
    (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
]


@pytest.mark.parametrize(("message", "digest"), RFC1320_A5)
def test_rfc1320_a5(message: bytes, digest: str) -> None:
    assert md4(message).hex() == digest


def test_matches_independent_md4_across_padding_boundaries() -> None:
    # Differential check against pyspnego's separate pure-Python MD4 for every length up to
    # three blocks, covering the one- vs two-block padding cases of RFC 1320 §3.1-3.2.
    other = pytest.importorskip("spnego._ntlm_raw.md4").md4
    for n in range(0, 193):
        message = bytes((7 * i + n) & 0xFF for i in range(n))
        assert md4(message) == other(message), n
