"""The MS-NLMP §6 primitives in harness.ntlm.crypto."""

from __future__ import annotations

import pytest

from harness.ntlm.crypto import RC4Stream, crc32, des, desl, hmac_md5, rc4k, xor_bytes

LM_MAGIC = b"KGS!@#$%"
# MS-NLMP §4.2.1: Passwd_oem_uppercase_padded14 = OEM(UpperCase("Password")) padded to 14.
PASSWD_OEM_UPPER_14 = bytes.fromhex("50415353574f5244000000000000")
# MS-NLMP §4.2.2.4: Plaintext, and Checksum_CRC32(Message) printed for it.
PLAINTEXT = bytes.fromhex("50006c00610069006e007400650078007400")


def test_des_lm_magic_first_half() -> None:
    # MS-NLMP §4.2.2.1.1: DES(UpperCase(Passwd)[0..6], "KGS!@#$%")
    assert des(PASSWD_OEM_UPPER_14[:7], LM_MAGIC).hex() == "e52cac67419a9a22"


def test_des_lm_magic_second_half() -> None:
    # MS-NLMP §4.2.2.1.1: DES(UpperCase(Passwd)[7..13], "KGS!@#$%")
    assert des(PASSWD_OEM_UPPER_14[7:], LM_MAGIC).hex() == "4a3b108f3fa6cb6d"


def test_desl_is_three_des_blocks() -> None:
    # MS-NLMP §6 DESL: DES(K[0..6],D) ‖ DES(K[7..13],D) ‖ DES(ConcatenationOf(K[14..15], Z(5)),D)
    key = bytes(range(1, 17))
    block = LM_MAGIC
    expected = des(key[:7], block) + des(key[7:14], block) + des(key[14:] + bytes(5), block)
    assert desl(key, block) == expected
    assert len(desl(key, block)) == 24


def test_crc32_of_spec_plaintext() -> None:
    # MS-NLMP §4.2.2.4: Checksum (CRC32(Message)) = 7d 84 aa 93
    assert crc32(PLAINTEXT).hex() == "7d84aa93"


def test_hmac_md5_rfc2104() -> None:
    # RFC 2104 appendix (test vector 1): key = 0x0b * 16, data = "Hi There".
    assert hmac_md5(b"\x0b" * 16, b"Hi There").hex() == "9294727a3638bb1c13f48ef8158bfc9d"


def test_rc4k_rfc6229_40_bit_key() -> None:
    # RFC 6229 §2, key 0x0102030405, keystream offsets 0 and 16.
    stream = rc4k(bytes.fromhex("0102030405"), bytes(32))
    assert stream.hex() == (
        "b2396305f03dc027ccc3524a0a1118a8" "6982944f18fc82d589c403a47a0d0919"
    )


@pytest.mark.parametrize("length", [0, 1, 16, 4095, 4096, 4097, 9000])
def test_rc4k_equals_fresh_stream(length: int) -> None:
    key = bytes.fromhex("55" * 16)
    data = bytes((i * 31 + 7) & 0xFF for i in range(length))
    assert RC4Stream(key).apply(data) == rc4k(key, data)


def test_rc4_stream_is_continuous_across_calls() -> None:
    key = b"continuous"
    reference = rc4k(key, bytes(12000))
    stream = RC4Stream(key)
    pieces = [stream.keystream(n) for n in (1, 4094, 2, 3000, 1200, 3703)]
    assert b"".join(pieces) == reference


def test_rc4_stream_decrypts_what_it_encrypts() -> None:
    key = b"roundtrip-key-16"
    data = bytes(range(256)) * 20
    assert RC4Stream(key).apply(RC4Stream(key).apply(data)) == data


@pytest.mark.parametrize(
    ("before", "tentative"),
    [(4000, 500), (4095, 1), (4096, 4096), (10, 9000), (8191, 2), (0, 4097)],
)
def test_rc4_stream_rewind_over_chunk_boundary(before: int, tentative: int) -> None:
    key = b"rewind-key"
    reference = rc4k(key, bytes(before + tentative + 5000))
    stream = RC4Stream(key)
    assert stream.keystream(before) == reference[:before]
    mark = stream.mark()
    assert mark == before
    assert stream.keystream(tentative) == reference[before : before + tentative]
    stream.rewind(mark)
    # After the rewind the same keystream comes again, then the stream continues normally.
    assert stream.keystream(tentative) == reference[before : before + tentative]
    tail = stream.keystream(5000)
    assert tail == reference[before + tentative :]


def test_rc4_stream_repeated_mark_and_rewind() -> None:
    # A sequence of failed (rewound) and accepted (kept) tentative reads, as a context sees
    # when VerifySignature fails and succeeds alternately with messages of growing size.
    key = bytes(range(1, 17))
    reference = rc4k(key, bytes(40000))
    stream = RC4Stream(key)
    position = 0
    for size in (100, 3000, 4096, 5000, 7, 6000):
        mark = stream.mark()
        stream.keystream(size + 1234)  # rejected message
        stream.rewind(mark)
        assert stream.keystream(size) == reference[position : position + size]
        position += size


def test_xor_bytes_values() -> None:
    assert xor_bytes(b"\x0f\xf0\xaa", b"\xff\xff\x55") == b"\xf0\x0f\xff"
    assert xor_bytes(b"", b"") == b""


def test_xor_bytes_keeps_length_with_zero_result() -> None:
    # Leading and trailing zero bytes of the result must survive the integer conversion.
    assert xor_bytes(b"\x00\x01\x00", b"\x00\x01\x00") == b"\x00\x00\x00"
    assert xor_bytes(b"\x00\x00\x80", b"\x00\x00\x00") == b"\x00\x00\x80"
    assert xor_bytes(b"\x80\x00\x00", b"\x00\x00\x00") == b"\x80\x00\x00"


def test_xor_bytes_matches_bytewise_xor() -> None:
    left = bytes((i * 13) & 0xFF for i in range(5000))
    right = bytes((i * 29 + 3) & 0xFF for i in range(5000))
    assert xor_bytes(left, right) == bytes(a ^ b for a, b in zip(left, right, strict=True))


@pytest.mark.parametrize("size", [0, 15, 4095, 4096, 70000])
def test_hmac_md5_parts_is_hmac_of_the_concatenation(size: int) -> None:
    from harness.ntlm.crypto import hmac_md5_parts

    body = bytes((i * 7) & 0xFF for i in range(size))
    assert hmac_md5_parts(b"k" * 16, b"\x01\x00\x00\x00", body) == hmac_md5(
        b"k" * 16, b"\x01\x00\x00\x00" + body
    )


def test_rc4_stream_rewind_twice_reuses_given_back_keystream() -> None:
    # A rejected message, then a shorter rejected one (reading part of the keystream given
    # back), then the accepted one: the keystream continues exactly where it should.
    key = b"twice"
    reference = rc4k(key, bytes(10000))
    stream = RC4Stream(key)
    for size in (3000, 1000):
        mark = stream.mark()
        stream.keystream(size)
        stream.rewind(mark)
    assert stream.keystream(5000) == reference[:5000]
    mark = stream.mark()
    stream.keystream(10)
    with pytest.raises(ValueError, match="latest mark"):
        stream.rewind(mark - 1)
