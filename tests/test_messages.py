"""NTLM message wire format (MS-NLMP §2.2) against the §4.2 example messages."""

from __future__ import annotations

import struct

import pytest

from harness.ntlm import messages as m

H = bytes.fromhex

# MS-NLMP §4.2.2.3 (NTLM v1)
V1_CHALLENGE = H(
    "4e544c4d53535000020000000c000c0038000000338202e20123456789abcdef000000000000000000000000"
    "00000000060070170000000f530065007200760065007200"
)
V1_AUTHENTICATE = H(
    "4e544c4d5353500003000000180018006c00000018001800840000000c000c00480000000800080054000000"
    "100010005c000000100010009c000000358280e20501280a0000000f44006f006d00610069006e0055007300"
    "6500720043004f004d005000550054004500520098def7b87f88aa5dafe2df779688a172def11c7d5ccdef13"
    "67c43011f30298a2ad35ece64f16331c44bdbed927841f94518822b1b3f350c8958682ecbb3e3cb7"
)
# MS-NLMP §4.2.3.3 (NTLM v1 with client challenge)
ESS_CHALLENGE = H(
    "4e544c4d53535000020000000c000c003800000033820a820123456789abcdef000000000000000000000000"
    "00000000060070170000000f530065007200760065007200"
)
ESS_AUTHENTICATE = H(
    "4e544c4d5353500003000000180018006c00000018001800840000000c000c00480000000800080054000000"
    "100010005c000000000000009c000000358208820501280a0000000f44006f006d00610069006e0055007300"
    "6500720043004f004d0050005500540045005200aaaaaaaaaaaaaaaa00000000000000000000000000000000"
    "7537f803ae367128ca458204bde7caf81e97ed2683267232"
)
# MS-NLMP §4.2.4.3 (NTLMv2)
V2_CHALLENGE = H(
    "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044"
    "000000060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c0053"
    "006500720076006500720000000000"
)
V2_AUTHENTICATE = H(
    "4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054000000"
    "100010005c00000010001000d8000000358288e20501280a0000000f44006f006d00610069006e0055007300"
    "6500720043004f004d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"
    "68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000"
    "02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000c5dad254"
    "4fc9799094ce1ce90bc9d03e"
)
# MS-NLMP §4.2.4 TargetInfo and its two AV pairs
V2_TARGET_INFO = H(
    "02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000"
)
# MS-NLMP §4.2.4.1.3 temp
V2_TEMP = H(
    "01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e00"
    "01000c005300650072007600650072000000000000000000"
)
SERVER_CHALLENGE = H("0123456789abcdef")  # MS-NLMP §4.2.1
SPEC_VERSION_CHALLENGE = H("060070170000000f")  # as printed in the §4.2.x.3 CHALLENGEs
SPEC_VERSION_AUTHENTICATE = H("0501280a0000000f")  # as printed in the §4.2.x.3 AUTHENTICATEs

CHALLENGES = [
    pytest.param(V1_CHALLENGE, 0xE2028233, b"", id="4.2.2.3"),
    pytest.param(ESS_CHALLENGE, 0x820A8233, b"", id="4.2.3.3"),
    pytest.param(V2_CHALLENGE, 0xE28A8233, V2_TARGET_INFO, id="4.2.4.3"),
]


@pytest.mark.parametrize(("raw", "flags", "target_info"), CHALLENGES)
def test_decode_spec_challenge(raw: bytes, flags: int, target_info: bytes) -> None:
    c = m.decode_challenge(raw)
    assert c.flags == flags
    assert c.server_challenge == SERVER_CHALLENGE
    assert c.target_name.decode("utf-16-le") == "Server"  # MS-NLMP §4.2.1 ServerName
    assert c.target_info == target_info
    assert c.version == SPEC_VERSION_CHALLENGE


def test_decode_spec_v2_target_info_pairs() -> None:
    # MS-NLMP §4.2.4: AV pair 1 = NetBIOS Domain name, AV pair 2 = NetBIOS Server name.
    pairs = m.AvPairs.decode(m.decode_challenge(V2_CHALLENGE).target_info)
    assert pairs.pairs == [(m.AV_NB_DOMAIN, H("44006f006d00610069006e00")),
                           (m.AV_NB_COMPUTER, H("530065007200760065007200"))]
    assert pairs.get(m.AV_NB_DOMAIN) == "Domain".encode("utf-16-le")
    assert pairs.get(m.AV_TIMESTAMP) is None
    assert pairs.encode() == V2_TARGET_INFO


AUTHENTICATES = [
    pytest.param(
        V1_AUTHENTICATE, 0xE2808235,
        "98def7b87f88aa5dafe2df779688a172def11c7d5ccdef13",  # §4.2.2.2.2
        "67c43011f30298a2ad35ece64f16331c44bdbed927841f94",  # §4.2.2.2.1
        "518822b1b3f350c8958682ecbb3e3cb7",  # §4.2.2.2.3
        id="4.2.2.3",
    ),
    pytest.param(
        ESS_AUTHENTICATE, 0x82088235,
        "aaaaaaaaaaaaaaaa00000000000000000000000000000000",  # §4.2.3.2.1
        "7537f803ae367128ca458204bde7caf81e97ed2683267232",  # §4.2.3.2.2
        "",  # no KEY_EXCH in §4.2.3
        id="4.2.3.3",
    ),
    pytest.param(
        V2_AUTHENTICATE, 0xE2888235,
        "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa",  # §4.2.4.2.1
        "68cd0ab851e51c96aabc927bebef6a1c" + V2_TEMP.hex(),  # §4.2.4.2.2 + §4.2.4.1.3
        "c5dad2544fc9799094ce1ce90bc9d03e",  # §4.2.4.2.3
        id="4.2.4.3",
    ),
]


@pytest.mark.parametrize(("raw", "flags", "lm", "nt", "key"), AUTHENTICATES)
def test_decode_spec_authenticate(raw: bytes, flags: int, lm: str, nt: str, key: str) -> None:
    a = m.decode_authenticate(raw)
    assert a.flags == flags
    assert a.domain.decode("utf-16-le") == "Domain"
    assert a.user.decode("utf-16-le") == "User"
    assert a.workstation.decode("utf-16-le") == "COMPUTER"
    assert a.lm_response.hex() == lm
    assert a.nt_response.hex() == nt
    assert a.encrypted_session_key.hex() == key
    assert a.version == SPEC_VERSION_AUTHENTICATE


def test_spec_authenticate_has_no_mic() -> None:
    # MS-NLMP §4.2.4.3: the payload (DomainName) begins at offset 0x48 = 72, so the message has
    # no MIC field; the decoder must not report payload bytes as a MIC.
    a = m.decode_authenticate(V2_AUTHENTICATE)
    assert a.mic == b"\x00" * 16


def test_v2_challenge_reencodes_byte_for_byte() -> None:
    # The §4.2.4.3 CHALLENGE uses exactly the layout the encoder produces.
    assert m.encode_challenge(m.decode_challenge(V2_CHALLENGE)) == V2_CHALLENGE


@pytest.mark.parametrize("raw", [V1_CHALLENGE, ESS_CHALLENGE, V2_CHALLENGE])
def test_challenge_semantic_round_trip(raw: bytes) -> None:
    decoded = m.decode_challenge(raw)
    assert m.decode_challenge(m.encode_challenge(decoded)) == decoded


@pytest.mark.parametrize("raw", [V1_AUTHENTICATE, ESS_AUTHENTICATE, V2_AUTHENTICATE])
def test_authenticate_semantic_round_trip(raw: bytes) -> None:
    decoded = m.decode_authenticate(raw)
    assert m.decode_authenticate(m.encode_authenticate(decoded)) == decoded


def test_negotiate_round_trip() -> None:
    msg = m.Negotiate(0xE2088297, b"DOMAIN", b"WORKSTATION", m.DEFAULT_VERSION)
    raw = m.encode_negotiate(msg)
    assert raw[:8] == b"NTLMSSP\x00" and raw[8:12] == b"\x01\x00\x00\x00"
    assert struct.unpack_from("<I", raw, 12)[0] == 0xE2088297
    assert m.decode_negotiate(raw) == msg


def test_authenticate_round_trip_with_mic() -> None:
    msg = m.Authenticate(
        0xE2888235, lm_response=bytes(24), nt_response=bytes(range(60)),
        domain="Dom".encode("utf-16-le"), user="Usr".encode("utf-16-le"),
        workstation="WS".encode("utf-16-le"), encrypted_session_key=b"\x11" * 16,
        version=m.DEFAULT_VERSION, mic=bytes(range(100, 116)),
    )
    raw = m.encode_authenticate(msg)
    assert raw[m.MIC_OFFSET : m.MIC_OFFSET + 16] == bytes(range(100, 116))
    assert m.decode_authenticate(raw) == msg


def test_av_pairs_round_trip_and_set() -> None:
    pairs = m.AvPairs([(m.AV_NB_COMPUTER, b"A\x00"), (m.AV_TIMESTAMP, bytes(8))])
    pairs.set(m.AV_FLAGS, struct.pack("<I", m.AV_FLAG_MIC_PRESENT))
    pairs.set(m.AV_NB_COMPUTER, b"B\x00")
    decoded = m.AvPairs.decode(pairs.encode())
    assert decoded.pairs == [
        (m.AV_NB_COMPUTER, b"B\x00"),
        (m.AV_TIMESTAMP, bytes(8)),
        (m.AV_FLAGS, b"\x02\x00\x00\x00"),
    ]
    assert m.AvPairs().encode() == b"\x00\x00\x00\x00"


# -- malformed input --------------------------------------------------------------------------

DECODERS = [
    pytest.param(m.decode_negotiate, m.encode_negotiate(m.Negotiate(0x207)), id="negotiate"),
    pytest.param(m.decode_challenge, V2_CHALLENGE, id="challenge"),
    pytest.param(m.decode_authenticate, V2_AUTHENTICATE, id="authenticate"),
]


@pytest.mark.parametrize(("decode", "good"), DECODERS)
@pytest.mark.parametrize("length", [0, 8, 12, 31])
def test_short_message(decode, good: bytes, length: int) -> None:
    with pytest.raises(m.MessageError):
        decode(good[:length])


@pytest.mark.parametrize(("decode", "good"), DECODERS)
def test_bad_signature(decode, good: bytes) -> None:
    for i in range(8):
        bad = bytearray(good)
        bad[i] ^= 0x20
        with pytest.raises(m.MessageError, match="Signature"):
            decode(bytes(bad))


WRONG_TYPES = [
    pytest.param(decode, good, kind, id=f"{name}-type{kind}")
    for decode, good, right, name in [
        (m.decode_negotiate, m.encode_negotiate(m.Negotiate(0x207)), 1, "negotiate"),
        (m.decode_challenge, V2_CHALLENGE, 2, "challenge"),
        (m.decode_authenticate, V2_AUTHENTICATE, 3, "authenticate"),
    ]
    for kind in (0, 1, 2, 3, 4, 0x100)
    if kind != right
]


@pytest.mark.parametrize(("decode", "good", "kind"), WRONG_TYPES)
def test_wrong_message_type(decode, good: bytes, kind: int) -> None:
    bad = good[:8] + struct.pack("<I", kind) + good[12:]
    with pytest.raises(m.MessageError, match="MessageType"):
        decode(bad)


@pytest.mark.parametrize(
    ("decode", "good", "minimum"),
    [(m.decode_negotiate, m.encode_negotiate(m.Negotiate(0x207)), 32),
     (m.decode_challenge, V2_CHALLENGE, 48),
     (m.decode_authenticate, V2_AUTHENTICATE, 64)],
)
def test_one_byte_below_fixed_header(decode, good: bytes, minimum: int) -> None:
    with pytest.raises(m.MessageError, match="shorter"):
        decode(good[: minimum - 1])


def test_authenticate_field_past_end() -> None:
    # Dropping the last byte puts EncryptedRandomSessionKey one byte past the end.
    with pytest.raises(m.MessageError, match="EncryptedRandomSessionKey"):
        m.decode_authenticate(V2_AUTHENTICATE[:-1])


@pytest.mark.parametrize(("at", "name"), [(12, "LmChallengeResponse"), (20, "NtChallengeResponse"),
                                          (28, "DomainName"), (36, "UserName"),
                                          (44, "Workstation")])
def test_authenticate_length_past_end(at: int, name: str) -> None:
    bad = bytearray(V2_AUTHENTICATE)
    struct.pack_into("<HH", bad, at, 0x4000, 0x4000)
    with pytest.raises(m.MessageError, match=name):
        m.decode_authenticate(bytes(bad))


def test_challenge_offset_past_end() -> None:
    bad = bytearray(V2_CHALLENGE)
    struct.pack_into("<I", bad, 44, len(bad) - 10)  # TargetInfo BufferOffset
    with pytest.raises(m.MessageError, match="TargetInfo"):
        m.decode_challenge(bytes(bad))
    bad = bytearray(V2_CHALLENGE)
    struct.pack_into("<I", bad, 16, len(bad))  # TargetName BufferOffset
    with pytest.raises(m.MessageError, match="TargetName"):
        m.decode_challenge(bytes(bad))


def test_av_list_without_eol() -> None:
    with pytest.raises(m.MessageError, match="MsvAvEOL"):
        m.AvPairs.decode(V2_TARGET_INFO[:-4])
    with pytest.raises(m.MessageError, match="MsvAvEOL"):
        m.AvPairs.decode(b"")


def test_av_pair_value_past_end() -> None:
    with pytest.raises(m.MessageError, match="past the end"):
        m.AvPairs.decode(V2_TARGET_INFO[:10])
