"""Message integrity and confidentiality (MS-NLMP §3.4) against the §4.2 GSS_WrapEx examples."""

from __future__ import annotations

import pytest

from harness.ntlm.crypto import crc32, rc4k, xor_bytes
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.session import SessionSecurity
from harness.sspi.constants import SecStatus as S

H = bytes.fromhex

PLAINTEXT = H("50006c00610069006e007400650078007400")  # MS-NLMP §4.2.2.4/§4.2.3.4/§4.2.4.4
RANDOM_SESSION_KEY = H("55555555555555555555555555555555")  # MS-NLMP §4.2.1

V1_FLAGS = 0xE2028233  # MS-NLMP §4.2.2 (KEY_EXCH, no ESS)
V1_ESS_FLAGS = 0x820A8233  # MS-NLMP §4.2.3 (ESS, 56-bit, no KEY_EXCH)
V2_FLAGS = 0xE28A8233  # MS-NLMP §4.2.4 (ESS, KEY_EXCH, 128-bit)

# (flags, exported session key, sealed data, signature as the harness produces it)
EXAMPLES = [
    pytest.param(
        V1_FLAGS, RANDOM_SESSION_KEY,  # §4.2.2.4 (exported key = RandomSessionKey)
        "56fe04d861f9319af0d7238a2e3b4d457fb8",  # §4.2.2.4 Data
        # §4.2.2.4 prints 0100000045c844e509dcd1df2e459d36; §3.4.4.1 sets RandomPad to 0
        # after encryption, which gives this value.
        "010000000000000009dcd1df2e459d36",
        id="4.2.2.4",
    ),
    pytest.param(
        V1_ESS_FLAGS, H("eb93429a8bd952f8b89c55b87f475edc"),  # §4.2.3.1.3 KeyExchangeKey
        "a02372f6530273f3aa1eb90190ce5200c99d",  # §4.2.3.4 Data
        "01000000ff2aeb52f681793a00000000",  # §4.2.3.4 Signature
        id="4.2.3.4",
    ),
    pytest.param(
        V2_FLAGS, RANDOM_SESSION_KEY,  # §4.2.4 (KEY_EXCH: exported key = RandomSessionKey)
        "54e50165bf1936dc996020c1811b0f06fb5f",  # §4.2.4.4 Data
        "010000007fb38ec5c55d497600000000",  # §4.2.4.4 Signature
        id="4.2.4.4",
    ),
]


@pytest.mark.parametrize(("flags", "key", "data", "signature"), EXAMPLES)
def test_gss_wrapex_examples(flags: int, key: bytes, data: str, signature: str) -> None:
    sealed, sig = SessionSecurity(flags, key, is_client=True).seal([PLAINTEXT])
    assert b"".join(sealed).hex() == data
    assert sig.hex() == signature


@pytest.mark.parametrize(("flags", "key", "data", "signature"), EXAMPLES)
def test_receiver_unseals_examples(flags: int, key: bytes, data: str, signature: str) -> None:
    server = SessionSecurity(flags, key, is_client=False)
    status, plain = server.unseal([H(data)], H(signature))
    assert status == S.SEC_E_OK
    assert plain == [PLAINTEXT]


def test_receiver_accepts_printed_v1_signature() -> None:
    # MS-NLMP §4.2.2.4 Signature as printed, with the RC4'd RandomPad 45c844e5 left in; the
    # RandomPad is not compared.
    server = SessionSecurity(V1_FLAGS, RANDOM_SESSION_KEY, is_client=False)
    status, plain = server.unseal(
        [H("56fe04d861f9319af0d7238a2e3b4d457fb8")], H("0100000045c844e509dcd1df2e459d36")
    )
    assert status == S.SEC_E_OK
    assert plain == [PLAINTEXT]


def test_multiple_parts_seal_like_one() -> None:
    # §3.4.3: the same RC4 handle runs over the parts in order.
    for flags, key, data, signature in [p.values for p in EXAMPLES]:
        parts = [PLAINTEXT[:5], b"", PLAINTEXT[5:11], PLAINTEXT[11:]]
        sealed, sig = SessionSecurity(flags, key, is_client=True).seal(parts)
        assert [len(x) for x in sealed] == [5, 0, 6, 7]
        assert b"".join(sealed).hex() == data
        assert sig.hex() == signature


# -- failure leaves state untouched ------------------------------------------------------------

SETTINGS = [
    pytest.param(V1_FLAGS, id="v1"),
    pytest.param(V1_ESS_FLAGS, id="v1-ess"),
    pytest.param(V2_FLAGS, id="v2"),
]


def _pair(flags: int) -> tuple[SessionSecurity, SessionSecurity]:
    return (
        SessionSecurity(flags, RANDOM_SESSION_KEY, is_client=True),
        SessionSecurity(flags, RANDOM_SESSION_KEY, is_client=False),
    )


def _tamper(signature: bytes, at: int) -> bytes:
    out = bytearray(signature)
    out[at] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize("flags", SETTINGS)
def test_failed_verify_does_not_consume_state(flags: int) -> None:
    client, server = _pair(flags)
    sig0 = client.sign(b"first message")
    sig1 = client.sign(b"second message")
    assert server.verify(b"first messagE", sig0) == S.SEC_E_MESSAGE_ALTERED
    assert server.verify(b"first message", _tamper(sig0, 8)) == S.SEC_E_MESSAGE_ALTERED
    assert server.verify(b"first message", _tamper(sig0, 12)) == S.SEC_E_OUT_OF_SEQUENCE
    assert server.verify(b"second message", sig1) != S.SEC_E_OK  # not yet its turn
    assert server.verify(b"first message", sig0) == S.SEC_E_OK
    assert server.verify(b"second message", sig1) == S.SEC_E_OK


@pytest.mark.parametrize("flags", SETTINGS)
def test_failed_unseal_does_not_consume_state(flags: int) -> None:
    client, server = _pair(flags)
    sealed0, sig0 = client.seal([b"alpha" * 300])
    sealed1, sig1 = client.seal([b"beta" * 2000])
    bad = bytearray(sealed0[0])
    bad[7] ^= 0x80
    status, parts = server.unseal([bytes(bad)], sig0)
    assert status == S.SEC_E_MESSAGE_ALTERED
    assert parts == [bytes(bad)]  # nothing decrypted on failure
    assert server.unseal(sealed0, _tamper(sig0, 9))[0] != S.SEC_E_OK
    assert server.unseal(sealed0, _tamper(sig0, 0))[0] != S.SEC_E_OK
    assert server.unseal(sealed0, sig0) == (S.SEC_E_OK, [b"alpha" * 300])
    assert server.unseal(sealed1, sig1) == (S.SEC_E_OK, [b"beta" * 2000])


@pytest.mark.parametrize("flags", SETTINGS)
def test_replay_is_rejected(flags: int) -> None:
    client, server = _pair(flags)
    sig = client.sign(b"once")
    assert server.verify(b"once", sig) == S.SEC_E_OK
    assert server.verify(b"once", sig) != S.SEC_E_OK


@pytest.mark.parametrize("flags", SETTINGS)
def test_v1_signature_ignores_random_pad_only(flags: int) -> None:
    # Bytes 4..7: RandomPad without ESS (not compared), part of the checksum with ESS.
    client, server = _pair(flags)
    sig = client.sign(b"pad")
    status = server.verify(b"pad", _tamper(sig, 5))
    if flags & F.EXTENDED_SESSIONSECURITY:
        assert status == S.SEC_E_MESSAGE_ALTERED
        assert server.verify(b"pad", sig) == S.SEC_E_OK
    else:
        assert status == S.SEC_E_OK


def test_half_duplex_without_ess() -> None:
    # MS-NLMP §3.4: without ESS "only one key is used for sealing ... half-duplex": one RC4
    # handle and one sequence counter serve both directions.
    client, server = _pair(V1_FLAGS)
    sealed, sig = client.seal([b"client to server"])
    assert server.unseal(sealed, sig) == (S.SEC_E_OK, [b"client to server"])
    sealed, sig = server.seal([b"server to client"])
    assert client.unseal(sealed, sig) == (S.SEC_E_OK, [b"server to client"])
    sig = client.sign(b"again")
    assert server.verify(b"again", sig) == S.SEC_E_OK
    sig = server.sign(b"and back")
    assert client.verify(b"and back", sig) == S.SEC_E_OK


def test_half_duplex_shares_the_sequence_counter() -> None:
    # Without ESS and LM_KEY the SealKey is the exported key (§3.4.5.3), so the keystream is
    # rc4k(key, zeros). Message 0 (client seal of 4 bytes) takes 4 + 12 bytes of it; the
    # server's next signature is RandomPad ‖ CRC32 ‖ SeqNum under bytes 16..27, and its SeqNum
    # (§3.4.4.1) must be 1: the counter is shared by both directions.
    client, server = _pair(V1_FLAGS)
    sealed, sig = client.seal([b"zero"])
    assert server.unseal(sealed, sig)[0] == S.SEC_E_OK
    sig1 = server.sign(b"one")
    keystream = rc4k(RANDOM_SESSION_KEY, bytes(28))
    assert xor_bytes(sig1[12:16], keystream[24:28]) == (1).to_bytes(4, "little")
    assert xor_bytes(sig1[8:12], keystream[20:24]) == crc32(b"one")
    assert client.verify(b"one", sig1) == S.SEC_E_OK
    # A receiver whose stream is still at message 0 rejects it.
    fresh_client, _ = _pair(V1_FLAGS)
    assert fresh_client.verify(b"one", sig1) != S.SEC_E_OK


@pytest.mark.parametrize("flags", [V1_ESS_FLAGS, V2_FLAGS])
def test_ess_directions_are_independent(flags: int) -> None:
    client, server = _pair(flags)
    c = [client.seal([f"c{i}".encode() * 50]) for i in range(3)]
    s = [server.seal([f"s{i}".encode() * 70]) for i in range(2)]
    # Interleave receptions in any order across directions; each direction is in order.
    assert client.unseal(*s[0]) == (S.SEC_E_OK, [b"s0" * 70])
    assert server.unseal(*c[0]) == (S.SEC_E_OK, [b"c0" * 50])
    assert server.unseal(*c[1]) == (S.SEC_E_OK, [b"c1" * 50])
    assert client.unseal(*s[1]) == (S.SEC_E_OK, [b"s1" * 70])
    assert server.unseal(*c[2]) == (S.SEC_E_OK, [b"c2" * 50])
    # Both directions start at sequence number 0 (ESS signature carries it in clear).
    assert c[0][1][12:16] == s[0][1][12:16] == b"\x00\x00\x00\x00"
    # ... but with different keys.
    assert c[0][1] != s[0][1] or c[0][0] != s[0][0]


@pytest.mark.parametrize("flags", [V1_ESS_FLAGS, V2_FLAGS])
def test_ess_reflection_is_rejected(flags: int) -> None:
    # A client message reflected back to the client fails: directions use different keys.
    client, _server = _pair(flags)
    sealed, sig = client.seal([b"reflect me"])
    other = SessionSecurity(flags, RANDOM_SESSION_KEY, is_client=True)
    assert other.unseal(sealed, sig)[0] != S.SEC_E_OK


@pytest.mark.parametrize("flags", [V1_ESS_FLAGS | F.DATAGRAM, V2_FLAGS | F.DATAGRAM])
def test_datagram_out_of_order(flags: int) -> None:
    # MS-NLMP §3.4.3: connectionless mode re-keys per message from the application's SeqNum.
    client, server = _pair(flags)
    msgs = {n: client.seal([f"datagram {n}".encode()], app_seqno=n) for n in (5, 1, 9, 2)}
    sigs = {n: client.sign(f"mic {n}".encode(), app_seqno=n) for n in (7, 3)}
    for n in (9, 2, 5, 1):
        assert server.unseal(*msgs[n], app_seqno=n) == (S.SEC_E_OK, [f"datagram {n}".encode()])
    assert server.verify(b"mic 3", sigs[3], app_seqno=3) == S.SEC_E_OK
    assert server.verify(b"mic 7", sigs[7], app_seqno=7) == S.SEC_E_OK
    # The number is bound into the signature.
    assert server.unseal(*msgs[5], app_seqno=6)[0] != S.SEC_E_OK
    assert server.verify(b"mic 7", sigs[7], app_seqno=3) != S.SEC_E_OK
